"""ONNX export + ONNX Runtime: same detections and metrics as PyTorch."""
import os.path as osp

import pytest
import torch

pytest.importorskip('onnxruntime')

from mmdet.registry import MODELS  # noqa: E402
from mmdet.structures import DetDataSample  # noqa: E402

from mmdssd.deployment import (UnsupportedExportError,  # noqa: E402
                               export_onnx, init_onnx_detector,
                               make_session, read_metadata)
from mmdssd.deployment.verify import (compare_with_pytorch,  # noqa: E402
                                      first_test_images)
from mmdssd.utils.config_paths import config_without_download  # noqa: E402

from ..conftest import PYTHON, TINY, TOOLS, run  # noqa: E402
from ..test_tools.test_train_test import _metrics  # noqa: E402
from .conftest import pytorch_reference, random_images  # noqa: E402
from .conftest import tiny_cfg as _tiny_cfg  # noqa: E402

# One worker exports (and quantises) the trained tiny model for all of them.
pytestmark = pytest.mark.xdist_group('exported_tiny')


def test_export_gives_pytorch_detections(exported_tiny, trained_tiny,
                                         data_cwd):
    """Every test image: same number of detections, same labels, boxes to
    1e-3 relative, against the unfolded PyTorch model; and the detections
    are not trivially empty."""
    cfg = _tiny_cfg(data_cwd)
    images = first_test_images(cfg, 8)
    report = compare_with_pytorch(cfg, str(trained_tiny / 'epoch_2.pth'),
                                  str(exported_tiny), images=images)
    assert report.equal, str(report)
    assert report.num_images == 8 and report.num_dets > 0
    meta = read_metadata(str(exported_tiny))
    assert meta['input_size'] == [256, 256]
    assert meta['classes'] == ['circle', 'square', 'triangle', 'cross', 'ring']


def _closest_kept_pair(model, images) -> float:
    """The largest IoU between two boxes of one label that ``model`` keeps
    on any of ``images``: its NMS let that pair through."""
    from mmdet.apis import inference_detector
    from mmdet.structures.bbox import bbox_overlaps
    closest = 0.0
    for result in inference_detector(model, images):
        det = result.pred_instances
        for label in det.labels.unique():
            boxes = det.bboxes[det.labels == label]
            iou = bbox_overlaps(boxes, boxes).triu(diagonal=1)
            closest = max(closest, float(iou.max()) if len(boxes) > 1 else 0)
    return closest


def test_check_catches_a_different_nms(exported_tiny, trained_tiny,
                                      data_cwd):
    """The export check is not blind: against a reference whose NMS IoU
    threshold lies just under the closest pair the exported model keeps,
    the kept sets differ by more than tied swaps. The threshold comes from
    the model's own boxes, so the premise holds whatever it learnt."""
    from mmdet.apis import init_detector
    cfg = _tiny_cfg(data_cwd)
    assert cfg.model.test_cfg.nms.iou_threshold == 0.45
    images = first_test_images(cfg, 8)
    checkpoint = str(trained_tiny / 'epoch_2.pth')
    closest = _closest_kept_pair(init_detector(cfg, checkpoint,
                                               device='cpu'),
                                 images)
    # 0.02 under it: further than the check's IoU tie tolerance (0.01)
    assert 0.1 < closest <= 0.45, f'no overlapping pair kept: {closest}'
    cfg.model.test_cfg.nms.iou_threshold = closest - 0.02
    report = compare_with_pytorch(cfg, checkpoint, str(exported_tiny),
                                  images=images)
    assert not report.equal and report.set_mismatches > 0, str(report)
    assert report.label_mismatches == report.count_mismatches == 0


def test_cross_class_decay_is_exported(trained_tiny, data_cwd, tmp_path):
    """With the head's cross-class decay on, the graph gives PyTorch's
    decayed and re-ranked detections, on images where the decay changes
    some scores."""
    from mmdet.apis import inference_detector, init_detector
    checkpoint = str(trained_tiny / 'epoch_2.pth')
    cfg = _tiny_cfg(data_cwd)
    images = first_test_images(cfg, 8)
    plain = inference_detector(init_detector(cfg, checkpoint, device='cpu'),
                               images)
    cfg.model.test_cfg.cross_class_decay = dict(iou_threshold=0.3,
                                                factor=0.5)
    decayed = inference_detector(
        init_detector(cfg, checkpoint, device='cpu'), images)
    assert any(not torch.equal(p.pred_instances.scores.sort()[0],
                               d.pred_instances.scores.sort()[0])
               for p, d in zip(plain, decayed))
    out = export_onnx(cfg, checkpoint, str(tmp_path / 'decay.onnx'))
    report = compare_with_pytorch(cfg, checkpoint, out, images=images)
    assert report.equal and report.num_dets > 0, str(report)


