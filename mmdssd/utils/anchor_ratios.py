"""The paper's way of choosing default-box aspect ratios: K-means on the
training boxes (DSSD section 3.2: 1.6, 2 and 3 on VOC07+12), and how well
a prior generator's boxes cover a set of ground truths (best IoU, and
how many an assigner makes positive)."""
from typing import TYPE_CHECKING, Dict, List, Sequence, Tuple

import numpy as np
import torch

if TYPE_CHECKING:
    from mmdet.models.task_modules.assigners import BaseAssigner

# COCO's size ranges, on sqrt(area) in the network's input pixels
SIZE_RANGES = (('small', 0, 32), ('medium', 32, 96), ('large', 96, 1e9))


def kmeans_ratios(widths: np.ndarray, heights: np.ndarray, k: int = 3,
                  iters: int = 100) -> List[float]:
    """Cluster box shapes into ``k`` aspect ratios >= 1.

    A box of ratio ``a`` and one of ``1 / a`` are served by the same
    default-box pair (the s_k rule adds both orientations), so the
    clustering runs on ``|log(w / h)|`` (1-D K-means, deterministic
    quantile start) and returns ``exp`` of the centres, ascending.

    Args:
        widths, heights (np.ndarray): Box sides, same length, > 0.
        k (int): Number of ratios. Defaults to 3 (the paper's).
        iters (int): Lloyd iterations at most. Defaults to 100.

    Returns:
        list[float]: ``k`` ratios, each >= 1.
    """
    widths, heights = np.asarray(widths, float), np.asarray(heights, float)
    if widths.shape != heights.shape or widths.ndim != 1:
        raise ValueError('widths and heights must be 1-D and of one length')
    if len(widths) < k:
        raise ValueError(f'{len(widths)} boxes cannot make {k} clusters')
    if (widths <= 0).any() or (heights <= 0).any():
        raise ValueError('box sides must be positive')
    x = np.abs(np.log(widths / heights))
    centres = np.quantile(x, (np.arange(k) + 0.5) / k)
    for _ in range(iters):
        assign = np.abs(x[:, None] - centres[None]).argmin(1)
        new = np.array([x[assign == j].mean() if (assign == j).any() else
                        centres[j] for j in range(k)])
        if np.allclose(new, centres):
            break
        centres = new
    return sorted(float(np.exp(c)) for c in centres)


def anchor_coverage(priors: torch.Tensor, gt_boxes: Sequence[torch.Tensor],
                    thr: float = 0.5) -> Dict[str, Dict[str, float]]:
    """How well default boxes cover ground truths.

    Args:
        priors (Tensor): (A, 4) x1y1x2y2 default boxes of the input.
        gt_boxes (Sequence[Tensor]): Per image, (G, 4) boxes in the same
            (network input) coordinates.
        thr (float): IoU that counts as matched (SSD's 0.5).

    Returns:
        dict: for ``'all'`` and each COCO size range: ``count``,
        ``matched`` (fraction of boxes whose best default box has
        IoU >= ``thr``) and ``mean_best_iou``.
    """
    from mmdssd.models.task_modules.assigners import box_iou
    best, sides = [], []
    for boxes in gt_boxes:
        if len(boxes) == 0:
            continue
        best.append(box_iou(boxes.float(), priors.float()).amax(1))
        wh = boxes[:, 2:] - boxes[:, :2]
        sides.append((wh[:, 0] * wh[:, 1]).clamp(min=0).sqrt())
    best = torch.cat(best) if best else torch.zeros(0)
    sides = torch.cat(sides) if sides else torch.zeros(0)
    out = {}
    for name, low, high in (('all', 0, 1e9), ) + SIZE_RANGES:
        sel = (sides >= low) & (sides < high)
        n = int(sel.sum())
        out[name] = dict(
            count=n,
            matched=float((best[sel] >= thr).float().mean()) if n else 0.0,
            mean_best_iou=float(best[sel].mean()) if n else 0.0)
    return out


def positives_per_box(priors: torch.Tensor,
                      gt_boxes: Sequence[torch.Tensor],
                      assigner: 'BaseAssigner') -> Dict[str, float]:
    """How many default boxes an assigner makes positive for each
    ground-truth box: few positives per object give a young detector
    little to learn from.

    Args:
        priors (Tensor): (A, 4) x1y1x2y2 default boxes of the input.
        gt_boxes (Sequence[Tensor]): Per image, (G, 4) boxes in the same
            (network input) coordinates.
        assigner (BaseAssigner): An MMDetection assigner, e.g. the one
            built from a config's ``train_cfg.assigner``.

    Returns:
        dict: ``count`` (boxes), ``mean`` and ``median`` positives per
        box, and ``single`` (the fraction of boxes with one positive).
    """
    from mmengine.structures import InstanceData
    priors = InstanceData(priors=priors.float())
    counts = []
    for boxes in gt_boxes:
        if len(boxes) == 0:
            continue
        gts = InstanceData(bboxes=boxes.float(),
                           labels=boxes.new_zeros(len(boxes),
                                                  dtype=torch.long))
        inds = assigner.assign(priors, gts).gt_inds
        counts.append(torch.bincount(inds[inds > 0] - 1,
                                     minlength=len(boxes)))
    if not counts:
        return dict(count=0, mean=0.0, median=0.0, single=0.0)
    per_box = torch.cat(counts).float()
    return dict(count=len(per_box), mean=float(per_box.mean()),
                median=float(per_box.median()),
                single=float((per_box == 1).float().mean()))


def resize_factors(pipeline: Sequence[dict],
                   img_size: Tuple[int, int]) -> Tuple[float, float]:
    """(x, y) scale the pipeline's ``Resize`` applies to a (w, h) image;
    (1, 1) without one. Random augmentation (crop, expand) is left out:
    the boxes are measured as the network sees the whole image."""
    w, h = img_size
    for t in pipeline:
        if t.get('type') != 'Resize':
            continue
        scale = t['scale']
        scale = (scale, scale) if isinstance(scale, int) else tuple(scale)
        if t.get('keep_ratio', False):
            factor = min(max(scale) / max(w, h), min(scale) / min(w, h))
            return factor, factor
        return scale[0] / w, scale[1] / h
    return 1.0, 1.0
