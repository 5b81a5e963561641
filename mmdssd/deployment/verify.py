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
    although their scores tie, within ``tie_atol``, with the detection
    the other side kept instead: which of two tied boxes survives NMS or
    the ``max_per_img`` cut is arbitrary, so a swap is not a difference.
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
                f'untied set mismatches ({self.tie_swaps} swaps tied within '
                f'{self.tie_atol:.1e}), '
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


def _untied(kept_a: np.ndarray, kept_b: np.ndarray, scores: np.ndarray,
            tie_atol: float) -> Tuple[int, int]:
    """(tied, untied): candidates kept by only one side, paired best
    score first with those kept by only the other side; a pair whose
    scores differ by more than ``tie_atol`` is no tie."""
    only_a = np.sort(scores[np.setdiff1d(kept_a, kept_b)])[::-1]
    only_b = np.sort(scores[np.setdiff1d(kept_b, kept_a)])[::-1]
    n = min(len(only_a), len(only_b))
    untied = int((np.abs(only_a[:n] - only_b[:n]) > tie_atol).sum())
    return n - untied, untied + abs(len(only_a) - len(only_b))


def _differences(x: InstanceData, y: InstanceData) -> Tuple[float, float]:
    """Largest box difference, relative to the coordinate (at least
    1 px), and largest score difference between paired detections."""
    xb, yb = x.bboxes.numpy(), y.bboxes.numpy()
    boxes = np.abs(xb - yb) / np.maximum(np.abs(yb), 1.0)
    scores = np.abs(x.scores.numpy() - y.scores.numpy())
    return float(boxes.max()), float(scores.max())


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
    box_diff = score_diff = 0.0
    kept = []  # per image: candidates kept by a, by b, candidate scores
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
        boxes, scores = _differences(x[ok], pool[match[ok]])
        box_diff, score_diff = max(box_diff, boxes), max(score_diff, scores)
        if candidates is not None:
            kept_b = _match(pool, y)
            kept.append((match[ok], kept_b[kept_b >= 0], pool.scores.numpy()))
    report = Comparison(len(a), dets, counts, labels, box_diff, score_diff,
                        box_rtol, score_atol)
    # Two candidates can change places when each score may err by the
    # largest difference seen between the two sides: a tie is twice that
    # (twice again for the errors not seen), never more than score_atol.
    report.tie_atol = min(4 * score_diff, score_atol)
    for kept_a, kept_b, scores in kept:
        tied, untied = _untied(kept_a, kept_b, scores, report.tie_atol)
        report.tie_swaps += tied
        report.set_mismatches += untied
    return report


@contextmanager
def _candidates_cfg(head, score_atol: float):
    """The head's test_cfg without NMS or caps, twice its ``nms_pre`` and
    ``score_atol`` under its ``score_thr``: every detection a runtime may
    keep when scores tie at a cut."""
    cfg = head.test_cfg
    wide = copy.deepcopy(cfg)
    wide.nms = None
    wide.max_per_img = 10**9
    if cfg.get('nms_pre', -1) > 0:
        wide.nms_pre = 2 * cfg.nms_pre
    wide.score_thr = max(cfg.get('score_thr', 0.0) - score_atol, 0.0)
    head.test_cfg = wide
    try:
        yield
    finally:
        head.test_cfg = cfg


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