def test_dynamic_batch_gives_per_image_results(exported_tiny, trained_tiny):
    """A batch of 3 gives each image PyTorch's detections, as each image
    alone does (up to swaps of tied scores, which either may break
    differently)."""
    from mmdssd.deployment import ONNXRuntimeDetector
    from mmdssd.deployment.verify import compare_results
    session = make_session(str(exported_tiny))
    images = random_images(3)
    dets, labels = session.run(None, dict(images=images))
    assert dets.shape == (3, 200, 5) and labels.shape == (3, 200)
    alone = [session.run(None, dict(images=images[i:i + 1]))
             for i in range(3)]
    ref, pool = pytorch_reference(trained_tiny, images)
    for got in (zip(dets, labels), ((d[0], l[0]) for d, l in alone)):
        got = [ONNXRuntimeDetector.to_instances(d, l) for d, l in got]
        report = compare_results(got, ref, candidates=pool)
        assert report.equal and report.num_dets == 600, str(report)


def test_runtime_evaluation_equals_pytorch(exported_tiny, trained_tiny,
                                           data_cwd, tmp_path):
    """tools/test.py on the .onnx gives PyTorch's VOC mAP and COCO AP."""
    torch_out = run([
        PYTHON, osp.join(TOOLS, 'test.py'), TINY,
        trained_tiny / 'epoch_2.pth', '--work-dir', tmp_path / 'pt'
    ], cwd=data_cwd)
    onnx_out = run([
        PYTHON, osp.join(TOOLS, 'test.py'), TINY, exported_tiny,
        '--work-dir', tmp_path / 'ort'
    ], cwd=data_cwd)
    ref, got = _metrics(torch_out), _metrics(onnx_out)
    assert set(ref) == set(got) == {'pascal_voc/mAP', 'coco/bbox_mAP'}
    for key in ref:
        assert abs(ref[key] - got[key]) <= 1e-3, (key, ref, got)


def test_inference_api_returns_det_data_samples(exported_tiny, data_cwd):
    """mmdet's inference_detector and visualiser take the ONNX model."""
    from mmdet.apis import inference_detector
    from mmdet.visualization import DetLocalVisualizer
    cfg = _tiny_cfg(data_cwd)
    model = init_onnx_detector(cfg, str(exported_tiny))
    image = first_test_images(cfg, 1)[0]
    result = inference_detector(model, image)
    assert isinstance(result, DetDataSample)
    pred = result.pred_instances
    assert len(pred) > 0 and pred.bboxes.shape[1] == 4
    assert pred.labels.min() >= 0 and pred.labels.max() < 5
    # boxes are in the original image, not the 256 x 256 input
    import mmcv
    img = mmcv.imread(image)
    height, width = img.shape[:2]
    assert (height, width) != (256, 256)
    assert float(pred.bboxes[:, 0::2].max()) <= width + 1e-3
    assert float(pred.bboxes[:, 1::2].max()) <= height + 1e-3
    assert float(pred.bboxes[:, 0::2].max()) > 256 or float(
        pred.bboxes[:, 1::2].max()) > 256  # rescaled up from 256
    vis = DetLocalVisualizer()
    vis.dataset_meta = model.dataset_meta
    vis.add_datasample('x', mmcv.bgr2rgb(img), result, draw_gt=False,
                       pred_score_thr=0.0)
    assert vis.get_image().shape == img.shape


def test_runtime_refuses_wrong_input_size(exported_tiny, data_cwd):
    from mmdssd.deployment import ONNXRuntimeDetector
    model = ONNXRuntimeDetector(str(exported_tiny))
    with pytest.raises(ValueError, match=r'exported for \(256, 256\)'):
        model(torch.zeros(1, 3, 320, 320))
    cfg = _tiny_cfg(data_cwd)
    cfg.test_dataloader.dataset.pipeline[1].scale = (320, 320)
    with pytest.raises(ValueError, match=r'input_size: file \[256, 256\], '
                       r'config \[320, 320\]'):
        init_onnx_detector(cfg, str(exported_tiny))


def test_runtime_refuses_a_file_of_another_config(exported_tiny, data_cwd):
    cfg = _tiny_cfg(data_cwd)
    cfg.test_dataloader.dataset.metainfo.classes = ('a', 'b', 'c', 'd', 'e')
    cfg.model.bbox_head.anchor_generator.ratios = [2]
    with pytest.raises(ValueError) as info:
        init_onnx_detector(cfg, str(exported_tiny))
    message = str(info.value)
    assert message.startswith(f'{exported_tiny} was exported from {TINY}')
    assert ("classes: file ['circle', 'square', 'triangle', 'cross', "
            "'ring'], config ['a', 'b', 'c', 'd', 'e']") in message
    assert "'ratios': [1.6, 2, 3]" in message and "'ratios': [2]" in message


