"""MMDetection's MaxIoUAssigner for a whole batch at once."""
from typing import Sequence, Tuple

import torch
from mmdet.models.task_modules.assigners import BboxOverlaps2D, MaxIoUAssigner
from mmdet.registry import TASK_UTILS
from mmdet.structures.bbox import get_box_tensor
from mmengine.structures import InstanceData
from torch import Tensor

from .tiled_iou2d_calculator import TiledBboxOverlaps2D, box_iou


@TASK_UTILS.register_module()
class BatchMaxIoUAssigner(MaxIoUAssigner):
    """``MaxIoUAssigner`` with :meth:`batch_assign`: one assignment for
    every image of a batch, equal to the per-image ``assign`` (kept, for
    heads that assign image by image).

    The batch path implements SSD's use of the assigner. Options it does
    not implement are refused when it is built, naming them, so a config
    can never take a path that differs from MMDetection's.

    Args:
        pos_iou_thr (float): IoU at or above which a box is positive.
        neg_iou_thr (float): IoU below which a box is negative (a range
            ``(lo, hi)`` is not implemented).
        min_pos_iou (float): Least IoU of a ground truth's forced best box.
        gt_max_assign_all (bool): Must be False (each ground truth forces
            one best box), as SSD assigns.
        ignore_iof_thr (float): Must be <= 0 (no ignored boxes).
        match_low_quality (bool): Force each ground truth's best box.
        iou_calculator (dict): Must compute plain IoU (``BboxOverlaps2D``
            or ``TiledBboxOverlaps2D`` without scale or dtype).
        **kwargs: Other ``MaxIoUAssigner`` arguments; ``perm_repeat_gt_cfg``
            must be None.
    """

    def __init__(self,
                 pos_iou_thr: float,
                 neg_iou_thr: float,
                 min_pos_iou: float = .0,
                 gt_max_assign_all: bool = False,
                 ignore_iof_thr: float = -1,
                 match_low_quality: bool = True,
                 iou_calculator: dict = dict(type='TiledBboxOverlaps2D'),
                 **kwargs) -> None:
        super().__init__(pos_iou_thr, neg_iou_thr, min_pos_iou,
                         gt_max_assign_all, ignore_iof_thr,
                         match_low_quality=match_low_quality,
                         iou_calculator=iou_calculator, **kwargs)
        unsupported = self._unsupported()
        if unsupported:
            raise ValueError('BatchMaxIoUAssigner does not implement '
                             f'{", ".join(unsupported)}; use MaxIoUAssigner '
                             '(the head then assigns image by image)')

    def _unsupported(self) -> Sequence[str]:
        calc = self.iou_calculator
        checks = [
            (isinstance(self.neg_iou_thr, (int, float)),
             f'neg_iou_thr={self.neg_iou_thr!r} (a range)'),
            (not self.gt_max_assign_all, 'gt_max_assign_all=True'),
            (self.ignore_iof_thr <= 0,
             f'ignore_iof_thr={self.ignore_iof_thr} (ignored boxes)'),
            (self.perm_repeat_gt_cfg is None,
             f'perm_repeat_gt_cfg={self.perm_repeat_gt_cfg!r}'),
            (type(calc) in (BboxOverlaps2D, TiledBboxOverlaps2D)
             and calc.scale == 1.
             and calc.dtype is None,
             f'iou_calculator={type(calc).__name__} with scale/dtype'),
        ]
        return [why for ok, why in checks if not ok]

    @staticmethod
    def _pad_gts(gts: Sequence[InstanceData], num_classes: int,
                 like: Tensor) -> Tuple[Tensor, ...]:
        """All ground truths stacked (N, 4) / (N, ), each one's image and
        index in it, and the padded (B, G, 4) boxes and (B, G) labels."""
        device = like.device
        counts = [len(g) for g in gts]
        num_imgs, max_gts = len(gts), max(counts + [1])
        boxes = torch.cat([get_box_tensor(g.bboxes).to(like.dtype)
                           for g in gts]) if sum(counts) else like.new_zeros(
                               0, 4)
        labels = torch.cat([g.labels for g in gts]) if sum(
            counts) else like.new_zeros(0, dtype=torch.long)
        img_of = torch.repeat_interleave(
            torch.arange(num_imgs, device=device),
            torch.tensor(counts, device=device))
        starts = torch.tensor([0] + counts[:-1], device=device).cumsum(0)
        local = torch.arange(len(boxes), device=device) - starts[img_of]
        gt_boxes = like.new_zeros(num_imgs, max_gts, 4)
        gt_boxes[img_of, local] = boxes
        gt_labels = torch.full((num_imgs, max_gts), num_classes,
                               dtype=torch.long, device=device)
        gt_labels[img_of, local] = labels
        return boxes, img_of, local, gt_boxes, gt_labels

    def batch_assign(self, anchors: Tensor, valid: Tensor,
                     batch_gt_instances: Sequence[InstanceData],
                     num_classes: int) -> Tuple[Tensor, Tensor, Tensor]:
        """Assign the anchors of every image of a batch.

        Args:
            anchors: (A, 4) anchors, the same for every image.
            valid: (B, A) valid flags of each image's anchors.
            batch_gt_instances: Each image's ground truths.
            num_classes: The label of padding ground truths (background).

        Returns:
            tuple: ``assigned`` (B, A) long: -1 ignored, 0 background,
            ``g + 1`` matched to ground truth ``g`` (as ``gt_inds``); the
            padded ground-truth boxes (B, G, 4) and labels (B, G).
        """
        num_imgs, num_anchors = valid.shape
        boxes, img_of, local, gt_boxes, gt_labels = self._pad_gts(
            batch_gt_instances, num_classes, anchors)
        ious = box_iou(boxes, anchors)  # real gts only, (N, A)
        if not bool(valid.all()):
            ious = ious.masked_fill(~valid[img_of], -1)
        assigned = self._assign_by_threshold(ious, img_of, local, valid,
                                             gt_boxes.shape[1])
        if self.match_low_quality:
            # each gt's best anchor; MMDetection loops over gts, so a later
            # gt wins a shared anchor
            gt_max, gt_argmax = ious.max(dim=1)
            low = gt_max >= self.min_pos_iou
            forced = torch.full_like(assigned, -1).view(-1).scatter_reduce(
                0, img_of[low] * num_anchors + gt_argmax[low], local[low],
                reduce='amax')
            forced = forced.view(num_imgs, num_anchors)
            assigned = torch.where(forced >= 0, forced + 1, assigned)
        return assigned, gt_boxes, gt_labels

    def _assign_by_threshold(self, ious: Tensor, img_of: Tensor,
                             local: Tensor, valid: Tensor,
                             max_gts: int) -> Tensor:
        """Background below ``neg_iou_thr``, the best ground truth at or
        above ``pos_iou_thr`` (the first of equals, as ``argmax``), -1
        between and for invalid anchors."""
        num_imgs, num_anchors = valid.shape
        neg_thr, pos_thr = self.neg_iou_thr, self.pos_iou_thr
        # only (gt, anchor) pairs at or above the lower threshold can make
        # an anchor anything but background, and they are few: reduce over
        # those instead of over a padded (B, G, A) IoU tensor
        gt_idx, anchor = (ious >= min(neg_thr, pos_thr)).nonzero(
            as_tuple=True)
        iou = ious[gt_idx, anchor]
        key = img_of[gt_idx] * num_anchors + anchor  # (image, anchor)
        max_ov = ious.new_full((num_imgs * num_anchors, ), -1)
        max_ov.scatter_reduce_(0, key, iou, reduce='amax')
        best = (iou >= pos_thr) & (iou == max_ov[key])
        first_gt = key.new_full((num_imgs * num_anchors, ), max_gts)
        first_gt.scatter_reduce_(
            0, key[best], local[gt_idx[best]], reduce='amin')
        max_ov = max_ov.view(num_imgs, num_anchors)
        assigned = torch.where(valid & (max_ov < neg_thr), 0, -1)
        pos = valid & (max_ov >= pos_thr)
        assigned[pos] = first_gt.view(num_imgs, num_anchors)[pos] + 1
        return assigned
