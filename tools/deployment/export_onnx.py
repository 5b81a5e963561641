"""Export a trained detector to ONNX: network, box decoding and NMS.

    python tools/deployment/export_onnx.py CONFIG CHECKPOINT OUT.onnx

Works for every mmdssd config and stock MMDetection SSD
(``mmdet::ssd/ssd300_coco.py``). BN is folded first. The graph takes a
batch (any size) of images resized by the config's test pipeline (BGR,
0-255, float32) and returns ``dets`` (batch, max_per_img, 5) and ``labels``
(batch, max_per_img), -1 where unused. Run it with
``tools/test.py CONFIG OUT.onnx`` (VOC/COCO metrics) or
``mmdssd.deployment.init_onnx_detector`` + ``mmdet.apis.inference_detector``.
With ``--verify`` the export is checked against PyTorch on the config's
test images.
"""
import argparse
import logging
import sys

from mmengine.logging import MMLogger

import mmdssd  # noqa: F401
from mmdssd.deployment import UnsupportedExportError, export_onnx


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('config', help='config file or mmdet::... name')
    parser.add_argument('checkpoint', help='trained checkpoint (.pth)')
    parser.add_argument('out', help='output .onnx file')
    parser.add_argument('--no-fold-bn', action='store_true',
                        help='keep BatchNorm layers as they are')
    parser.add_argument('--overwrite', action='store_true',
                        help='replace an existing output file')
    parser.add_argument(
        '--verify', type=int, default=0, metavar='N',
        help='compare detections with PyTorch on the first N test images')
    return parser.parse_args()


def main() -> None:
    args = parse_args()
    MMLogger.get_current_instance().setLevel(logging.WARNING)
    try:
        out = export_onnx(args.config, args.checkpoint, args.out,
                          fold_bn=not args.no_fold_bn,
                          overwrite=args.overwrite)
    except (UnsupportedExportError, FileNotFoundError,
            FileExistsError) as err:
        sys.exit(f'[export_onnx] {err}')
    print(f'[export_onnx] wrote {out}')
    if args.verify:
        from mmdssd.deployment.verify import compare_with_pytorch
        report = compare_with_pytorch(args.config, args.checkpoint, out,
                                      num_images=args.verify)
        print(f'[export_onnx] {report}')
        if not report.equal:
            sys.exit(1)


if __name__ == '__main__':
    main()
