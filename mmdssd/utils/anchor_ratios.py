"""The paper's way of choosing default-box aspect ratios: K-means on the
training boxes (DSSD section 3.2: 1.6, 2 and 3 on VOC07+12), and how well
a prior generator's boxes cover a set of ground truths (best IoU, and
how many an assigner makes positive)."""
from typing import TYPE_CHECKING, Dict, List, Optional, Sequence, Tuple

import numpy as np
import torch

if TYPE_CHECKING:
    from mmdet.models.task_modules.assigners import BaseAssigner
    from mmengine.config import Config

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


def training_boxes(cfg: 'Config', max_images: Optional[int] = None
                   ) -> Tuple[List[torch.Tensor], List[dict]]:
    """The config's training boxes as the network sees them.

    Args:
        cfg: a detector config; its training set (inside any dataset
            wrappers, the first of a concatenation) is read without its
            pipeline, and the boxes scaled as the pipeline's ``Resize``
            would scale them.
        max_images: read at most this many images (default: all).

    Returns:
        Per image, its boxes (G, 4) in network input coordinates (ignored
        boxes left out); and the training pipeline.
    """
    from mmdet.registry import DATASETS
    from mmengine.registry import init_default_scope
    init_default_scope('mmdet')
    ds_cfg = cfg.train_dataloader.dataset
    while 'dataset' in ds_cfg or 'datasets' in ds_cfg:
        ds_cfg = ds_cfg.get('dataset') or ds_cfg.datasets[0]
    pipeline = ds_cfg.get('pipeline', [])
    dataset = DATASETS.build(dict(ds_cfg, pipeline=[]))
    count = len(dataset)
    if max_images is not None:
        count = min(max_images, count)
    out = []
    for i in range(count):
        info = dataset.get_data_info(i)
        fx, fy = resize_factors(pipeline, (info['width'], info['height']))
        boxes = [inst['bbox'] for inst in info['instances']
                 if not inst.get('ignore_flag', 0)]
        boxes = torch.tensor(boxes, dtype=torch.float32).reshape(-1, 4)
        out.append(boxes * torch.tensor([fx, fy, fx, fy]))
    return out, pipeline


def config_priors(cfg: 'Config',
                  ratios: Optional[Sequence[float]] = None) -> torch.Tensor:
    """All default boxes (N, 4) of the config's network at its input size,
    with the anchor generator's ``ratios`` replaced where given."""
    from mmdet.registry import MODELS, TASK_UTILS
    model_cfg = cfg.model.copy()
    if model_cfg.backbone.get('init_cfg'):
        model_cfg.backbone.init_cfg = None  # the shapes need no weights
    model = MODELS.build(model_cfg).eval()
    size = cfg.model.bbox_head.anchor_generator.get('input_size', 300)
    with torch.no_grad():
        feats = model.extract_feat(torch.zeros(1, 3, size, size))
    sizes = [f.shape[-2:] for f in feats]
    ag = cfg.model.bbox_head.anchor_generator.copy()
    if ratios is not None:
        ag.ratios = ratios
    return torch.cat(TASK_UTILS.build(ag).grid_priors(sizes, device='cpu'))


def ratio_report(cfg: 'Config', k: int = 3,
                 max_images: Optional[int] = None) -> Dict:
    """K-means ratios for the config's training boxes, and how the current
    and the suggested default boxes cover them.

    Args:
        cfg: a detector config with an SSD-style anchor generator.
        k: ratios to find.
        max_images: read at most this many training images.

    Returns:
        ``boxes`` and ``images`` counted; ``current`` and ``suggested``,
        each with its ``ratios`` and ``coverage`` (see
        :func:`anchor_coverage`); ``current`` also with the ``positives``
        per box under the config's assigner (see
        :func:`positives_per_box`).
    """
    from mmdet.registry import TASK_UTILS
    boxes, _ = training_boxes(cfg, max_images)
    allb = torch.cat(boxes) if boxes else torch.zeros(0, 4)
    wh = (allb[:, 2:] - allb[:, :2]).numpy()
    keep = (wh > 0).all(1)
    suggested = [round(r, 2) for r in kmeans_ratios(wh[keep, 0], wh[keep, 1],
                                                    k)]
    current = list(cfg.model.bbox_head.anchor_generator.ratios)
    priors = config_priors(cfg)
    return dict(
        boxes=int(keep.sum()),
        images=len(boxes),
        current=dict(ratios=current,
                     coverage=anchor_coverage(priors, boxes),
                     positives=positives_per_box(
                         priors, boxes,
                         TASK_UTILS.build(cfg.model.train_cfg.assigner))),
        suggested=dict(ratios=suggested,
                       coverage=anchor_coverage(
                           config_priors(cfg, suggested), boxes)))


def ratio_report_text(report: Dict, pos_iou_thr: Optional[float]) -> str:
    """:func:`ratio_report` as a table, ending with the line to paste into
    the config; ``pos_iou_thr`` is the assigner's, named beside the
    positives."""
    names = ['all'] + [n for n, _, _ in SIZE_RANGES]
    lines = [
        f'{report["boxes"]} training boxes in {report["images"]} images, '
        'as the network sees them',
        f'{"default boxes":<32}' + ''.join(f'{n + " (n)":>22}'
                                           for n in names)
    ]
    for key in ('current', 'suggested'):
        cov = report[key]['coverage']
        cells = ''.join(
            f'{cov[n]["matched"]:>8.3f} / {cov[n]["mean_best_iou"]:.3f}'
            f' ({cov[n]["count"]:>4})' for n in names)
        lines.append(f'{key + " ratios " + str(report[key]["ratios"]):<32}'
                     f'{cells}')
    pos = report['current']['positives']
    lines += [
        '(each cell: fraction matched at IoU >= 0.5 / mean best IoU '
        '(boxes))',
        "positives per box, current default boxes and the config's "
        f'assigner (pos_iou_thr {pos_iou_thr}): mean {pos["mean"]:.2f}, '
        f'median {pos["median"]:.0f}, {pos["single"]:.1%} with one only',
        'paste into the config:',
        'model = dict(bbox_head=dict(anchor_generator=dict(ratios='
        f'{report["suggested"]["ratios"]})))'
    ]
    return '\n'.join(lines)
