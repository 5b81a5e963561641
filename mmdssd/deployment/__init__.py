"""Deployment: ONNX export of the whole detector (network, decoding, NMS)
and ONNX Runtime inference returning MMDetection's ``DetDataSample``.

``onnx`` and ``onnxruntime`` come with ``pip install mmdssd[deploy]``;
they are imported only when used.
"""
from .end_to_end import EndToEndDetector, UnsupportedExportError
from .onnx_export import build_detector, export_onnx, input_size_of
from .onnx_runtime import (ONNXRuntimeDetector, check_onnx_fits,
                           init_onnx_detector, make_session, onnx_model_cfg,
                           read_metadata)

__all__ = [
    'EndToEndDetector', 'UnsupportedExportError', 'build_detector',
    'export_onnx', 'input_size_of', 'ONNXRuntimeDetector', 'check_onnx_fits',
    'init_onnx_detector', 'make_session', 'onnx_model_cfg', 'read_metadata'
]
