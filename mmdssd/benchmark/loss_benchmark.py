"""Time DSSDHead's batched SSD loss against MMDetection's SSDHead loss."""
import copy
import statistics
from typing import Dict

import torch
from mmdet.models.dense_heads import SSDHead
from mmdet.registry import TASK_UTILS
from mmengine.config import ConfigDict
from mmengine.structures import InstanceData

from ..utils.timing import time_in_turns

DSSD321_MAPS = (40, 20, 10, 5, 3, 1)


def _inputs(head, batch: int, maps, size: int, max_gts: int, seed: int):
    g = torch.Generator().manual_seed(seed)
    cls = [
        torch.randn(batch, n * head.cls_out_channels, m, m, generator=g)
        for n, m in zip(head.num_base_priors, maps)
    ]
    reg = [
        torch.randn(batch, n * 4, m, m, generator=g)
        for n, m in zip(head.num_base_priors, maps)
    ]
    gts = []
    for i in range(batch):
        n = int(torch.randint(0, max_gts + 1, (1, ), generator=g))
        xy = torch.rand(n, 2, generator=g) * size * 0.7
        wh = torch.rand(n, 2, generator=g) * size * 0.3 + 8
        gts.append(
            InstanceData(
                bboxes=torch.cat([xy, xy + wh], 1),
                labels=torch.randint(
                    head.num_classes, (n, ), generator=g)))
    metas = [
        dict(img_shape=(size, size), pad_shape=(size, size),
             scale_factor=(1., 1.)) for _ in range(batch)
    ]
    return cls, reg, gts, metas


def _heads():
    """A DSSDHead with the DSSD321 boxes, and a copy of it that assigns with
    MMDetection's own assigner and IoU (MMDetection's loss as MMDetection
    runs it)."""
    import mmdssd  # noqa: F401
    from mmdssd.models.dense_heads import DSSDHead
    from mmengine.config import Config

    from mmdssd.utils import resolve_config
    model = Config.fromfile(
        resolve_config('mmdssd::_base_/models/dssd321_r101.py')).model
    head = DSSDHead(num_classes=20, prediction_module='a',
                    in_channels=(8, ) * 6,
                    anchor_generator=model.bbox_head.anchor_generator,
                    train_cfg=ConfigDict(model.train_cfg))
    stock = copy.copy(head)
    stock.assigner = TASK_UTILS.build(
        dict(model.train_cfg.assigner, type='MaxIoUAssigner',
             iou_calculator=dict(type='BboxOverlaps2D')))
    return head, stock


def benchmark_loss(batch: int = 16,
                   repeat: int = 7,
                   warmup: int = 2,
                   max_gts: int = 10,
                   seed: int = 0,
                   backward: bool = False) -> Dict:
    """Median seconds of ``loss_by_feat`` (targets + loss), both heads.

    Both run on the same DSSDHead instance (DSSD321 boxes, 17080 per image,
    21 classes), on the same random predictions and ground truths (0 to
    ``max_gts`` per image). With ``backward`` each timing also includes the
    gradient of the loss with respect to the predictions, as in training.
    """
    head, stock = _heads()
    cls, reg, gts, metas = _inputs(head, batch, DSSD321_MAPS, 320, max_gts,
                                   seed)
    num_boxes = sum(
        len(p) for p in head.prior_generator.grid_priors(
            [(m, m) for m in DSSD321_MAPS], device='cpu'))
    preds = cls + reg
    for p in preds:
        p.requires_grad_(backward)

    def loss_fn(loss_by_feat):

        def fn():
            losses = loss_by_feat(cls, reg, gts, metas)
            if backward:
                total = sum(sum(v) if isinstance(v, list) else v
                            for v in losses.values())
                torch.autograd.grad(total, preds)
            return losses

        return fn

    ours_fn = loss_fn(head.loss_by_feat)
    theirs_fn = loss_fn(lambda *a: SSDHead.loss_by_feat(stock, *a))
    with torch.set_grad_enabled(backward):
        ours = ours_fn()
        theirs = theirs_fn()
        times = time_in_turns(dict(theirs=theirs_fn, ours=ours_fn), repeat,
                              warmup)
    pairs = list(zip(times['theirs'], times['ours']))
    t_theirs = statistics.median(times['theirs'])
    t_ours = statistics.median(times['ours'])
    diff = max(
        abs(float(ours[k]) - float(sum(theirs[k])))
        for k in ('loss_cls', 'loss_bbox'))
    return dict(
        batch=batch,
        backward=backward,
        boxes_per_image=num_boxes,
        mmdet_ssdhead_s=t_theirs,
        dssdhead_batched_s=t_ours,
        speedup=t_theirs / t_ours,
        speedup_of_pairs=statistics.median(p[0] / p[1] for p in pairs),
        max_abs_loss_diff=diff)
