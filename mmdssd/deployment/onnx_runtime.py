"""Run an exported model with ONNX Runtime, as an MMDetection model.

:class:`ONNXRuntimeDetector` is a ``BaseModel`` whose ``test_step``
returns ``DetDataSample`` lists, so an exported model plugs into what takes
a detector: MMEngine's test loop with the VOC/COCO metrics
(``tools/deployment/test_onnx.py``), ``mmdet.apis.inference_detector`` and
the visualiser (:func:`init_onnx_detector`).
"""
import json
import os.path as osp
from typing import List, Optional, Union

import numpy as np
import torch
from mmdet.registry import MODELS
from mmdet.structures import DetDataSample
from mmengine.config import Config
from mmengine.model import BaseModel
from mmengine.structures import InstanceData

from .onnx_export import anchor_generator_of, as_config, input_size_of


def read_metadata(onnx_file: str) -> dict:
    """The ``mmdssd`` metadata :func:`export_onnx` stored in the file."""
    import onnx
    try:
        model = onnx.load(onnx_file, load_external_data=False)
    except Exception as err:  # protobuf's DecodeError, or an OSError
        raise ValueError(f'{onnx_file}: not a readable ONNX model '
                         f'({type(err).__name__}: {err})') from err
    for entry in model.metadata_props:
        if entry.key == 'mmdssd':
            return json.loads(entry.value)
    raise ValueError(f'{onnx_file}: no mmdssd metadata; export it with '
                     'tools/deployment/export_onnx.py')


def make_session(onnx_file: str,
                 num_threads: Optional[int] = None,
                 opt_level: str = 'all'):
    """An ONNX Runtime CPU session.

    Args:
        onnx_file: The exported model.
        num_threads: Intra-op threads (None: ONNX Runtime's default, one
            per core).
        opt_level: Graph optimisation: ``'basic'``, ``'extended'`` or
            ``'all'``.
    """
    import onnxruntime as ort
    levels = dict(
        disable=ort.GraphOptimizationLevel.ORT_DISABLE_ALL,
        basic=ort.GraphOptimizationLevel.ORT_ENABLE_BASIC,
        extended=ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED,
        all=ort.GraphOptimizationLevel.ORT_ENABLE_ALL)
    if opt_level not in levels:
        raise ValueError(f'opt_level={opt_level!r}: one of {list(levels)}')
    options = ort.SessionOptions()
    options.graph_optimization_level = levels[opt_level]
    if num_threads:
        options.intra_op_num_threads = num_threads
        options.inter_op_num_threads = 1
    return ort.InferenceSession(
        onnx_file, options, providers=['CPUExecutionProvider'])


@MODELS.register_module()
class ONNXRuntimeDetector(BaseModel):
    """An exported detector run by ONNX Runtime, returning DetDataSamples.

    Args:
        onnx_file (str): A model written by ``export_onnx``.
        data_preprocessor (dict, optional): Batches the test pipeline's
            images; normalisation lives in the graph, so the default only
            stacks and casts (``DetDataPreprocessor`` without mean/std).
        num_threads (int, optional): ONNX Runtime intra-op threads.
        opt_level (str): ONNX Runtime graph optimisation level.
        init_cfg (dict, optional): Unused (nothing to initialise).
    """

    def __init__(self,
                 onnx_file: str,
                 data_preprocessor: Optional[dict] = None,
                 num_threads: Optional[int] = None,
                 opt_level: str = 'all',
                 init_cfg: Optional[dict] = None) -> None:
        if data_preprocessor is None:
            data_preprocessor = dict(type='mmdet.DetDataPreprocessor')
        super().__init__(data_preprocessor=data_preprocessor,
                         init_cfg=init_cfg)
        if not osp.isfile(onnx_file):
            raise FileNotFoundError(f'ONNX model not found: {onnx_file}')
        self.onnx_file = onnx_file
        self.meta = read_metadata(onnx_file)
        self.dataset_meta = dict(classes=tuple(self.meta['classes']))
        self.session = make_session(onnx_file, num_threads, opt_level)
        # mmdet.apis.inference_detector asks the first parameter's device
        self._device_anchor = torch.nn.Parameter(torch.zeros(0),
                                                 requires_grad=False)

    def forward(self,
                inputs: torch.Tensor,
                data_samples: Optional[List[DetDataSample]] = None,
                mode: str = 'predict') -> List[DetDataSample]:
        if mode != 'predict':
            raise ValueError(f'{type(self).__name__} only predicts '
                             f'(mode={mode!r})')
        expected = tuple(self.meta['input_size'])
        if tuple(inputs.shape[-2:]) != expected:
            raise ValueError(
                f'{self.onnx_file}: images are {tuple(inputs.shape[-2:])} '
                f'(h, w), the model was exported for {expected}; use the '
                'test pipeline of the config it was exported from')
        dets, labels = self.session.run(
            None, dict(images=inputs.float().contiguous().numpy()))
        if data_samples is None:
            data_samples = [DetDataSample() for _ in range(len(dets))]
        for sample, img_dets, img_labels in zip(data_samples, dets, labels):
            sample.pred_instances = self.to_instances(
                img_dets, img_labels, sample.metainfo.get('scale_factor'))
        return data_samples

    @staticmethod
    def to_instances(dets: np.ndarray, labels: np.ndarray,
                     scale_factor=None) -> InstanceData:
        """One image's graph output as MMDetection's ``pred_instances``,
        boxes rescaled to the original image like ``predict(rescale=True)``.
        """
        keep = labels >= 0
        bboxes = torch.from_numpy(np.ascontiguousarray(dets[keep, :4]))
        if scale_factor is not None:
            inverse = [1 / s for s in scale_factor]  # as mmdet's rescale
            bboxes = bboxes * bboxes.new_tensor(inverse).repeat(2)
        results = InstanceData()
        results.bboxes = bboxes
        results.scores = torch.from_numpy(np.ascontiguousarray(dets[keep,
                                                                    4]))
        results.labels = torch.from_numpy(labels[keep].astype(np.int64))
        return results


def onnx_model_cfg(onnx_file: str, **kwargs) -> dict:
    """The ``model`` field that makes a config run an exported model."""
    return dict(type='ONNXRuntimeDetector', onnx_file=onnx_file, **kwargs)


def check_onnx_fits(cfg: Config, onnx_file: str) -> None:
    """Refuse a config other than the one ``onnx_file`` was exported from:
    another test input size, other classes or other default boxes (the
    boxes are compared where the file records them), naming both sides."""
    from mmdssd.datasets.check import config_classes
    meta = read_metadata(onnx_file)
    ours = dict(input_size=list(input_size_of(cfg)),
                classes=list(config_classes(cfg, 'test') or []),
                anchor_generator=anchor_generator_of(cfg))
    wrong = [f'{key}: file {meta[key]}, config {value}'
             for key, value in ours.items()
             if meta.get(key) and value and meta[key] != value]
    if wrong:
        raise ValueError(
            f'{onnx_file} was exported from {meta.get("config")}, not for '
            f'{cfg.filename}:\n  ' + '\n  '.join(wrong))


def init_onnx_detector(config: Union[str, Config], onnx_file: str,
                       **kwargs) -> ONNXRuntimeDetector:
    """Like ``mmdet.apis.init_detector``, for an exported model: the
    result works with ``mmdet.apis.inference_detector`` and
    ``DetLocalVisualizer``. ``config`` supplies the test pipeline."""
    cfg = as_config(config)
    check_onnx_fits(cfg, onnx_file)
    model = ONNXRuntimeDetector(onnx_file, **kwargs)
    model.cfg = cfg
    model.eval()
    return model
