"""One table of a trained model's accuracy in PyTorch fp32 and in every
deployed runtime and precision this CPU runs, on the config's test set."""
import os
import os.path as osp
from typing import Dict, List, Optional

from .deployed_detector import init_deployed_detector
from .evaluation import detector_predictor, evaluate_items, load_items
from .onnx_export import as_config, export_onnx
from .openvino_runtime import (PRECISIONS, UnsupportedPrecisionError,
                               check_precision)

#: Table columns: heading -> metric key of mmdet's VOCMetric / CocoMetric.
COLUMNS = {'VOC mAP': 'pascal_voc/mAP', 'COCO AP': 'coco/bbox_mAP',
           'AP_small': 'coco/bbox_mAP_s'}


def _deployed_files(cfg, checkpoint: str, work_dir: str, max_drop: float,
                    subset_size: int) -> Dict[str, str]:
    """Export (and quantise, where the CPU has int8) into ``work_dir``:
    precision -> model file, or -> the reason it is missing."""
    from .int8 import AccuracyDropError, quantize_int8
    onnx_file = osp.join(work_dir, 'model.onnx')
    if not osp.exists(onnx_file):
        export_onnx(cfg, checkpoint, onnx_file)
    files = {}
    for precision in PRECISIONS:
        try:
            check_precision(precision)
        except UnsupportedPrecisionError as err:
            files[precision] = f'skipped: {err}'
            continue
        files[precision] = onnx_file
    if not files['int8'].startswith('skipped'):
        xml = osp.join(work_dir, 'model_int8.xml')
        try:
            quantize_int8(cfg, onnx_file, xml, max_drop=max_drop,
                          subset_size=subset_size)
            files['int8'] = xml
        except AccuracyDropError as err:
            files['int8'] = f'refused: {err}'
    return files


def compare_precisions(config, checkpoint: str, work_dir: str,
                       max_drop: float = 0.005,
                       subset_size: int = 300) -> List[dict]:
    """Test metrics of ``checkpoint`` in PyTorch fp32, ONNX Runtime fp32
    and OpenVINO in each precision (int8 with accuracy control).

    Returns:
        list[dict]: rows with ``runtime``, ``precision`` (what ran, or why
        it did not) and the metrics of :data:`COLUMNS`.
    """
    from mmdet.apis import init_detector
    cfg = as_config(config)
    os.makedirs(work_dir, exist_ok=True)
    items, meta = load_items(cfg, 'test')
    files = _deployed_files(cfg, checkpoint, work_dir, max_drop,
                            subset_size)
    models = [('PyTorch', 'fp32', init_detector(
        cfg, checkpoint, device='cpu'))]
    models.append(('ONNX Runtime', 'fp32', init_deployed_detector(
        cfg, files['fp32'], 'onnxruntime')))
    rows = []
    for precision, model_file in files.items():
        if not model_file.endswith(('.onnx', '.xml')):
            rows.append(dict(runtime='OpenVINO', precision=precision,
                             note=model_file))
            continue
        models.append(('OpenVINO', precision, init_deployed_detector(
            cfg, model_file, 'openvino', precision=precision)))
    for runtime, precision, model in models:
        metrics = evaluate_items(detector_predictor(model), items, cfg, meta)
        rows.append(dict(
            runtime=runtime,
            precision=getattr(model, 'precision_ran', precision),
            **{k: metrics.get(v) for k, v in COLUMNS.items()}))
    return sorted(rows, key=lambda r: 'note' in r)


def format_precision_table(rows: List[dict],
                           title: Optional[str] = None) -> str:
    """Markdown: one row per runtime and precision, each metric and its
    change from the first row (PyTorch fp32)."""
    ref = rows[0]
    head = '| runtime | precision that ran |' + ''.join(
        f' {c} | change |' for c in COLUMNS)
    lines = ([f'{title}'] if title else []) + [
        head, '|' + '---|' * (2 + 2 * len(COLUMNS))]
    for row in rows:
        if 'note' in row:
            lines.append(f"| {row['runtime']} | {row['precision']}: "
                         f"{row['note']} |" + ' - | - |' * len(COLUMNS))
            continue
        cells = ''.join(
            f' {row[c]:.4f} | {row[c] - ref[c]:+.4f} |'
            if row.get(c) is not None else ' - | - |' for c in COLUMNS)
        lines.append(f"| {row['runtime']} | {row['precision']} |{cells}")
    return '\n'.join(lines)
