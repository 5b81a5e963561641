"""A config's test metrics for anything that predicts DetDataSamples, on a
list of images held in memory (the int8 accuracy control evaluates many
models on the same images; MMEngine's test loop would reload them)."""
import contextlib
import copy
import io
from typing import Callable, List, Optional, Sequence, Tuple

from mmdet.structures import DetDataSample
from mmengine.config import Config

Item = Tuple[object, DetDataSample]  # (uint8 CHW tensor, data sample)


def _leaf_datasets(ds_cfg) -> list:
    """The plain dataset configs under Repeat/Concat/ClassBalanced
    wrappers."""
    if 'datasets' in ds_cfg:
        return [leaf for d in ds_cfg.datasets for leaf in _leaf_datasets(d)]
    if 'dataset' in ds_cfg:
        return _leaf_datasets(ds_cfg.dataset)
    return [ds_cfg]


def load_items(cfg: Config, split: str,
               limit: Optional[int] = None) -> Tuple[List[Item], dict]:
    """A split's images through the *test* pipeline (no augmentation), at
    most ``limit``, as ``(inputs, data_sample)`` pairs; and the dataset
    meta."""
    from mmcv.transforms import Compose
    from mmdet.registry import DATASETS
    from mmdet.utils import get_test_pipeline_cfg, register_all_modules
    register_all_modules()
    pipeline = Compose(get_test_pipeline_cfg(cfg))
    items, meta = [], None
    for leaf in _leaf_datasets(cfg[f'{split}_dataloader'].dataset):
        leaf = copy.deepcopy(leaf)
        leaf.pipeline = []
        leaf.test_mode = True
        dataset = DATASETS.build(leaf)
        meta = meta or dataset.metainfo
        for i in range(len(dataset)):
            if limit is not None and len(items) >= limit:
                return items, meta
            packed = pipeline(copy.deepcopy(dataset.get_data_info(i)))
            items.append((packed['inputs'], packed['data_samples']))
    return items, meta


def detector_predictor(model, batch_size: int = 8) -> Callable:
    """A detector's ``test_step`` (PyTorch or deployed) as a predict
    function for :func:`evaluate_items`."""
    import torch

    def predict(items: Sequence[Item]) -> List[DetDataSample]:
        out = []
        for start in range(0, len(items), batch_size):
            chunk = items[start:start + batch_size]
            data = dict(inputs=[i for i, _ in chunk],
                        data_samples=[s.clone() for _, s in chunk])
            with torch.no_grad():
                out += model.test_step(data)
        return out

    return predict


def evaluate_items(predict: Callable, items: Sequence[Item], cfg: Config,
                   dataset_meta: dict) -> dict:
    """The config's ``test_evaluator`` metrics of ``predict`` (items to
    DetDataSamples with ``pred_instances``) on ``items``."""
    from mmengine.evaluator import Evaluator
    items = list(items)
    evaluator = Evaluator(copy.deepcopy(cfg.test_evaluator))
    evaluator.dataset_meta = dataset_meta
    evaluator.process(predict(items))
    with contextlib.redirect_stdout(io.StringIO()):  # pycocotools prints
        return evaluator.evaluate(len(items))


def silent_prefixes(cfg: Config, metrics: dict) -> List[str]:
    """The prefixes of the ``test_evaluator``'s metrics that gave none of
    ``metrics`` (``CocoMetric`` gives nothing when nothing was detected)."""
    from mmengine.evaluator import Evaluator
    evaluator = Evaluator(copy.deepcopy(cfg.test_evaluator))
    return [
        m.prefix for m in evaluator.metrics
        if not any(k.startswith(f'{m.prefix}/') for k in metrics)
    ]
