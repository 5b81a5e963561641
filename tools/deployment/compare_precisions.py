"""A trained model's test metrics in PyTorch and every deployed precision.

    python tools/deployment/compare_precisions.py CONFIG CHECKPOINT \
        --work-dir DIR [--max-drop 0.005] [--subset-size 300] [--out t.md]

Exports the model to ONNX, quantises it to int8 with accuracy control
(where the CPU has int8), and evaluates PyTorch fp32, ONNX Runtime fp32
and OpenVINO fp32 / bf16 / int8 on the config's test set: VOC mAP, COCO
AP and AP_small with their change from PyTorch, one table. Precisions the
CPU lacks are listed with the reason.
"""
import argparse
import logging
import os.path as osp

from mmengine.logging import MMLogger

import mmdssd  # noqa: F401
from mmdssd.deployment import cpu_description
from mmdssd.deployment.precisions import (compare_precisions,
                                          format_precision_table)


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('config')
    parser.add_argument('checkpoint')
    parser.add_argument('--work-dir', required=True,
                        help='where the exported models go')
    parser.add_argument('--max-drop', type=float, default=0.005,
                        help='int8: largest allowed COCO AP drop')
    parser.add_argument('--subset-size', type=int, default=300,
                        help='int8: training images for calibration')
    parser.add_argument('--out', help='also write the table here')
    return parser.parse_args()


def main() -> None:
    args = parse_args()
    MMLogger.get_current_instance().setLevel(logging.WARNING)
    if not osp.isfile(args.checkpoint):
        raise SystemExit(f'checkpoint not found: {args.checkpoint}')
    rows = compare_precisions(args.config, args.checkpoint, args.work_dir,
                              args.max_drop, args.subset_size)
    table = format_precision_table(
        rows, f'{args.config} ({args.checkpoint}); CPU: {cpu_description()}')
    print(table)
    if args.out:
        with open(args.out, 'w') as f:
            f.write(table + '\n')


if __name__ == '__main__':
    main()
