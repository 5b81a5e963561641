"""Where bf16 autocast moves the main job's gradients away from fp32.

    python tools/analysis_tools/bf16_grad_error.py --data-root D \
        [--checkpoint CKPT] [--batches 3] [--fp32-parts bn head ...] [--json]

Builds the main job's model (channels-last, as the job trains it; the
weights of ``--checkpoint`` if given, else its initialisation), takes
``--batches`` training batches (at the pipeline's size, 256: outside a run
``ProgressiveResize`` leaves them as they are), and for each computes the
gradients of the training loss in fp32 (the reference) and under CPU
bfloat16 autocast, plain and with each of ``--fp32-parts`` kept in fp32
inside the autocast region. It prints, per part of the model (backbone,
neck, the head's prediction modules, its predictors) and over all
parameters, the relative error ``||g_bf16 - g_fp32|| / ||g_fp32||``, mean
over the batches. Two reference rows give the scale: ``fp32 again`` (the
same batch in fp32 once more: 0 where the reference is reproducible) and
``fp32 next batch`` (the fp32 gradient of the next batch: the error that
sampling a batch makes anyway). Last, how consistent plain bf16's error is
from batch to batch: about 1 for independent noise, which averages out over
steps, up to sqrt(batches) for the same error every batch, a bias.

It measures one step's error, not what the error does over a run; that
takes learning runs at equal iterations (docs/en/results/main_job.md).
"""
import argparse
import copy
import json
import os.path as osp
import statistics
from contextlib import contextmanager
from typing import Callable, Dict, Iterator, List, Sequence

from mmdssd.utils.cli import add_main_job_args

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
PARTS = ('backbone', 'neck', 'head.modules', 'head.predictors', 'all')
FP32_PARTS = ('bn', 'backbone', 'neck', 'head', 'predictors')


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_main_job_args(parser, ROOT)
    parser.add_argument('--checkpoint', help='weights to start from '
                        '(default: the initialisation)')
    parser.add_argument('--batches', type=int, default=3,
                        help='training batches to average over')
    parser.add_argument('--fp32-parts', nargs='*', choices=FP32_PARTS,
                        default=list(FP32_PARTS),
                        help='parts kept in fp32 under autocast, one arm '
                        'each (bn: every BatchNorm; predictors: the '
                        "head's final cls/reg convs)")
    parser.add_argument('--json', action='store_true',
                        help='print the results as one JSON line too')
    return parser.parse_args()


def part_of(name: str) -> str:
    """The part of the model a parameter name belongs to."""
    if name.startswith(('backbone.', 'neck.')):
        return name.split('.', 1)[0]
    if name.startswith(('bbox_head.cls_convs.', 'bbox_head.reg_convs.')):
        return 'head.predictors'
    return 'head.modules'


def _to_float(x):
    import torch
    if torch.is_tensor(x) and x.is_floating_point():
        return x.float()
    if isinstance(x, (list, tuple)):
        return type(x)(_to_float(y) for y in x)
    return x


@contextmanager
def fp32_islands(modules: Sequence) -> Iterator[None]:
    """Run ``modules`` in fp32 inside an autocast region: their inputs are
    cast to float32 and autocast is off in their forward; their outputs
    go on, in float32, to the next autocast op."""
    import torch

    def in_fp32(forward: Callable) -> Callable:

        def forward_fp32(*args, **kwargs):
            with torch.autocast('cpu', enabled=False):
                return forward(*_to_float(args), **kwargs)

        return forward_fp32

    for module in modules:
        module.forward = in_fp32(module.forward)
    try:
        yield
    finally:
        for module in modules:
            del module.forward  # back to the class's forward


