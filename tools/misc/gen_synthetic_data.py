"""Write the embedded synthetic detection set (VOC and COCO layouts).

    python tools/misc/gen_synthetic_data.py data/synthetic
    python tools/misc/gen_synthetic_data.py data/synthetic_small_objects \
        --preset small_objects
"""
import argparse
import time

from mmdssd.datasets import SyntheticSpec, generate_synthetic_dataset


def main() -> None:
    defaults = SyntheticSpec()
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('out_dir', nargs='?', default='data/synthetic')
    parser.add_argument('--preset', choices=['default', 'small_objects'],
                        default='default',
                        help='start from SyntheticSpec() or '
                        'SyntheticSpec.small_objects(); flags override')
    for name, value in defaults.__dict__.items():
        parser.add_argument(
            '--' + name.replace('_', '-'), type=type(value), default=None,
            help=f'default: {value} (the preset\'s)')
    parser.add_argument('--overwrite', action='store_true')
    args = vars(parser.parse_args())
    out_dir, overwrite = args.pop('out_dir'), args.pop('overwrite')
    preset = args.pop('preset')
    fields = {k: v for k, v in args.items() if v is not None}
    spec = (SyntheticSpec(**fields) if preset == 'default' else
            SyntheticSpec.small_objects(**fields))
    start = time.time()
    paths = generate_synthetic_dataset(out_dir, spec, overwrite=overwrite)
    print(f'synthetic set in {out_dir} ({time.time() - start:.1f} s)')
    for key, path in paths.items():
        print(f'  {key}: {path}')


if __name__ == '__main__':
    main()
