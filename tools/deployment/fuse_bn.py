"""Fold BatchNorm into the convolutions of a trained detector.

    python tools/deployment/fuse_bn.py CONFIG CHECKPOINT OUT.pth

The output holds a plain ``state_dict`` of the folded model (BN layers
replaced by identities); load it with :func:`load_folded` below, or test
the unfolded checkpoint with ``tools/test.py --fuse-conv-bn``.
"""
import argparse
import os
import os.path as osp

import torch
from mmengine.runner import load_checkpoint

import mmdssd  # noqa: F401
from mmdssd.models.utils import fuse_bn
from mmdssd.utils.config_paths import config_without_download


def _build(config: str):
    from mmdet.registry import MODELS
    from mmdet.utils import register_all_modules
    register_all_modules()
    # weights come from a checkpoint
    return MODELS.build(config_without_download(config).model)


def build_folded(config: str, checkpoint: str):
    """Build ``config``, load ``checkpoint``, fold BN; returns the model."""
    model = _build(config)
    load_checkpoint(model, checkpoint, map_location='cpu')
    model.eval()
    return fuse_bn(model)


def load_folded(config: str, folded_checkpoint: str):
    """A folded model from ``config`` and a file written by this tool."""
    model = _build(config)
    model.eval()
    fuse_bn(model)
    state = torch.load(folded_checkpoint, map_location='cpu')
    model.load_state_dict(state['state_dict'])
    return model


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('config')
    parser.add_argument('checkpoint')
    parser.add_argument('out')
    args = parser.parse_args()
    if not osp.isfile(args.checkpoint):
        raise FileNotFoundError(f'checkpoint not found: {args.checkpoint}')
    if osp.exists(args.out):
        raise FileExistsError(f'{args.out} exists; not overwriting it')
    model = build_folded(args.config, args.checkpoint)
    os.makedirs(osp.dirname(osp.abspath(args.out)), exist_ok=True)
    torch.save(dict(state_dict=model.state_dict(),
                    meta=dict(folded_bn=True, config=args.config)), args.out)
    print(f'folded model written to {args.out}')


if __name__ == '__main__':
    main()
