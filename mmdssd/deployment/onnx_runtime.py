"""Run an exported model with ONNX Runtime, as an MMDetection model."""
from typing import Optional, Tuple, Union

import numpy as np
from mmdet.registry import MODELS
from mmengine.config import Config

from .deployed_detector import DeployedDetector, init_deployed_detector


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
class ONNXRuntimeDetector(DeployedDetector):
    """An exported detector run by ONNX Runtime (CPU, float32).

    Args:
        model_file (str): A ``.onnx`` model written by ``export_onnx``.
        data_preprocessor (dict, optional): See :class:`DeployedDetector`.
        num_threads (int, optional): ONNX Runtime intra-op threads.
        opt_level (str): ONNX Runtime graph optimisation level.
        precision (str): ``'fp32'``, the only one this runtime runs here
            (bf16 and int8 run under ``OpenVINODetector``).
        init_cfg (dict, optional): Unused (nothing to initialise).
    """

    def __init__(self,
                 model_file: str,
                 data_preprocessor: Optional[dict] = None,
                 num_threads: Optional[int] = None,
                 opt_level: str = 'all',
                 precision: str = 'fp32',
                 init_cfg: Optional[dict] = None) -> None:
        if precision != 'fp32':
            raise ValueError(
                f"precision={precision!r}: ONNX Runtime runs the exported "
                "model in fp32 only; bf16 and int8 run with "
                "runtime='openvino' (tools/test.py --runtime openvino)")
        super().__init__(model_file, data_preprocessor, init_cfg)
        self.session = make_session(model_file, num_threads, opt_level)
        self.precision_ran = 'fp32'

    def infer(self, images: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
        dets, labels = self.session.run(None, dict(images=images))
        return dets, labels


def init_onnx_detector(config: Union[str, Config], onnx_file: str,
                       **kwargs) -> ONNXRuntimeDetector:
    """:func:`init_deployed_detector` with ONNX Runtime."""
    return init_deployed_detector(config, onnx_file, 'onnxruntime', **kwargs)
