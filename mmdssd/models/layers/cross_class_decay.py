"""Cross-class score decay: a detection that a better-scored detection of
another class covers is ranked lower instead of removed.

NMS runs within each class, so where the classifier hesitates between two
classes, one object keeps a box of each; the second one counts as a false
positive of its class, ranked among true ones. NMS across classes removes
it, and with it the right box whenever the wrong class scored higher. A
decay keeps both and lowers the doubtful one.
"""
from typing import Optional

import torch
from mmdet.structures.bbox import bbox_overlaps
from torch import Tensor


def check_decay_cfg(decay: Optional[dict]) -> None:
    """Raise ``ValueError`` naming the field unless ``decay`` is None or
    ``dict(iou_threshold=t, factor=f)`` with ``0 <= t < 1``,
    ``0 <= f <= 1``."""
    if decay is None:
        return
    fields = set(dict(decay))
    if fields != {'iou_threshold', 'factor'}:
        raise ValueError('test_cfg.cross_class_decay takes iou_threshold '
                         f'and factor, got {sorted(fields)}')
    if not 0 <= decay['iou_threshold'] < 1:
        raise ValueError('test_cfg.cross_class_decay.iou_threshold must be '
                         f"in [0, 1), got {decay['iou_threshold']}")
    if not 0 <= decay['factor'] <= 1:
        raise ValueError('test_cfg.cross_class_decay.factor must be in '
                         f"[0, 1], got {decay['factor']}")


def cross_class_decay(bboxes: Tensor,
                      scores: Tensor,
                      labels: Tensor,
                      iou_threshold: float,
                      factor: float,
                      ref_bboxes: Optional[Tensor] = None,
                      ref_scores: Optional[Tensor] = None,
                      ref_labels: Optional[Tensor] = None) -> Tensor:
    """The scores of detections ``(..., n)``, each multiplied by ``factor``
    where a reference detection of another class with a higher score
    overlaps it by more than ``iou_threshold``.

    Args:
        bboxes (Tensor): ``(..., n, 4)``, ``x1, y1, x2, y2``.
        scores (Tensor): ``(..., n)``.
        labels (Tensor): ``(..., n)``.
        iou_threshold (float): Overlap above which a better box of another
            class lowers the score.
        factor (float): What such a score is multiplied by (once, however
            many boxes cover it).
        ref_bboxes, ref_scores, ref_labels (Tensor, optional): The
            detections that decay the others, ``(..., m)``; the detections
            themselves by default. A reference of score 0 decays nothing
            (padding).

    Returns:
        Tensor: The new scores, ``(..., n)``; the order is unchanged.
    """
    if ref_bboxes is None:
        ref_bboxes, ref_scores, ref_labels = bboxes, scores, labels
    covered = ((bbox_overlaps(bboxes, ref_bboxes) > iou_threshold)
               & (labels[..., :, None] != ref_labels[..., None, :])
               & (ref_scores[..., None, :] > scores[..., :, None])).any(-1)
    return torch.where(covered, scores * factor, scores)
