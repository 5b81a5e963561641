"""Write the embedded synthetic detection set (VOC and COCO layouts).

    python tools/misc/gen_synthetic_data.py data/synthetic
"""
import argparse
import time

from mmdssd.datasets import SyntheticSpec, generate_synthetic_dataset


def main() -> None:
    defaults = SyntheticSpec()
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('out_dir', nargs='?', default='data/synthetic')
    for name, value in defaults.__dict__.items():
        parser.add_argument(
            '--' + name.replace('_', '-'), type=type(value), default=value)
    parser.add_argument('--overwrite', action='store_true')
    args = vars(parser.parse_args())
    out_dir, overwrite = args.pop('out_dir'), args.pop('overwrite')
    start = time.time()
    paths = generate_synthetic_dataset(out_dir, SyntheticSpec(**args),
                                       overwrite=overwrite)
    print(f'synthetic set in {out_dir} ({time.time() - start:.1f} s)')
    for key, path in paths.items():
        print(f'  {key}: {path}')


if __name__ == '__main__':
    main()
