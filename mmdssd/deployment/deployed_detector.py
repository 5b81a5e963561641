"""What every runtime of an exported model shares.

:class:`DeployedDetector` is a ``BaseModel`` whose ``test_step`` returns
``DetDataSample`` lists, so an exported model plugs into what takes a
detector: MMEngine's test loop with the VOC/COCO metrics
(``tools/test.py CONFIG MODEL``), ``mmdet.apis.inference_detector`` and
the visualiser (:func:`init_deployed_detector`). A runtime subclass only
says how to run the graph (:meth:`DeployedDetector.infer`).
"""
import json
import os.path as osp
from typing import List, Optional, Tuple, Union

import numpy as np
import torch
from mmdet.structures import DetDataSample
from mmengine.config import Config
from mmengine.model import BaseModel
from mmengine.structures import InstanceData

from .onnx_export import anchor_generator_of, as_config, input_size_of

#: The runtimes and the registered detector class that runs each.
RUNTIMES = dict(onnxruntime='ONNXRuntimeDetector', openvino='OpenVINODetector')
#: OpenVINO IR files (``.xml`` + ``.bin``), written by the int8 quantiser.
IR_SUFFIX = '.xml'
METADATA_KEY = 'mmdssd'


def read_metadata(model_file: str) -> dict:
    """The ``mmdssd`` metadata stored in an exported ``.onnx`` file or an
    OpenVINO IR ``.xml`` file."""
    if model_file.endswith(IR_SUFFIX):
        return _read_ir_metadata(model_file)
    import onnx
    try:
        model = onnx.load(model_file, load_external_data=False)
    except Exception as err:  # protobuf's DecodeError, or an OSError
        raise ValueError(f'{model_file}: not a readable ONNX model '
                         f'({type(err).__name__}: {err})') from err
    for entry in model.metadata_props:
        if entry.key == METADATA_KEY:
            return json.loads(entry.value)
    raise ValueError(f'{model_file}: no mmdssd metadata; export it with '
                     'tools/deployment/export_onnx.py')


def _read_ir_metadata(xml_file: str) -> dict:
    import openvino as ov
    try:
        model = ov.Core().read_model(xml_file)
    except Exception as err:  # OpenVINO raises RuntimeError subclasses
        raise ValueError(f'{xml_file}: not a readable OpenVINO model '
                         f'({type(err).__name__}: '
                         f'{str(err).splitlines()[0]})') from err
    if not model.has_rt_info([METADATA_KEY]):
        raise ValueError(f'{xml_file}: no mmdssd metadata; write it with '
                         'tools/deployment/quantize_int8.py')
    return json.loads(model.get_rt_info([METADATA_KEY]).astype(str))


def runtime_of(model_file: str, runtime: Optional[str] = None) -> str:
    """The runtime for ``model_file``: ``runtime`` if given (checked), an
    IR file is OpenVINO's, an ``.onnx`` file ONNX Runtime's by default."""
    if runtime is None:
        return 'openvino' if model_file.endswith(IR_SUFFIX) else \
            'onnxruntime'
    if runtime not in RUNTIMES:
        raise ValueError(f'runtime={runtime!r}: one of {list(RUNTIMES)}')
    if model_file.endswith(IR_SUFFIX) and runtime != 'openvino':
        raise ValueError(f'{model_file}: an OpenVINO IR file runs with '
                         f"runtime='openvino', not {runtime!r}")
    return runtime


class DeployedDetector(BaseModel):
    """An exported detector run by some runtime, returning DetDataSamples.

    Args:
        model_file (str): A model written by ``export_onnx`` (or the int8
            quantiser).
        data_preprocessor (dict, optional): Batches the test pipeline's
            images; normalisation lives in the graph, so the default only
            stacks and casts (``DetDataPreprocessor`` without mean/std).
        init_cfg (dict, optional): Unused (nothing to initialise).
    """

    def __init__(self,
                 model_file: str,
                 data_preprocessor: Optional[dict] = None,
                 init_cfg: Optional[dict] = None) -> None:
        if data_preprocessor is None:
            data_preprocessor = dict(type='mmdet.DetDataPreprocessor')
        super().__init__(data_preprocessor=data_preprocessor,
                         init_cfg=init_cfg)
        if not osp.isfile(model_file):
            raise FileNotFoundError(f'exported model not found: {model_file}')
        self.model_file = model_file
        self.meta = read_metadata(model_file)
        self.dataset_meta = dict(classes=tuple(self.meta['classes']))
        # mmdet.apis.inference_detector asks the first parameter's device
        self._device_anchor = torch.nn.Parameter(torch.zeros(0),
                                                 requires_grad=False)

    def infer(self, images: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
        """Run the graph: ``(B, 3, H, W)`` float32 images to ``dets``
        ``(B, M, 5)`` and ``labels`` ``(B, M)``."""
        raise NotImplementedError

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
                f'{self.model_file}: images are {tuple(inputs.shape[-2:])} '
                f'(h, w), the model was exported for {expected}; use the '
                'test pipeline of the config it was exported from')
        dets, labels = self.infer(inputs.float().contiguous().numpy())
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


def deployed_model_cfg(model_file: str,
                       runtime: Optional[str] = None,
                       **kwargs) -> dict:
    """The ``model`` field that makes a config run an exported model."""
    return dict(type=RUNTIMES[runtime_of(model_file, runtime)],
                model_file=model_file, **kwargs)


def check_deployed_fits(cfg: Config, model_file: str) -> None:
    """Refuse a config other than the one ``model_file`` was exported
    from: another test input size, other classes or other default boxes
    (compared where the file records them), naming both sides."""
    from mmdssd.datasets.check import config_classes
    meta = read_metadata(model_file)
    ours = dict(input_size=list(input_size_of(cfg)),
                classes=list(config_classes(cfg, 'test') or []),
                anchor_generator=anchor_generator_of(cfg))
    wrong = [f'{key}: file {meta[key]}, config {value}'
             for key, value in ours.items()
             if meta.get(key) and value and meta[key] != value]
    if wrong:
        raise ValueError(
            f'{model_file} was exported from {meta.get("config")}, not for '
            f'{cfg.filename}:\n  ' + '\n  '.join(wrong))


def init_deployed_detector(config: Union[str, Config],
                           model_file: str,
                           runtime: Optional[str] = None,
                           **kwargs) -> DeployedDetector:
    """Like ``mmdet.apis.init_detector``, for an exported model: the
    result works with ``mmdet.apis.inference_detector`` and
    ``DetLocalVisualizer``. ``config`` supplies the test pipeline;
    ``kwargs`` go to the runtime's detector class (e.g. ``precision``)."""
    from mmdet.registry import MODELS
    cfg = as_config(config)
    check_deployed_fits(cfg, model_file)
    model = MODELS.build(deployed_model_cfg(model_file, runtime, **kwargs))
    model.cfg = cfg
    model.eval()
    return model
