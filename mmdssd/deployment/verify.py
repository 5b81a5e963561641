"""Check an exported model against PyTorch, detection by detection."""
import copy
import os.path as osp
from contextlib import contextmanager
from dataclasses import dataclass
from typing import List, Optional, Sequence, Tuple, Union

import numpy as np
from mmengine.config import Config
from mmengine.structures import InstanceData


@dataclass
class Comparison:
    """How two detectors' results on the same images differ.

    ``tie_swaps`` counts detections one side kept and the other did not
    that a tie explains: their scores tie, within ``tie_atol``, with the
    detection the other side kept instead, or their overlap with a kept
    box ties with the NMS threshold (and the box that the extra place
    pushed out at the ``max_per_img`` cut). Which of two tied boxes
    survives is arbitrary, so a swap is not a difference.
    ``set_mismatches`` counts the detections kept by one side only that
    no tie explains.
    """
    num_images: int
    num_dets: int
    count_mismatches: int
    label_mismatches: int
    max_box_rel_diff: float
    max_score_diff: float
    box_rtol: float = 1e-3
    score_atol: float = 1e-4
    set_mismatches: int = 0
    tie_swaps: int = 0
    tie_atol: float = 0.0

    @property
    def equal(self) -> bool:
        return (self.count_mismatches == 0 and self.label_mismatches == 0
                and self.set_mismatches == 0
                and self.max_box_rel_diff <= self.box_rtol
                and self.max_score_diff <= self.score_atol)

    def __str__(self) -> str:
        verdict = 'equal' if self.equal else 'DIFFERENT'
        return (f'{verdict}: {self.num_images} images, {self.num_dets} '
                f'detections, {self.count_mismatches} count, '
                f'{self.label_mismatches} label and {self.set_mismatches} '
                f'untied set mismatches ({self.tie_swaps} explained by ties, '
                f'scores within {self.tie_atol:.1e}), '
                f'boxes max rel diff {self.max_box_rel_diff:.2e} '
                f'(tol {self.box_rtol:g}), scores max diff '
                f'{self.max_score_diff:.2e} (tol {self.score_atol:g})')


def _match(x: InstanceData, y: InstanceData) -> np.ndarray:
    """For each detection of ``y``, the index of its counterpart in ``x``
    (-1 if none): the nearest box of the same label not taken yet, ``y``
    taken best score first. Independent of how either side broke ties."""
    xb, yb = x.bboxes.numpy(), y.bboxes.numpy()
    xl, yl = x.labels.numpy(), y.labels.numpy()
    taken = np.zeros(len(xb), bool)
    match = np.full(len(yb), -1)
    for j in np.argsort(-y.scores.numpy(), kind='stable'):
        free = np.nonzero(~taken & (xl == yl[j]))[0]
        if len(free):
            i = free[np.abs(xb[free] - yb[j]).sum(1).argmin()]
            taken[i] = True
            match[j] = i
    return match


def _score_ties(only_a: np.ndarray, only_b: np.ndarray, scores: np.ndarray,
                tie_atol: float) -> Tuple[int, np.ndarray, np.ndarray]:
    """Pair the candidates kept by only one side, best score first, with
    those kept by only the other; returns the number of pairs whose scores
    tie within ``tie_atol`` and what is left on each side."""
    only_a = only_a[np.argsort(-scores[only_a], kind='stable')]
    only_b = only_b[np.argsort(-scores[only_b], kind='stable')]
    n = min(len(only_a), len(only_b))
    tied = np.abs(scores[only_a[:n]] - scores[only_b[:n]]) <= tie_atol
    return (int(tied.sum()), np.concatenate([only_a[:n][~tied], only_a[n:]]),
            np.concatenate([only_b[:n][~tied], only_b[n:]]))


def _iou_ties(extra: np.ndarray, other_kept: np.ndarray, pool: InstanceData,
              box_px: float) -> np.ndarray:
    """Which ``extra`` candidates the other side may have suppressed at an
    IoU tie: a box it kept, of the same label and at least the same score,
    overlaps the candidate by the NMS threshold to within what the box
    differences move an IoU (four times the largest, over the candidate's
    shorter side; at most 0.01)."""
    from mmdet.structures.bbox import bbox_overlaps
    nms_iou = pool.metainfo.get('nms_iou')
    tied = np.zeros(len(extra), bool)
    if nms_iou is None:
        return tied
    boxes, labels, scores = pool.bboxes, pool.labels, pool.scores
    for j, e in enumerate(extra):
        k = other_kept[((labels[other_kept] == labels[e]) &
                        (scores[other_kept] >= scores[e])).numpy()]
        if len(k):
            iou = bbox_overlaps(boxes[e][None], boxes[k])[0]
            side = float((boxes[e, 2:] - boxes[e, :2]).min().clamp(min=1))
            tol = min(4 * box_px / side, 0.01)
            tied[j] = bool(((iou - nms_iou).abs() <= tol).any())
    return tied