def island_modules(model, part: str) -> List:
    """The modules that ``--fp32-parts`` ``part`` names."""
    from torch import nn
    if part == 'bn':
        return [m for m in model.modules()
                if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    if part == 'predictors':
        head = model.bbox_head
        return [*head.cls_convs, *head.reg_convs]
    return [dict(backbone=model.backbone, neck=model.neck,
                 head=model.bbox_head)[part]]


def gradients(model, state: dict, batch: dict, bf16: bool,
              fp32: Sequence = ()) -> Dict:
    """The loss gradients of ``batch`` from the weights ``state``."""
    import torch
    model.load_state_dict(state)  # BN statistics as the reference saw them
    model.zero_grad()
    with fp32_islands(fp32), torch.autocast('cpu', dtype=torch.bfloat16,
                                            enabled=bf16):
        data = model.data_preprocessor(copy.deepcopy(batch), True)
        losses = model._run_forward(data, mode='loss')
    loss, _ = model.parse_losses(losses)
    loss.backward()
    return {n: p.grad.detach().clone()
            for n, p in model.named_parameters() if p.grad is not None}


def relative_errors(ref: Dict, other: Dict) -> Dict[str, float]:
    """``||other - ref|| / ||ref||`` per part and over all parameters."""
    import torch
    errors = {}
    for part in PARTS:
        names = [n for n in ref if part in ('all', part_of(n))]
        if names:
            a = torch.cat([ref[n].flatten() for n in names])
            b = torch.cat([other[n].flatten() for n in names])
            errors[part] = float((b - a).norm() / a.norm())
    return errors


def measure(args) -> Dict:
    """Mean relative gradient error of each arm, per part, and how
    consistent plain bf16's error is from batch to batch."""
    from mmengine.config import Config
    from mmengine.registry import init_default_scope

    import mmdssd  # noqa: F401
    from mmdssd.datasets import point_cfg_at_synthetic
    cfg = Config.fromfile(args.config)
    point_cfg_at_synthetic(cfg, args.data_root)
    init_default_scope(cfg.get('default_scope', 'mmdet'))
    model, batches = _model_and_batches(cfg, args)
    state = copy.deepcopy(model.state_dict())
    rows, bf16_errors = {}, []

    def grads(batch, bf16, part=None):
        fp32 = island_modules(model, part) if part else ()
        return gradients(model, state, batch, bf16, fp32)

    for batch, next_batch in zip(batches, batches[1:]):
        ref = grads(batch, False)
        arms = {'fp32 again': grads(batch, False),
                'fp32 next batch': grads(next_batch, False),
                'bf16': grads(batch, True),
                **{f'bf16, {part} fp32': grads(batch, True, part)
                   for part in args.fp32_parts}}
        bf16_errors.append(flat_difference(ref, arms['bf16']))
        for name, other in arms.items():
            rows.setdefault(name, []).append(relative_errors(ref, other))
    errors = {name: {part: statistics.mean(r[part] for r in runs)
                     for part in runs[0]} for name, runs in rows.items()}
    return dict(errors=errors, consistency=consistency(bf16_errors))


def flat_difference(ref: Dict, other: Dict):
    """``other - ref`` over all parameters, as one vector."""
    import torch
    return torch.cat([(other[n] - ref[n]).flatten() for n in ref])


def consistency(errors: List) -> float:
    """``sqrt(n) * ||mean of the n error vectors|| / mean of their norms``:
    about 1 where the errors are independent from batch to batch (noise,
    which averages out over steps), ``sqrt(n)`` where every batch has the
    same error (a bias, which adds up)."""
    import torch
    if len(errors) < 2:
        return float('nan')
    stacked = torch.stack(errors)
    return float(len(errors)**0.5 * stacked.mean(0).norm() /
                 stacked.norm(dim=1).mean())


def _model_and_batches(cfg, args):
    """The job's model in training mode and ``--batches`` + 1 batches
    (the last one only as the next batch of the one before it)."""
    import torch
    from mmdet.registry import MODELS
    from mmengine.runner import Runner, load_checkpoint

    from mmdssd.utils.timing import endless
    torch.manual_seed(0)
    model = MODELS.build(cfg.model)
    model.init_weights()
    if args.checkpoint:
        load_checkpoint(model, args.checkpoint, map_location='cpu')
    model.to(memory_format=torch.channels_last).train()
    batches = endless(Runner.build_dataloader(cfg.train_dataloader, seed=0))
    return model, [next(batches) for _ in range(args.batches + 1)]


def main() -> None:
    args = parse_args()
    import logging

    from mmengine.logging import MMLogger
    MMLogger.get_instance('mmengine').setLevel(logging.WARNING)
    results = measure(args)
    print(f'{"gradients":<24}' + ''.join(f'{p:>16}' for p in PARTS))
    for name, errors in results['errors'].items():
        print(f'{name:<24}' + ''.join(f'{errors.get(p, float("nan")):16.4f}'
                                     for p in PARTS))
    start = args.checkpoint or 'the initialisation'
    print(f'relative error to the fp32 gradient of the same batch, mean '
          f'over {args.batches} batches, from {start}')
    print(f'consistency of the bf16 error over the batches: '
          f'{results["consistency"]:.2f} (1: independent noise; '
          f'{args.batches**0.5:.2f}: the same error every batch)')
    if args.json:
        print(json.dumps(results))


if __name__ == '__main__':
    main()
