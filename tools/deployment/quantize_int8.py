"""Quantise an exported model to int8 for OpenVINO, with accuracy control.

    python tools/deployment/quantize_int8.py CONFIG MODEL.onnx OUT.xml \
        [--max-drop 0.005] [--metric coco/bbox_mAP] [--subset-size 300]

Calibrates on the config's training images (test pipeline, no
augmentation), measures the config's test metric in fp32 and int8 on its
test images, and writes ``OUT.xml`` (+ ``OUT.bin``) only if int8 loses at
most ``--max-drop`` (absolute). Box decoding and NMS stay in float. Run
the result with ``tools/test.py CONFIG OUT.xml`` or
``init_deployed_detector(CONFIG, 'OUT.xml', precision='int8')``.
"""
import argparse
import logging
import sys

from mmengine.logging import MMLogger

import mmdssd  # noqa: F401
from mmdssd.deployment import UnsupportedPrecisionError, cpu_description
from mmdssd.deployment.int8 import (DEFAULT_METRIC, AccuracyDropError,
                                    quantize_int8)


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('config', help='the config the model came from')
    parser.add_argument('model', help='fp32 .onnx from export_onnx.py')
    parser.add_argument('out', help='int8 OpenVINO model (.xml)')
    parser.add_argument('--max-drop', type=float, default=0.005,
                        help='largest allowed absolute metric drop')
    parser.add_argument('--metric', default=DEFAULT_METRIC,
                        help='test metric the drop is measured on')
    parser.add_argument('--subset-size', type=int, default=300,
                        help='training images used for calibration')
    parser.add_argument('--num-val', type=int, default=None,
                        help='test images for the accuracy control '
                        '(default: all)')
    parser.add_argument('--max-reverted', type=int, default=10,
                        help='most layers returned to float before giving '
                        'up')
    return parser.parse_args()


def main() -> None:
    args = parse_args()
    MMLogger.get_current_instance().setLevel(logging.WARNING)
    print(f'[quantize_int8] CPU: {cpu_description()}')
    try:
        report = quantize_int8(args.config, args.model, args.out,
                               max_drop=args.max_drop, metric=args.metric,
                               subset_size=args.subset_size,
                               num_validation=args.num_val,
                               max_reverted=args.max_reverted)
    except (AccuracyDropError, UnsupportedPrecisionError, KeyError,
            ValueError, FileNotFoundError) as err:
        sys.exit(f'[quantize_int8] {err}')
    print(f'[quantize_int8] {report}')
    print(f'[quantize_int8] wrote {report.out_file}')


if __name__ == '__main__':
    main()
