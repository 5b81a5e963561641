"""OpenVINO: fp32 gives PyTorch's detections; bf16 and int8 run where the
CPU has them and say what ran; int8 keeps to its allowed metric drop."""
import os.path as osp
import re

import numpy as np
import pytest
import torch

pytest.importorskip('openvino')
pytest.importorskip('nncf')

from mmdssd.deployment import (OpenVINODetector,  # noqa: E402
                               UnsupportedPrecisionError, check_precision,
                               init_deployed_detector, make_session,
                               read_metadata)
from mmdssd.deployment import int8 as int8_module  # noqa: E402
from mmdssd.deployment.openvino_runtime import \
    openvino_capabilities  # noqa: E402
from mmdssd.deployment.verify import (compare_with_pytorch,  # noqa: E402
                                      first_test_images)
from mmdssd.utils.config_paths import config_without_download  # noqa: E402
from mmengine.evaluator import BaseMetric  # noqa: E402
from mmdet.registry import METRICS  # noqa: E402

from ..conftest import PYTHON, TINY, TOOLS, run  # noqa: E402
from ..test_tools.test_train_test import _metrics  # noqa: E402
from .conftest import pytorch_reference, random_images  # noqa: E402
from .conftest import tiny_cfg  # noqa: E402

# One worker exports (and quantises) the trained tiny model for all of them.
pytestmark = pytest.mark.xdist_group('exported_tiny')

HAS_BF16 = 'BF16' in openvino_capabilities()
HAS_INT8 = 'INT8' in openvino_capabilities()


def test_fp32_gives_pytorch_detections(exported_tiny, trained_tiny,
                                       data_cwd):
    """fp32 is forced (OpenVINO would pick bf16 itself on some CPUs) and
    gives the unfolded PyTorch model's detections on every test image."""
    cfg = tiny_cfg(data_cwd)
    report = compare_with_pytorch(cfg, str(trained_tiny / 'epoch_2.pth'),
                                  str(exported_tiny),
                                  images=first_test_images(cfg, 8),
                                  runtime='openvino', precision='fp32')
    assert report.equal, str(report)
    assert report.num_images == 8 and report.num_dets > 0
    model = init_deployed_detector(cfg, str(exported_tiny), 'openvino')
    assert type(model) is OpenVINODetector
    assert model.precision_ran == 'fp32'


def _instances(dets_labels):
    return [OpenVINODetector.to_instances(d, l) for d, l in zip(*dets_labels)]


def test_static_shapes_equal_dynamic(exported_tiny, trained_tiny):
    """Per-batch fixed-shape compilation, the dynamic graph and ONNX
    Runtime all give PyTorch's detections, for a batch of 3 and for one
    image (up to swaps of tied scores, which each may break
    differently)."""
    from mmdssd.deployment.verify import compare_results
    images = random_images(3)
    ref, pool = pytorch_reference(trained_tiny, images)
    dynamic = OpenVINODetector(str(exported_tiny))
    static = OpenVINODetector(str(exported_tiny), static_shapes=True)
    ort = _instances(make_session(str(exported_tiny)).run(
        None, dict(images=images)))
    runs = [(ort, 3)]
    for n in (3, 1):
        batch = images[:n]
        runs += [(_instances(static.infer(batch)), n),
                 (_instances(dynamic.infer(batch)), n)]
    for got, n in runs:
        report = compare_results(got, ref[:n], candidates=pool[:n])
        assert report.equal and report.num_dets == 200 * n, str(report)


def test_test_tool_evaluates_under_openvino(exported_tiny, data_cwd,
                                            tmp_path):
    """tools/test.py --runtime openvino: ONNX Runtime's metrics, and the
    log says fp32 ran."""
    ort = _metrics(run([PYTHON, osp.join(TOOLS, 'test.py'), TINY,
                        exported_tiny, '--work-dir', tmp_path / 'ort'],
                       cwd=data_cwd))
    out = run([PYTHON, osp.join(TOOLS, 'test.py'), TINY, exported_tiny,
               '--runtime', 'openvino', '--work-dir', tmp_path / 'ov'],
              cwd=data_cwd)
    assert 'OpenVINODetector ran fp32' in out
    got = _metrics(out)
    assert set(got) == set(ort) == {'pascal_voc/mAP', 'coco/bbox_mAP'}
    for key in ort:
        assert abs(ort[key] - got[key]) <= 1e-3, (key, ort, got)


@pytest.mark.skipif(not HAS_BF16, reason='this CPU has no bf16 in OpenVINO')
def test_bf16_runs_and_says_so(exported_tiny, data_cwd):
    from mmdet.apis import inference_detector
    cfg = tiny_cfg(data_cwd)
    model = init_deployed_detector(cfg, str(exported_tiny), 'openvino',
                                   precision='bf16')
    assert model.precision_ran == 'bf16'
    result = inference_detector(model, first_test_images(cfg, 1)[0])
    assert len(result.pred_instances) > 0