def _at_cut(extra: np.ndarray, other_kept: np.ndarray, scores: np.ndarray,
            tie_atol: float) -> int:
    """How many ``extra`` candidates score no higher than the last box the
    other side kept: where its ``max_per_img`` cut fell."""
    if not len(other_kept):
        return 0
    return int((scores[extra] <= scores[other_kept].min() + tie_atol).sum())


def _set_differences(kept_a: np.ndarray, kept_b: np.ndarray,
                     pool: InstanceData, tie_atol: float,
                     box_px: float) -> Tuple[int, int]:
    """(explained, unexplained) detections kept by only one side. A swap
    of two tied scores explains both; a box one side kept where the other
    suppressed it at an IoU tie explains itself, and the one its extra
    place pushed out at the other side's ``max_per_img`` cut."""
    scores = pool.scores.numpy()
    tied, rest_a, rest_b = _score_ties(
        np.setdiff1d(kept_a, kept_b), np.setdiff1d(kept_b, kept_a), scores,
        tie_atol)
    iou_a = _iou_ties(rest_a, kept_b, pool, box_px)
    iou_b = _iou_ties(rest_b, kept_a, pool, box_px)
    # at most one box cut from the bottom per IoU tie on the other side
    cut_a = min(_at_cut(rest_a[~iou_a], kept_b, scores, tie_atol),
                int(iou_b.sum()))
    cut_b = min(_at_cut(rest_b[~iou_b], kept_a, scores, tie_atol),
                int(iou_a.sum()))
    explained = int(iou_a.sum() + iou_b.sum()) + cut_a + cut_b
    return 2 * tied + explained, len(rest_a) + len(rest_b) - explained


def _differences(x: InstanceData,
                 y: InstanceData) -> Tuple[float, float, float]:
    """Largest box difference relative to the coordinate (at least 1 px)
    and in pixels, and largest score difference, between paired
    detections."""
    xb, yb = x.bboxes.numpy(), y.bboxes.numpy()
    px = np.abs(xb - yb)
    scores = np.abs(x.scores.numpy() - y.scores.numpy())
    return (float((px / np.maximum(np.abs(yb), 1.0)).max()), float(px.max()),
            float(scores.max()))


def compare_results(a: Sequence[InstanceData],
                    b: Sequence[InstanceData],
                    box_rtol: float = 1e-3,
                    score_atol: float = 1e-4,
                    candidates: Optional[Sequence[InstanceData]] = None
                    ) -> Comparison:
    """Compare per-image ``pred_instances`` of ``a`` with the reference
    ``b``: same number of detections, same labels, boxes within
    ``box_rtol`` relative (to the coordinate, at least 1 px), scores
    within ``score_atol``.

    With ``candidates`` (the reference's detections before NMS and the
    caps, see :func:`reference_detections`), each detection of ``a`` is
    checked against the candidate it is, and the two sets of kept
    detections may differ by swaps of tied candidates only; without,
    detections are matched to ``b`` directly, so a swap reads as a box
    difference.
    """
    counts = labels = dets = 0
    box_diff = box_px = score_diff = 0.0
    kept = []  # per image: candidates kept by a, by b, the candidates
    for i, (x, y) in enumerate(zip(a, b)):
        dets += len(x.scores)
        if len(x.scores) != len(y.scores):
            counts += 1
            continue
        pool = y if candidates is None else candidates[i]
        match = _match(pool, x)
        labels += int((match < 0).sum())  # no same-label counterpart
        ok = match >= 0
        if not ok.any():
            continue
        boxes, px, scores = _differences(x[ok], pool[match[ok]])
        box_diff, score_diff = max(box_diff, boxes), max(score_diff, scores)
        box_px = max(box_px, px)
        if candidates is not None:
            kept_b = _match(pool, y)
            kept.append((match[ok], kept_b[kept_b >= 0], pool))
    report = Comparison(len(a), dets, counts, labels, box_diff, score_diff,
                        box_rtol, score_atol)
    # Two candidates can change places when each score may err by the
    # largest difference seen between the two sides: a tie is twice that
    # (twice again for the errors not seen), never more than score_atol.
    report.tie_atol = min(4 * score_diff, score_atol)
    for kept_a, kept_b, pool in kept:
        tied, untied = _set_differences(kept_a, kept_b, pool,
                                        report.tie_atol, box_px)
        report.tie_swaps += tied
        report.set_mismatches += untied
    return report


