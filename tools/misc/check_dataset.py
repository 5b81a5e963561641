"""Check a config's datasets before spending hours on training.

    python tools/misc/check_dataset.py CONFIG [--splits train val test]

Opens and decodes every image, reads every annotation (VOC XML or COCO
JSON) and lists each problem with its file and object: missing, corrupt or
truncated images, grayscale/CMYK images (converted on load: a note),
annotations without or with a wrong <size>, boxes with xmax <= xmin or
outside the image, unknown class names (MMDetection drops them silently),
empty annotation files. Exits 1 if there is any error, 0 otherwise.
"""
import argparse
import sys

from mmengine.config import DictAction

import mmdssd  # noqa: F401
from mmdssd.datasets.check import check_config_datasets
from mmdssd.utils.config_paths import resolve_config


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('config')
    parser.add_argument('--splits', nargs='+', default=['train', 'val',
                                                        'test'],
                        choices=['train', 'val', 'test'])
    parser.add_argument('--cfg-options', nargs='+', action=DictAction)
    args = parser.parse_args()
    from mmengine.config import Config
    cfg = Config.fromfile(resolve_config(args.config))
    if args.cfg_options:
        cfg.merge_from_dict(args.cfg_options)
    problems = check_config_datasets(cfg, args.splits)
    for p in problems:
        print(p)
    errors = sum(p.level == 'error' for p in problems)
    notes = len(problems) - errors
    print(f'{args.config}: {errors} error(s), {notes} note(s)')
    return 1 if errors else 0


if __name__ == '__main__':
    sys.exit(main())