def test_test_tool_names_a_corrupt_onnx_file(data_cwd, tmp_path):
    corrupt = tmp_path / 'model.onnx'
    corrupt.write_bytes(b'\x08\x07garbage' * 10)
    with pytest.raises(AssertionError,
                       match=f'{corrupt}: not a readable ONNX model'):
        run([PYTHON, osp.join(TOOLS, 'test.py'), TINY, corrupt,
             '--work-dir', tmp_path], cwd=data_cwd)


def test_export_refuses_unsupported_configs(tmp_path):
    out = str(tmp_path / 'x.onnx')
    cfg = config_without_download(TINY)
    cfg.model.test_cfg.nms = dict(type='soft_nms', iou_threshold=0.45)
    with pytest.raises(UnsupportedExportError,
                       match=r"model.test_cfg.nms.type='soft_nms'"):
        export_onnx(cfg, None, out)
    cfg = config_without_download(TINY)
    cfg.test_dataloader.dataset.pipeline[1].keep_ratio = True
    with pytest.raises(UnsupportedExportError, match='keep_ratio=True'):
        export_onnx(cfg, None, out)
    assert not osp.exists(out)


@MODELS.register_module(force=True)
class _ResNetWithDeformConv(torch.nn.Module):
    """A backbone with an mmcv op ONNX Runtime does not have."""

    def __init__(self, **kwargs) -> None:
        super().__init__()
        from mmcv.ops import DeformConv2dPack
        self.resnet = MODELS.build(dict(type='ResNet', **kwargs))
        self.dcn = DeformConv2dPack(64, 64, 3, padding=1)

    def init_weights(self) -> None:
        pass

    def forward(self, x):
        outs = list(self.resnet(x))
        outs[0] = self.dcn(outs[0])
        return tuple(outs)


def test_export_names_an_operator_the_runtime_lacks(tmp_path):
    cfg = config_without_download(TINY)
    cfg.model.backbone.type = _ResNetWithDeformConv.__name__
    out = tmp_path / 'dcn.onnx'
    with pytest.raises(UnsupportedExportError, match='mmcv::'):
        export_onnx(cfg, None, str(out))
    assert not list(tmp_path.iterdir())  # no partial file left behind


def test_export_keeps_an_existing_file(exported_tiny, trained_tiny):
    before = osp.getmtime(exported_tiny)
    with pytest.raises(FileExistsError, match='not overwriting'):
        export_onnx(TINY, str(trained_tiny / 'epoch_2.pth'),
                    str(exported_tiny))
    assert osp.getmtime(exported_tiny) == before


def test_stock_ssd300_exports_and_matches_its_network(tmp_path):
    """Stock MMDetection SSD300 (random weights scaled down so scores are
    not saturated ties): the exported graph's detections equal PyTorch's
    predict on the same input."""
    from mmdssd.deployment import build_detector
    from mmdssd.deployment.verify import compare_results
    torch.manual_seed(0)
    cfg = config_without_download('mmdet::ssd/ssd300_coco.py')
    model, _ = build_detector(cfg, None, fold_bn=False)
    with torch.no_grad():
        for conv in model.bbox_head.cls_convs.modules():
            if isinstance(conv, torch.nn.Conv2d):
                conv.weight.mul_(0.01)
    ckpt = tmp_path / 'ssd300.pth'
    torch.save(dict(state_dict=model.state_dict(), meta={}), ckpt)
    out = export_onnx(cfg, str(ckpt), str(tmp_path / 'ssd300.onnx'))
    x = torch.rand(2, 3, 300, 300) * 255
    samples = [
        DetDataSample(
            metainfo=dict(img_shape=(300, 300), ori_shape=(300, 300),
                          scale_factor=(1.0, 1.0))) for _ in range(2)
    ]
    with torch.no_grad():
        data = model.data_preprocessor(
            dict(inputs=list(x), data_samples=samples), False)
        ref = model.predict(data['inputs'], data['data_samples'])
    dets, labels = make_session(out).run(None, dict(images=x.numpy()))
    from mmdssd.deployment import ONNXRuntimeDetector
    got = [
        ONNXRuntimeDetector.to_instances(d, l) for d, l in zip(dets, labels)
    ]
    report = compare_results(got, [r.pred_instances for r in ref])
    assert report.equal, str(report)
    assert report.num_dets > 0
