"""Post-training int8 quantisation of an exported model, with accuracy
control: NNCF's ``quantize_with_accuracy_control`` calibrated on the
config's training images and validated with the config's own test metric.

Only the network is quantised: the box decoding, the top-k selection and
NMS (every node downstream of the last convolution) stay in float, so the
8-bit error reaches the detections only through the scores and deltas.
"""
import contextlib
import json
import logging
import os
import os.path as osp
from dataclasses import asdict, dataclass
from typing import List, Optional, Sequence

import numpy as np
from mmengine.config import Config

from .deployed_detector import (IR_SUFFIX, METADATA_KEY, DeployedDetector,
                                read_metadata)
from .evaluation import evaluate_items, load_items, silent_prefixes
from .onnx_export import as_config
from .openvino_runtime import (check_precision, compile_config,
                               precision_ran)

#: Node types that carry the network's weights: everything upstream of
#: them (or one of them) is the network, everything else post-processing.
WEIGHTED_TYPES = ('Convolution', 'GroupConvolution',
                  'ConvolutionBackpropData', 'GroupConvolutionBackpropData',
                  'MatMul')
DEFAULT_METRIC = 'coco/bbox_mAP'


class AccuracyDropError(RuntimeError):
    """Int8 quantisation could not stay within the allowed metric drop."""


@dataclass
class QuantizationReport:
    """What the quantiser measured, on the config's test images."""
    metric: str
    fp32: float
    int8: float
    max_drop: float
    num_calibration: int
    num_validation: int
    precision_ran: str
    out_file: Optional[str] = None

    @property
    def drop(self) -> float:
        return self.fp32 - self.int8

    def __str__(self) -> str:
        return (f'{self.metric}: fp32 {self.fp32:.4f}, int8 {self.int8:.4f}'
                f' (drop {self.drop:.4f}, allowed {self.max_drop:g}) on '
                f'{self.num_validation} test images; calibrated on '
                f'{self.num_calibration} training images; ran '
                f'{self.precision_ran}')


def postprocessing_nodes(model) -> List[str]:
    """Friendly names of the nodes of an ``openvino.Model`` no weighted
    node depends on: the decoding, selection and NMS after the head."""
    feeds_network = {}
    ignored = []
    for op in reversed(model.get_ordered_ops()):
        consumers = [
            target.get_node() for output in op.outputs()
            for target in output.get_target_inputs()
        ]
        feeds_network[op.get_friendly_name()] = any(
            c.get_type_name() in WEIGHTED_TYPES
            or feeds_network.get(c.get_friendly_name(), False)
            for c in consumers)
        if (op.get_type_name() not in WEIGHTED_TYPES +
                ('Parameter', 'Result', 'Constant')
                and not feeds_network[op.get_friendly_name()]):
            ignored.append(op.get_friendly_name())
    return ignored


def _save_ir(model, out_file: str, meta: dict) -> None:
    """Write ``out_file`` (+ ``.bin``) whole or not at all: a temporary
    pair first, then renames (the ``.bin`` before the ``.xml``)."""
    import openvino as ov
    model.set_rt_info(json.dumps(meta), [METADATA_KEY])
    os.makedirs(osp.dirname(osp.abspath(out_file)), exist_ok=True)
    tmp = out_file[:-len(IR_SUFFIX)] + '.part' + IR_SUFFIX
    ov.save_model(model, tmp, compress_to_fp16=False)
    os.replace(tmp[:-len(IR_SUFFIX)] + '.bin',
               out_file[:-len(IR_SUFFIX)] + '.bin')
    os.replace(tmp, out_file)


def _as_array(item) -> np.ndarray:
    """An item of :func:`load_items` as the graph's input."""
    return item[0].float().numpy()[None]


def _predictor(compiled):
    """A compiled OpenVINO model as a predict function for
    :func:`evaluate_items`."""

    def predict(batch):
        samples = []
        for item in batch:
            dets, labels = compiled(_as_array(item)).to_tuple()
            sample = item[1].clone()
            sample.pred_instances = DeployedDetector.to_instances(
                np.asarray(dets)[0], np.asarray(labels)[0],
                sample.metainfo.get('scale_factor'))
            samples.append(sample)
        return samples

    return predict


def _ignored_scope(model):
    import nncf
    return nncf.IgnoredScope(names=postprocessing_nodes(model),
                             validate=False)


def quantize_plain(model_file: str, out_file: str,
                   images: Sequence[np.ndarray]) -> str:
    """Quantise without accuracy control, calibrated on ``images``
    (``(1, 3, H, W)`` float32 each): for speed measurements only."""
    import nncf
    import openvino as ov
    check_precision('int8')
    model = ov.Core().read_model(model_file)
    with _quiet():
        quantized = nncf.quantize(model, nncf.Dataset(list(images)),
                                  subset_size=len(images),
                                  ignored_scope=_ignored_scope(model))
    meta = read_metadata(model_file)
    meta.update(precision='int8', quantization='uncontrolled (timing)')
    _save_ir(quantized, out_file, meta)
    return out_file


