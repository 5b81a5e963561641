"""Train a detector (MMDetection's tools/train.py, plus mmdssd's fixes).

Importing mmdssd registers its models and applies the stack workarounds
(checkpoint loading under torch's weights_only, stock SSD evaluation);
distributed runs on CPU-only machines use gloo.
"""
import argparse

from mmengine.registry import RUNNERS
from mmengine.runner import Runner

import mmdssd  # noqa: F401  (registers components, applies workarounds)
from mmdssd.utils.cli import add_common_args, load_config


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description='Train a detector')
    add_common_args(parser)
    parser.add_argument(
        '--amp', action='store_true', help='automatic mixed precision')
    parser.add_argument(
        '--auto-scale-lr',
        action='store_true',
        help='scale the lr by the total batch size (auto_scale_lr)')
    parser.add_argument(
        '--resume',
        nargs='?',
        type=str,
        const='auto',
        help='resume from this checkpoint, or (no value) from the latest '
        'checkpoint in the work dir')
    return parser.parse_args()


def main() -> None:
    args = parse_args()
    cfg = load_config(args)
    if args.amp:
        import torch
        if not torch.cuda.is_available():
            raise SystemExit(
                '--amp: MMEngine\'s AmpOptimWrapper needs a GPU (CUDA, NPU, '
                'MLU or MUSA) and none is visible; train in fp32 on the CPU')
        cfg.optim_wrapper.type = 'AmpOptimWrapper'
        cfg.optim_wrapper.loss_scale = 'dynamic'
    if args.auto_scale_lr:
        if 'base_batch_size' not in cfg.get('auto_scale_lr', {}):
            raise RuntimeError(
                f'{args.config}: --auto-scale-lr needs '
                'auto_scale_lr.base_batch_size in the config')
        cfg.auto_scale_lr.enable = True
    if args.resume == 'auto':
        cfg.resume = True
        cfg.load_from = None
    elif args.resume is not None:
        cfg.resume = True
        cfg.load_from = args.resume
    runner = (Runner.from_cfg(cfg)
              if 'runner_type' not in cfg else RUNNERS.build(cfg))
    runner.train()


if __name__ == '__main__':
    main()