@pytest.mark.skipif(HAS_BF16, reason='this CPU has bf16 in OpenVINO')
def test_bf16_refused_where_the_cpu_lacks_it(exported_tiny):
    with pytest.raises(UnsupportedPrecisionError,
                       match=r"precision='bf16': this CPU, .* has no BF16 "
                       r'in OpenVINO .*; use fp32'):
        OpenVINODetector(str(exported_tiny), precision='bf16')


def test_unsupported_precisions_name_the_way_out(exported_tiny,
                                                 trained_tiny, tmp_path):
    with pytest.raises(UnsupportedPrecisionError, match="'fp16': one of"):
        check_precision('fp16')
    with pytest.raises(ValueError, match='ONNX Runtime runs the exported '
                       'model in fp32 only'):
        init_deployed_detector(TINY, str(exported_tiny), 'onnxruntime',
                               precision='int8')
    if HAS_INT8:
        with pytest.raises(UnsupportedPrecisionError,
                           match="precision='int8' needs a quantised model"):
            OpenVINODetector(str(exported_tiny), precision='int8')
    with pytest.raises(ValueError, match='name it \\*.xml'):
        int8_module.quantize_int8(TINY, str(exported_tiny),
                                  str(tmp_path / 'x.onnx'))
    with pytest.raises(AssertionError, match='--runtime/--precision: for '
                       'an exported model'):
        run([PYTHON, osp.join(TOOLS, 'test.py'), TINY,
             trained_tiny / 'epoch_2.pth', '--precision', 'bf16'],
            cwd=tmp_path)


def test_postprocessing_is_left_out_of_quantisation(exported_tiny):
    """The ignored nodes are the decoding and NMS: NMS and the top-k are
    among them, no convolution is, and every ignored node is downstream
    of the last convolutions."""
    import openvino as ov
    model = ov.Core().read_model(str(exported_tiny))
    ignored = set(int8_module.postprocessing_nodes(model))
    types = {op.get_friendly_name(): op.get_type_name()
             for op in model.get_ops()}
    kinds = {types[name] for name in ignored}
    assert {'NonMaxSuppression', 'TopK'} <= kinds
    assert not kinds & set(int8_module.WEIGHTED_TYPES)
    network = {name for name, kind in types.items()
               if kind == 'Convolution'}
    assert len(network) > 10 and not network & ignored


@pytest.fixture(scope='module')
def quantized_tiny(exported_tiny, data_cwd, tmp_path_factory):
    """The tool's int8 model of the tiny DSSD (a generous drop: the tiny
    model's metrics are near zero, this checks the path, not the gain)."""
    if not HAS_INT8:
        pytest.skip('this CPU has no INT8 in OpenVINO')
    out = tmp_path_factory.mktemp('int8') / 'tiny_int8.xml'
    log = run([PYTHON, osp.join(TOOLS, 'deployment', 'quantize_int8.py'),
               TINY, exported_tiny, out, '--max-drop', '1.0',
               '--subset-size', '8'], cwd=data_cwd)
    assert 'wrote' in log, log[-3000:]
    return out, log


def test_int8_model_runs_and_reports_its_precision(quantized_tiny,
                                                   exported_tiny, data_cwd,
                                                   tmp_path):
    out, log = quantized_tiny
    assert 'calibrated on 8 training images' in log
    assert osp.isfile(str(out)[:-4] + '.bin')
    meta = read_metadata(str(out))
    assert meta['precision'] == 'int8'
    assert meta['classes'] == read_metadata(str(exported_tiny))['classes']
    quality = meta['quantization']
    assert quality['metric'] == 'coco/bbox_mAP'
    assert quality['fp32'] - quality['int8'] <= 1.0
    model = OpenVINODetector(str(out), precision='int8')
    assert model.precision_ran.startswith('int8 (')
    found = re.fullmatch(r'int8 \((\d+) of (\d+) convolutions\), float '
                         r'parts fp32', model.precision_ran)
    assert found, model.precision_ran
    assert 0 < int(found[1]) <= int(found[2])
    with pytest.raises(UnsupportedPrecisionError, match='is quantised to '
                       "int8; run it with precision='int8'"):
        OpenVINODetector(str(out), precision='fp32')
    test_out = run([PYTHON, osp.join(TOOLS, 'test.py'), TINY, out,
                    '--work-dir', tmp_path], cwd=data_cwd)
    assert 'OpenVINODetector ran int8 (' in test_out
    assert set(_metrics(test_out)) == {'pascal_voc/mAP', 'coco/bbox_mAP'}


@METRICS.register_module(force=True)
class _ImagesWithDetections(BaseMetric):
    """Share of images with at least one detection: a metric the trained
    tiny model scores above zero on (its VOC and COCO AP are 0)."""
    default_prefix = 'count'

    def process(self, data_batch, data_samples) -> None:
        self.results += [len(s['pred_instances']['scores']) > 0
                         for s in data_samples]

    def compute_metrics(self, results) -> dict:
        return dict(with_dets=float(np.mean(results)))


