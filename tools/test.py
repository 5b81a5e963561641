"""Test (evaluate) a checkpoint (MMDetection's tools/test.py + mmdssd).

    python tools/test.py CONFIG CHECKPOINT.pth     # PyTorch
    python tools/test.py CONFIG MODEL.onnx         # exported, ONNX Runtime
    python tools/test.py CONFIG MODEL.onnx --runtime openvino --precision bf16
    python tools/test.py CONFIG MODEL_int8.xml --precision int8   # OpenVINO

An exported model (``.onnx`` from tools/deployment/export_onnx.py, or an
int8 ``.xml`` from tools/deployment/quantize_int8.py) is evaluated with the
same dataloader and metrics, on the CPU; the precision that ran is logged.
"""
import argparse
import os.path as osp

from mmdet.evaluation import DumpDetResults
from mmengine.registry import RUNNERS
from mmengine.runner import Runner

import mmdssd  # noqa: F401  (registers components, applies workarounds)
from mmdssd.datasets.check import config_classes
from mmdssd.deployment.deployed_detector import RUNTIMES
from mmdssd.deployment.openvino_runtime import PRECISIONS
from mmdssd.engine import (FuseConvBNHook, check_checkpoint_fits,
                           load_checked_checkpoint)
from mmdssd.utils.cli import add_common_args, load_config


EXPORTED = ('.onnx', '.xml')


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description='Test (and eval) a model')
    add_common_args(parser)
    parser.add_argument(
        'checkpoint', help='checkpoint file, or an exported .onnx model')
    parser.add_argument(
        '--runtime', choices=sorted(RUNTIMES),
        help='runtime of an exported model (default: onnxruntime for '
        '.onnx, openvino for .xml)')
    parser.add_argument(
        '--precision', choices=PRECISIONS, default=None,
        help='precision of an exported model under OpenVINO (default: fp32,'
        ' int8 for .xml)')
    parser.add_argument(
        '--out', help='dump predictions to this pickle file (.pkl)')
    parser.add_argument(
        '--show-dir', help='draw predictions into this folder (in work_dir)')
    parser.add_argument(
        '--fuse-conv-bn',
        action='store_true',
        help='fold BatchNorm into convolutions before testing (faster)')
    return parser.parse_args()


def deployed_model(cfg, args: argparse.Namespace) -> dict:
    """The ``model`` field that runs the exported ``args.checkpoint``."""
    from mmdssd.deployment import check_deployed_fits, deployed_model_cfg
    if args.fuse_conv_bn:
        raise ValueError('--fuse-conv-bn: an exported model has its BN '
                         'folded already (export_onnx.py --no-fold-bn '
                         'keeps it)')
    check_deployed_fits(cfg, args.checkpoint)
    precision = args.precision or (
        'int8' if args.checkpoint.endswith('.xml') else 'fp32')
    return deployed_model_cfg(args.checkpoint, args.runtime,
                              precision=precision)


def main() -> None:
    args = parse_args()
    if not osp.isfile(args.checkpoint):
        raise FileNotFoundError(f'checkpoint not found: {args.checkpoint}')
    cfg = load_config(args)
    if args.checkpoint.endswith(EXPORTED):
        cfg.model = deployed_model(cfg, args)
        cfg.load_from = None
        ckpt = None
    elif args.runtime or args.precision:
        raise ValueError('--runtime/--precision: for an exported model '
                         f'({"/".join(EXPORTED)}), not {args.checkpoint}')
    else:
        ckpt = load_checked_checkpoint(args.checkpoint)
        cfg.load_from = args.checkpoint
    if args.show_dir:
        vis = cfg.default_hooks.visualization
        vis.draw = True
        vis.test_out_dir = args.show_dir
    runner = (Runner.from_cfg(cfg)
              if 'runner_type' not in cfg else RUNNERS.build(cfg))
    if ckpt is not None:
        check_checkpoint_fits(ckpt, args.checkpoint, runner.model, cfg,
                              config_classes(cfg, 'test'))
    if args.out:
        if not args.out.endswith(('.pkl', '.pickle')):
            raise ValueError(f'--out must be a .pkl file, got {args.out}')
        runner.test_evaluator.metrics.append(
            DumpDetResults(out_file_path=args.out))
    if args.fuse_conv_bn:
        runner.register_hook(FuseConvBNHook(), priority='LOWEST')
    if ckpt is None:
        model = getattr(runner.model, 'module', runner.model)
        runner.logger.info(f'{type(model).__name__} ran '
                           f'{model.precision_ran}')
    runner.test()


if __name__ == '__main__':
    main()
