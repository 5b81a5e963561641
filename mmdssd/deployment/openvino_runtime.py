"""Run an exported model with OpenVINO on the CPU, in fp32, bf16 or int8.

The precision is asked for, checked against what this CPU's OpenVINO
plugin offers, and read back from the compiled model: OpenVINO picks bf16
by itself on CPUs that have it, so fp32 is forced, and what ran is
reported (:attr:`OpenVINODetector.precision_ran`) rather than assumed.
"""
from typing import Dict, List, Optional, Tuple

import numpy as np
from mmdet.registry import MODELS

from ..utils.cpu_info import cpu_description
from .deployed_detector import IR_SUFFIX, DeployedDetector

PRECISIONS = ('fp32', 'bf16', 'int8')
#: The OpenVINO capability each precision needs.
_CAPABILITY = dict(fp32='FP32', bf16='BF16', int8='INT8')


class UnsupportedPrecisionError(ValueError):
    """A precision this CPU, runtime or model file cannot run."""


def openvino_capabilities() -> List[str]:
    """OpenVINO's CPU ``OPTIMIZATION_CAPABILITIES`` on this machine."""
    import openvino as ov
    return list(ov.Core().get_property('CPU', 'OPTIMIZATION_CAPABILITIES'))


def check_precision(precision: str) -> None:
    """Refuse a precision this CPU's OpenVINO plugin cannot run."""
    if precision not in PRECISIONS:
        raise UnsupportedPrecisionError(
            f'precision={precision!r}: one of {list(PRECISIONS)}')
    capabilities = openvino_capabilities()
    if _CAPABILITY[precision] not in capabilities:
        raise UnsupportedPrecisionError(
            f'precision={precision!r}: this CPU, {cpu_description()}, has '
            f'no {_CAPABILITY[precision]} in OpenVINO (its capabilities: '
            f'{", ".join(capabilities)}); use fp32' +
            (' or int8' if 'INT8' in capabilities else ''))


def count_quantized(model) -> int:
    """FakeQuantize nodes of an ``openvino.Model`` (0: not quantised)."""
    return sum(op.get_type_name() == 'FakeQuantize' for op in model.get_ops())


def compile_config(precision: str,
                   num_threads: Optional[int] = None,
                   num_streams: Optional[int] = None) -> Dict[str, str]:
    """``compile_model`` settings: the float precision forced (int8 models
    keep their float parts in fp32, as the accuracy control measured them)
    and latency-first threading."""
    float_type = 'bf16' if precision == 'bf16' else 'f32'
    config = {'INFERENCE_PRECISION_HINT': float_type,
              'PERFORMANCE_HINT': 'LATENCY'}
    if num_threads:
        config['INFERENCE_NUM_THREADS'] = str(num_threads)
    if num_streams:
        config['NUM_STREAMS'] = str(num_streams)
    return config


def precision_ran(compiled) -> str:
    """What a compiled model runs: its float precision, and for a
    quantised model how many convolutions execute in 8-bit."""
    float_type = compiled.get_property(
        'INFERENCE_PRECISION_HINT').get_type_name()
    float_name = dict(f32='fp32', bf16='bf16', f16='fp16').get(
        float_type, float_type)
    convs = int8 = 0
    for op in compiled.get_runtime_model().get_ops():
        info = op.get_rt_info()
        if 'layerType' not in info or \
                info['layerType'].astype(str) != 'Convolution':
            continue
        convs += 1
        if info['runtimePrecision'].astype(str) in ('u8', 'i8'):
            int8 += 1
    if int8:
        return f'int8 ({int8} of {convs} convolutions), float parts ' + \
            float_name
    return float_name


@MODELS.register_module()
class OpenVINODetector(DeployedDetector):
    """An exported detector run by OpenVINO on the CPU.

    Args:
        model_file (str): A ``.onnx`` model written by ``export_onnx`` (fp32
            or bf16), or a ``.xml`` int8 model written by
            ``tools/deployment/quantize_int8.py``.
        data_preprocessor (dict, optional): See :class:`DeployedDetector`.
        precision (str): ``'fp32'`` (forced, exact), ``'bf16'`` (where the
            CPU has it) or ``'int8'`` (a quantised ``.xml`` model).
        num_threads (int, optional): Inference threads (None: OpenVINO's
            choice, one per core).
        num_streams (int, optional): Parallel inference streams (None:
            what ``PERFORMANCE_HINT=LATENCY`` picks, one).
        static_shapes (bool): Compile once per batch size with fixed
            shapes instead of once with a dynamic batch.
        init_cfg (dict, optional): Unused (nothing to initialise).
    """

    def __init__(self,
                 model_file: str,
                 data_preprocessor: Optional[dict] = None,
                 precision: str = 'fp32',
                 num_threads: Optional[int] = None,
                 num_streams: Optional[int] = None,
                 static_shapes: bool = False,
                 init_cfg: Optional[dict] = None) -> None:
        import openvino as ov
        super().__init__(model_file, data_preprocessor, init_cfg)
        check_precision(precision)
        self._core = ov.Core()
        self._model = self._core.read_model(model_file)
        self._check_model_precision(self._model, precision)
        self.precision = precision
        self._config = compile_config(precision, num_threads, num_streams)
        self.static_shapes = static_shapes
        self._requests = {}  # batch size (None: dynamic) -> infer request
        compiled = self._request_for(1).get_compiled_model()
        self.precision_ran = precision_ran(compiled)

    def _request_for(self, batch: int):
        key = batch if self.static_shapes else None
        if key not in self._requests:
            model = self._model
            if self.static_shapes:
                model = model.clone()
                model.reshape({'images': [batch, 3, *self.meta['input_size']]})
            compiled = self._core.compile_model(model, 'CPU', self._config)
            self._requests[key] = compiled.create_infer_request()
        return self._requests[key]

    def _check_model_precision(self, model, precision: str) -> None:
        quantized = count_quantized(model) > 0
        if precision == 'int8' and not quantized:
            raise UnsupportedPrecisionError(
                f"{self.model_file}: precision='int8' needs a quantised "
                'model; write one with tools/deployment/quantize_int8.py '
                'CONFIG MODEL.onnx OUT' + IR_SUFFIX)
        if precision != 'int8' and quantized:
            raise UnsupportedPrecisionError(
                f'{self.model_file} is quantised to int8; run it with '
                f"precision='int8', not {precision!r}")

    def infer(self, images: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
        results = self._request_for(len(images)).infer({'images': images})
        dets, labels = results.to_tuple()
        return np.asarray(dets), np.asarray(labels)
