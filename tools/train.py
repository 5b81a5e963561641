"""Train a detector (MMDetection's tools/train.py, plus mmdssd's fixes).

Importing mmdssd registers its models and applies the stack workarounds
(checkpoint loading under torch's weights_only, stock SSD evaluation);
distributed runs on CPU-only machines use gloo.
"""
import argparse
import logging
from typing import Optional

from mmengine.logging import print_log
from mmengine.registry import RUNNERS
from mmengine.runner import Runner

import mmdssd  # noqa: F401  (registers components, applies workarounds)
from mmdssd.engine import (find_resumable_checkpoint, load_checked_checkpoint,
                           use_atomic_checkpoints, with_cpu_amp)
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


def resumable_checkpoint(work_dir: str) -> Optional[str]:
    """The newest complete checkpoint in ``work_dir``, saying which newer
    files were skipped and why."""
    path, skipped = find_resumable_checkpoint(work_dir)
    for file, why in skipped:
        print_log(f'--resume: skipped {file}: {why}', logger='current',
                  level=logging.WARNING)
    if path is None:
        print_log(f'--resume: no complete checkpoint in {work_dir}; '
                  'training from the start', logger='current',
                  level=logging.WARNING)
    return path


def use_amp(cfg):
    """``--amp``: MMEngine's AmpOptimWrapper (float16, loss scaling) on a
    GPU; bfloat16 autocast (``CPUAmpOptimWrapper``) on a CPU, which
    refuses, saying why, a CPU without native bf16."""
    import torch
    if not torch.cuda.is_available():
        return with_cpu_amp(cfg)
    cfg.optim_wrapper.type = 'AmpOptimWrapper'
    cfg.optim_wrapper.loss_scale = 'dynamic'
    return cfg


def main() -> None:
    args = parse_args()
    cfg = load_config(args)
    if args.amp:
        cfg = use_amp(cfg)
    if args.auto_scale_lr:
        if 'base_batch_size' not in cfg.get('auto_scale_lr', {}):
            raise RuntimeError(
                f'{args.config}: --auto-scale-lr needs '
                'auto_scale_lr.base_batch_size in the config')
        cfg.auto_scale_lr.enable = True
    if args.resume == 'auto':
        cfg.load_from = resumable_checkpoint(cfg.work_dir)
        cfg.resume = cfg.load_from is not None
    elif args.resume is not None:
        load_checked_checkpoint(args.resume)
        cfg.resume = True
        cfg.load_from = args.resume
    use_atomic_checkpoints(cfg)
    runner = (Runner.from_cfg(cfg)
              if 'runner_type' not in cfg else RUNNERS.build(cfg))
    runner.train()


if __name__ == '__main__':
    main()
