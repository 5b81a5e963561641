"""Deployment: ONNX export of the whole detector (network, decoding, NMS),
run by ONNX Runtime or OpenVINO (fp32, bf16, int8) as an MMDetection model
returning ``DetDataSample``.

``onnx``, ``onnxruntime``, ``openvino`` and ``nncf`` come with
``pip install mmdssd[deploy]``; they are imported only when used.
"""
from .deployed_detector import (RUNTIMES, DeployedDetector,
                                check_deployed_fits, deployed_model_cfg,
                                init_deployed_detector, read_metadata)
from .end_to_end import EndToEndDetector, UnsupportedExportError
from .onnx_export import build_detector, export_onnx, input_size_of
from .onnx_runtime import (ONNXRuntimeDetector, init_onnx_detector,
                           make_session)
from .openvino_runtime import (PRECISIONS, OpenVINODetector,
                               UnsupportedPrecisionError, check_precision,
                               cpu_description)

__all__ = [
    'RUNTIMES', 'DeployedDetector', 'check_deployed_fits',
    'deployed_model_cfg', 'init_deployed_detector', 'read_metadata',
    'EndToEndDetector', 'UnsupportedExportError', 'build_detector',
    'export_onnx', 'input_size_of', 'ONNXRuntimeDetector',
    'init_onnx_detector', 'make_session', 'PRECISIONS', 'OpenVINODetector',
    'UnsupportedPrecisionError', 'check_precision', 'cpu_description'
]