@contextmanager
def _test_cfg(head, drop: Sequence[str] = (), **changes):
    """The head's test_cfg without the keys ``drop`` and with ``changes``
    while the block runs."""
    cfg = head.test_cfg
    changed = copy.deepcopy(cfg)
    for key in drop:
        changed.pop(key, None)
    changed.update(changes)
    head.test_cfg = changed
    try:
        yield
    finally:
        head.test_cfg = cfg


def _candidates_cfg(head, score_atol: float):
    """The head's test_cfg without NMS, the decay or caps, twice its
    ``nms_pre`` and ``score_atol`` under its ``score_thr``: every detection
    a runtime may keep when scores tie at a cut."""
    cfg = head.test_cfg
    nms_pre = cfg.get('nms_pre', -1)
    return _test_cfg(
        head,
        drop=('cross_class_decay', ),
        nms=None,
        max_per_img=10**9,
        nms_pre=2 * nms_pre if nms_pre > 0 else nms_pre,
        score_thr=max(cfg.get('score_thr', 0.0) - score_atol, 0.0))


def _decay_candidates(model, images: List[str], pool: List[InstanceData],
                      decay: dict) -> None:
    """Give the candidates the scores the head's cross-class decay would:
    each is decayed by the detections the model keeps before the decay,
    as a kept one is."""
    from mmdet.apis import inference_detector

    from ..models.layers import cross_class_decay
    with _test_cfg(model.bbox_head, drop=('cross_class_decay', )):
        plain = [r.pred_instances for r in inference_detector(model, images)]
    for candidates, kept in zip(pool, plain):
        candidates.scores = cross_class_decay(
            candidates.bboxes, candidates.scores, candidates.labels,
            ref_bboxes=kept.bboxes, ref_scores=kept.scores,
            ref_labels=kept.labels, **decay)


def reference_detections(
        model, images: List[str], score_atol: float = 1e-4
) -> Tuple[List[InstanceData], List[InstanceData]]:
    """The PyTorch ``model``'s detections on ``images`` and its candidates
    (the same detections before NMS and the caps), for
    :func:`compare_results`."""
    from mmdet.apis import inference_detector
    kept = [r.pred_instances for r in inference_detector(model, images)]
    with _candidates_cfg(model.bbox_head, score_atol):
        pool = [r.pred_instances for r in inference_detector(model, images)]
    decay = model.bbox_head.test_cfg.get('cross_class_decay')
    if decay:
        _decay_candidates(model, images, pool, decay)
    nms = model.bbox_head.test_cfg.get('nms') or {}
    if nms.get('type', 'nms') == 'nms' and 'iou_threshold' in nms:
        for p in pool:
            p.set_metainfo(dict(nms_iou=nms['iou_threshold']))
    return kept, pool


def first_test_images(cfg, num_images: int) -> List[str]:
    """Paths of the first ``num_images`` images of the config's test set."""
    from mmdet.registry import DATASETS
    from mmdet.utils import register_all_modules
    register_all_modules()
    ds_cfg = cfg.test_dataloader.dataset.copy()
    ds_cfg.pipeline = []
    dataset = DATASETS.build(ds_cfg)
    paths = [dataset.get_data_info(i)['img_path']
             for i in range(min(num_images, len(dataset)))]
    missing = [p for p in paths if not osp.isfile(p)]
    if missing:
        raise FileNotFoundError(f'test image not found: {missing[0]}')
    return paths


def compare_with_pytorch(config: Union[str, Config],
                         checkpoint: str,
                         model_file: str,
                         num_images: int = 8,
                         images: Optional[List[str]] = None,
                         runtime: Optional[str] = None,
                         **kwargs) -> Comparison:
    """Detections of the PyTorch model (as trained, BN not folded) vs the
    exported model under ``runtime`` (``kwargs`` go to its detector), on
    ``images`` (default: the first test images)."""
    from mmdet.apis import inference_detector, init_detector

    from .deployed_detector import init_deployed_detector
    from .onnx_export import as_config
    cfg = as_config(config)
    images = images or first_test_images(cfg, num_images)
    torch_model = init_detector(cfg, checkpoint, device='cpu')
    deployed = init_deployed_detector(cfg, model_file, runtime, **kwargs)
    ref, pool = reference_detections(torch_model, images)
    out = inference_detector(deployed, images)
    return compare_results([r.pred_instances for r in out], ref,
                           candidates=pool)