def quantize_int8(config, onnx_file: str, out_file: str,
                  max_drop: float = 0.005, metric: str = DEFAULT_METRIC,
                  subset_size: int = 300,
                  num_validation: Optional[int] = None,
                  max_reverted: int = 10) -> QuantizationReport:
    """Quantise ``onnx_file`` to int8 within ``max_drop`` of ``metric``.

    Args:
        config: The config the model was exported from (its training
            images calibrate, its test images and evaluator validate).
        onnx_file: The fp32 model written by ``export_onnx``.
        out_file: The int8 OpenVINO IR (``.xml``; a ``.bin`` beside it).
        max_drop: Largest allowed absolute drop of ``metric``.
        metric: A key of the config's test metrics.
        subset_size: Training images for the calibration.
        num_validation: Test images for the accuracy control (None: all).
        max_reverted: Most layers the accuracy control may return to
            float before giving up.

    Returns:
        QuantizationReport: written only when the drop is within
        ``max_drop``.

    Raises:
        AccuracyDropError: the drop stayed above ``max_drop``; nothing is
            written and an existing ``out_file`` is left as it was.
    """
    import openvino as ov
    if not out_file.endswith(IR_SUFFIX):
        raise ValueError(f'{out_file}: the int8 model is an OpenVINO IR '
                         f'file; name it *{IR_SUFFIX}')
    check_precision('int8')
    cfg = as_config(config)
    meta = read_metadata(onnx_file)
    calibration, _ = load_items(cfg, 'train', subset_size)
    validation, dataset_meta = load_items(cfg, 'test', num_validation)
    model = ov.Core().read_model(onnx_file)

    def validate(compiled, data) -> float:
        return metric_of(_predictor(compiled), data, cfg, dataset_meta,
                         metric)

    quantized = _quantize_controlled(model, calibration, validation,
                                     validate, max_drop, max_reverted)
    report = _measure(model, quantized, validation, validate, metric,
                      max_drop, len(calibration))
    if report.drop > max_drop:
        raise AccuracyDropError(
            f'{onnx_file}: int8 stays above the allowed drop after '
            f'reverting up to {max_reverted} layers: {report}; '
            f'{out_file} not written (deploy the fp32 model, or allow '
            'more with --max-drop / --max-reverted)')
    meta.update(precision='int8', quantization=asdict(report))
    _save_ir(quantized, out_file, meta)
    report.out_file = out_file
    return report


def metric_of(predict, data: Sequence, cfg: Config, dataset_meta: dict,
              metric: str) -> float:
    """One test metric of ``predict`` on ``data``.

    The accuracy control scores images one at a time, and MMDetection's
    ``CocoMetric`` returns no keys at all for an image without
    detections; no detections score zero, so a metric whose evaluator
    returned nothing is 0. A name no evaluator of the config gives is an
    error naming the ones it does give.
    """
    metrics = evaluate_items(predict, data, cfg, dataset_meta)
    if metric in metrics:
        return float(metrics[metric])
    if metric.split('/')[0] in silent_prefixes(cfg, metrics):
        return 0.0
    raise KeyError(f"metric={metric!r}: the config's test_evaluator gives "
                   f'{sorted(metrics)}')


def _quantize_controlled(model, calibration: Sequence, validation: Sequence,
                         validate, max_drop: float, max_reverted: int):
    """NNCF's ``quantize_with_accuracy_control``, post-processing left out
    of quantisation."""
    import nncf
    with _quiet():
        return nncf.quantize_with_accuracy_control(
            model,
            nncf.Dataset(calibration, _as_array),
            nncf.Dataset(validation),
            validate,
            max_drop=max_drop,
            subset_size=len(calibration),
            ignored_scope=_ignored_scope(model),
            advanced_accuracy_restorer_parameters=nncf.
            AdvancedAccuracyRestorerParameters(
                max_num_iterations=max_reverted))


def _measure(model, quantized, validation: Sequence, validate, metric: str,
             max_drop: float, num_calibration: int) -> QuantizationReport:
    """Both models' metric, compiled as the runtime compiles them."""
    import openvino as ov
    core = ov.Core()
    fp32 = core.compile_model(model, 'CPU', compile_config('fp32'))
    int8 = core.compile_model(quantized, 'CPU', compile_config('int8'))
    return QuantizationReport(metric, validate(fp32, validation),
                              validate(int8, validation), max_drop,
                              num_calibration, len(validation),
                              precision_ran(int8))


@contextlib.contextmanager
def _quiet():
    """NNCF's progress bars and per-step logs off; its warnings stay."""
    logger = logging.getLogger('nncf')
    level = logger.level
    logger.setLevel(logging.WARNING)
    try:
        yield
    finally:
        logger.setLevel(level)
