"""Check an exported model against PyTorch, detection by detection."""
import os.path as osp
from dataclasses import dataclass
from typing import List, Optional, Sequence, Union

import numpy as np
from mmengine.config import Config
from mmengine.structures import InstanceData


@dataclass
class Comparison:
    """How two detectors' results on the same images differ."""
    num_images: int
    num_dets: int
    count_mismatches: int
    label_mismatches: int
    max_box_rel_diff: float
    max_score_diff: float
    box_rtol: float = 1e-3
    score_atol: float = 1e-4

    @property
    def equal(self) -> bool:
        return (self.count_mismatches == 0 and self.label_mismatches == 0
                and self.max_box_rel_diff <= self.box_rtol
                and self.max_score_diff <= self.score_atol)

    def __str__(self) -> str:
        verdict = 'equal' if self.equal else 'DIFFERENT'
        return (f'{verdict}: {self.num_images} images, {self.num_dets} '
                f'detections, {self.count_mismatches} count and '
                f'{self.label_mismatches} label mismatches, boxes max rel '
                f'diff {self.max_box_rel_diff:.2e} (tol {self.box_rtol:g}), '
                f'scores max diff {self.max_score_diff:.2e} '
                f'(tol {self.score_atol:g})')


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


def compare_results(a: Sequence[InstanceData], b: Sequence[InstanceData],
                    box_rtol: float = 1e-3,
                    score_atol: float = 1e-4) -> Comparison:
    """Compare per-image ``pred_instances``: same number of detections,
    same labels, boxes within ``box_rtol`` relative (to the coordinate,
    at least 1 px), scores within ``score_atol``."""
    counts = labels = dets = 0
    box_diff = score_diff = 0.0
    for x, y in zip(a, b):
        dets += len(y.scores)
        if len(x.scores) != len(y.scores):
            counts += 1
            continue
        match = _match(x, y)
        labels += int((match < 0).sum())  # no same-label counterpart
        ok = match >= 0
        if not ok.any():
            continue
        xb, yb = x.bboxes.numpy()[match[ok]], y.bboxes.numpy()[ok]
        scale = np.maximum(np.abs(yb), 1.0)
        box_diff = max(box_diff, float((np.abs(xb - yb) / scale).max()))
        score_diff = max(
            score_diff,
            float(np.abs(x.scores.numpy()[match[ok]] -
                         y.scores.numpy()[ok]).max()))
    return Comparison(len(a), dets, counts, labels, box_diff, score_diff,
                      box_rtol, score_atol)


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
    ref = inference_detector(torch_model, images)
    out = inference_detector(deployed, images)
    return compare_results([r.pred_instances for r in out],
                           [r.pred_instances for r in ref])
