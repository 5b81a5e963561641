"""Write a training config for a folder of annotated photos.

    python tools/misc/make_dataset_config.py DATA_ROOT --out my_config.py \
        [--base CONFIG] [--format voc|coco] [--classes A B ...] \
        [--input-size N]

DATA_ROOT is a VOC layout (``VOCdevkit/VOC20xx/{Annotations,JPEGImages,
ImageSets/Main}``, or a bare ``VOC20xx``) or a COCO layout
(``annotations/*train*.json`` and ``*test*``/``*val*.json``, images in
``train2017/``-style folders or ``images/``). The tool finds the class
names in the annotations, checks every image and annotation (each problem
named by file and object; any error stops it before anything is written),
writes a short config over ``--base`` with the data paths, the classes and
``num_classes``, VOC mAP and COCO AP by object size, and prints the
default-box ratio report for the set (K-means, as in the DSSD paper) with a
line to add to the config to accept the suggested ratios.

The default base is the CPU-sized DSSD from random init; for a GPU and
ImageNet weights use ``--base configs/dssd_r101_voc.py``. ``--input-size``
trains and tests at another square size than the base's: the pipelines'
``Resize`` and the default boxes (their sizes stay fractions of the input,
their strides follow the model's feature maps at that size) are rewritten.
"""
import argparse
import os.path as osp
import sys

from mmengine.config import Config

import mmdssd  # noqa: F401
from mmdssd.datasets.check import check_coco, check_voc
from mmdssd.datasets.dataset_config import (LayoutError, class_counts_text,
                                            config_text, find_layout)
from mmdssd.utils.anchor_ratios import ratio_report, ratio_report_text
from mmdssd.utils.config_paths import resolve_config

TOOLS = osp.dirname(osp.dirname(osp.abspath(__file__)))
# beside tools/ both in the repository and in mim's installed copy
DEFAULT_BASE = osp.join(osp.dirname(TOOLS), 'configs', 'synthetic',
                        'dssd_tiny_synthetic.py')


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('data_root', help='the dataset folder')
    parser.add_argument('--out', required=True, help='config to write')
    parser.add_argument('--base', default=DEFAULT_BASE,
                        help='config to inherit (file or mmdssd::name)')
    parser.add_argument('--format', choices=['voc', 'coco'],
                        help='layout (found by default)')
    parser.add_argument('--classes', nargs='+',
                        help='class names and their order (default: all '
                        'names in the annotations, sorted)')
    parser.add_argument('--input-size', type=int,
                        help='square network input (default: the base\'s)')
    parser.add_argument('--force', action='store_true',
                        help='overwrite an existing --out file')
    return parser.parse_args()


def check(layout, classes):
    """Every problem of the layout's splits, each printed; the errors."""
    problems = []
    for ds in layout.train + [layout.test]:
        if layout.format == 'voc':
            problems += check_voc(ds['data_root'], ds['ann_file'],
                                  ds['data_prefix']['sub_data_root'],
                                  classes)
        else:
            problems += check_coco(
                osp.join(ds['data_root'], ds['ann_file']),
                osp.join(ds['data_root'], ds['data_prefix']['img']),
                classes)
    for problem in problems:
        print(problem)
    return [p for p in problems if p.level == 'error']


def main() -> int:
    args = parse_args()
    if osp.exists(args.out) and not args.force:
        print(f'{args.out} exists; not overwriting it (--force)')
        return 1
    try:
        layout = find_layout(args.data_root, args.format)
    except LayoutError as err:
        print(f'error: {err}')
        return 1
    classes = tuple(args.classes or layout.classes)
    print(f'{layout.format} layout; classes found in the annotations: '
          f'{class_counts_text(layout.counts)}')
    errors = check(layout, classes)
    if errors:
        print(f'{len(errors)} error(s): fix them (or pick --classes); '
              f'nothing written')
        return 1
    if args.input_size is not None and args.input_size < 32:
        print(f'error: --input-size {args.input_size}: must be >= 32')
        return 1
    base = osp.abspath(resolve_config(args.base))
    with open(args.out, 'w') as f:
        f.write(config_text(layout, base, classes, args.input_size))
    print(f'wrote {args.out}: {len(classes)} classes, base {base}')
    cfg = Config.fromfile(args.out)
    print(ratio_report_text(ratio_report(cfg),
                            cfg.model.train_cfg.assigner.get('pos_iou_thr')))
    print(f'to accept the suggested ratios, add that line to {args.out}')
    print(f'train: python tools/train.py {args.out}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
