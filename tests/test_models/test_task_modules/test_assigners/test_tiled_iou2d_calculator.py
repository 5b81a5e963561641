import pytest
import torch
from mmdet.models.task_modules.assigners import BboxOverlaps2D
from mmdet.structures.bbox import bbox_overlaps

from mmdssd.models.task_modules.assigners import (TiledBboxOverlaps2D,
                                                  tiled_iou2d_calculator)


def _boxes(n, m, seed=0):
    g = torch.Generator().manual_seed(seed)
    xy = torch.rand(n + m, 2, generator=g) * 100
    boxes = torch.cat([xy, xy + torch.rand(n + m, 2, generator=g) * 60], 1)
    boxes[n:n + 2, 2:] = boxes[n:n + 2, :2]  # zero-area boxes
    return boxes[:n], boxes[n:]


@pytest.mark.parametrize('tile', [1 << 17, 7])
def test_box_iou_is_mmdet_bbox_overlaps_bitwise(monkeypatch, tile):
    monkeypatch.setattr(tiled_iou2d_calculator, 'IOU_TILE_NUMEL',
                        tile)  # 7: many tiles
    for n, m in [(5, 301), (0, 20), (3, 1)]:
        a, b = _boxes(n, m)
        ours = tiled_iou2d_calculator.box_iou(a, b)
        assert torch.equal(ours, bbox_overlaps(a, b))


def test_calculator_is_bbox_overlaps_2d_in_every_mode():
    a, b = _boxes(6, 40)
    ours, theirs = TiledBboxOverlaps2D(), BboxOverlaps2D()
    assert torch.equal(ours(a, b), theirs(a, b))
    scored = torch.cat([b, torch.rand(len(b), 1)], 1)  # a score column
    assert torch.equal(ours(a, scored), theirs(a, scored))
    assert torch.equal(ours(a, b, mode='iof'), theirs(a, b, mode='iof'))
    assert torch.equal(ours(a, b[:6], is_aligned=True),
                       theirs(a, b[:6], is_aligned=True))