def _blind_onnx(out: str) -> str:
    """The tiny config exported with classifiers that always say
    background: no detections at all."""
    from mmdssd.deployment import build_detector, export_onnx
    model, _ = build_detector(TINY, None, fold_bn=False)
    head = model.bbox_head
    with torch.no_grad():
        for conv in head.cls_convs:
            conv.weight.zero_()
            bias = conv.bias.view(-1, head.cls_out_channels)
            bias.zero_()
            bias[:, head.num_classes] = 30.0  # the background logit
    ckpt = out + '.pth'
    torch.save(dict(state_dict=model.state_dict(), meta={}), ckpt)
    return export_onnx(TINY, ckpt, out)


def test_int8_refused_beyond_the_allowed_drop(exported_tiny, data_cwd,
                                              tmp_path, monkeypatch):
    """When the quantised model loses more than allowed, nothing is
    written, an existing file stays as it was, and the error gives both
    metrics. The drop is made certain by making the accuracy control
    return a network that detects nothing."""
    if not HAS_INT8:
        pytest.skip('this CPU has no INT8 in OpenVINO')
    import nncf
    import openvino as ov
    monkeypatch.chdir(data_cwd)
    blind = _blind_onnx(str(tmp_path / 'blind.onnx'))
    monkeypatch.setattr(nncf, 'quantize_with_accuracy_control',
                        lambda *args, **kwargs: ov.Core().read_model(blind))
    cfg = config_without_download(TINY)
    cfg.test_evaluator = dict(type=_ImagesWithDetections.__name__)
    out = tmp_path / 'int8.xml'
    out.write_text('an earlier model')
    with pytest.raises(int8_module.AccuracyDropError) as info:
        int8_module.quantize_int8(cfg, str(exported_tiny), str(out),
                                  max_drop=0.0, subset_size=2,
                                  metric='count/with_dets')
    message = str(info.value)
    assert 'int8 stays above the allowed drop' in message
    found = re.search(r'count/with_dets: fp32 ([0-9.]+), int8 0.0000',
                      message)
    assert found and float(found[1]) > 0, message
    assert 'not written' in message
    assert out.read_text() == 'an earlier model'
    assert not [p for p in tmp_path.iterdir() if '.part' in p.name or
                p.suffix == '.bin']


def test_accuracy_control_scores_an_image_without_detections_zero(
        data_cwd, tmp_path, monkeypatch):
    """The accuracy control scores one image at a time; MMDetection's
    CocoMetric gives no keys for an image with no detections, which is a
    COCO AP of 0, not an unknown metric. A name no evaluator gives stays
    an error naming the ones it does."""
    import openvino as ov
    from mmdssd.deployment.evaluation import load_items
    monkeypatch.chdir(data_cwd)
    blind = _blind_onnx(str(tmp_path / 'blind.onnx'))
    compiled = ov.Core().compile_model(blind, 'CPU')
    cfg = tiny_cfg(data_cwd)
    items, meta = load_items(cfg, 'test', 1)
    predict = int8_module._predictor(compiled)
    assert len(predict(items)[0].pred_instances) == 0
    assert int8_module.metric_of(predict, items, cfg, meta,
                                 'coco/bbox_mAP') == 0.0
    assert int8_module.metric_of(predict, items, cfg, meta,
                                 'pascal_voc/mAP') == 0.0
    with pytest.raises(KeyError, match=r"metric='nope/AP'.*pascal_voc/mAP"):
        int8_module.metric_of(predict, items, cfg, meta, 'nope/AP')


def test_compare_precisions_tool_tables_every_precision(trained_tiny,
                                                        data_cwd, tmp_path):
    """One row per runtime and precision; fp32 deployed equals PyTorch;
    a precision the CPU lacks is a row saying why."""
    table = tmp_path / 'table.md'
    run([PYTHON, osp.join(TOOLS, 'deployment', 'compare_precisions.py'),
         TINY, trained_tiny / 'epoch_2.pth', '--work-dir', tmp_path / 'w',
         '--max-drop', '1.0', '--subset-size', '4', '--out', table],
        cwd=data_cwd)
    lines = table.read_text().splitlines()
    assert lines[0].startswith(TINY) and '; CPU: ' in lines[0]
    assert lines[1] == ('| runtime | precision that ran | VOC mAP | change '
                        '| COCO AP | change | AP_small | change |')
    rows = {tuple(line.split(' | ')[:2]): line for line in lines[3:]}
    assert lines[3].startswith('| PyTorch | fp32 | ')
    for runtime in ('ONNX Runtime', 'OpenVINO'):
        row = rows[('| ' + runtime, 'fp32')]
        assert row.count('+0.0000') == 3, row
    bf16 = [line for line in lines if line.startswith('| OpenVINO | bf16')]
    assert len(bf16) == 1
    if not HAS_BF16:
        assert 'skipped: ' in bf16[0] and 'no BF16' in bf16[0]
    int8 = [line for line in lines if line.startswith('| OpenVINO | int8')]
    assert len(int8) == 1
    if HAS_INT8:
        assert re.match(r'\| OpenVINO \| int8 \(\d+ of \d+ convolutions\)',
                        int8[0]), int8[0]
