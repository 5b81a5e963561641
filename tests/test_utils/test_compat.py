"""Each stack workaround, with a check that the breakage is real."""
import os.path as osp
import subprocess
import sys

import pytest
import torch

from ..conftest import load_cfg


def _fresh_python(code: str) -> subprocess.CompletedProcess:
    """Run ``code`` in a new interpreter that does not import mmdssd."""
    env = {k: v for k, v in __import__('os').environ.items()
           if k != 'TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD'}
    return subprocess.run([sys.executable, '-c', code], env=env,
                          capture_output=True, text=True, timeout=300)


def test_runner_checkpoint_loads_under_weights_only(trained_tiny):
    ckpt = str(trained_tiny / 'epoch_1.pth')
    # without mmdssd the safety refuses MMEngine's message hub
    bare = _fresh_python(f'import torch; torch.load({ckpt!r})')
    assert bare.returncode != 0
    assert 'Unsupported global' in bare.stderr or 'weights_only' in \
        bare.stderr
    # with mmdssd imported, weights_only stays on and the load succeeds
    loaded = torch.load(ckpt, map_location='cpu', weights_only=True)
    assert 'message_hub' in loaded and 'state_dict' in loaded


class NotAllowed:
    """A module-level class (picklable), not on the allow-list."""


def test_arbitrary_classes_are_still_refused():
    """mmdssd allows MMEngine's checkpoint classes, nothing else: an
    object of any other class makes ``torch.load`` refuse the file."""
    import io
    buf = io.BytesIO()
    torch.save({'x': NotAllowed()}, buf)  # saving works
    buf.seek(0)
    with pytest.raises(Exception, match='Unsupported global'):
        torch.load(buf, weights_only=True)
    buf.seek(0)  # the same file without the safety loads: it was the class
    assert isinstance(torch.load(buf, weights_only=False)['x'], NotAllowed)


def _stock_ssd_predict_code(import_mmdssd: bool) -> str:
    return '\n'.join([
        'import torch',
        'import mmdssd' if import_mmdssd else 'import mmdet.models',
        'from mmengine.config import Config',
        'from mmdet.registry import MODELS',
        'from mmdet.utils import register_all_modules',
        'from mmdet.structures import DetDataSample',
        'register_all_modules()',
        "cfg = Config.fromfile('" + osp.join(
            osp.dirname(__import__('mmdet').__file__), '.mim', 'configs',
            'ssd', 'ssd300_coco.py') + "')",
        'cfg.model.backbone.init_cfg = None',
        'model = MODELS.build(cfg.model).eval()',
        'sample = DetDataSample(metainfo=dict(img_shape=(300, 300), '
        'ori_shape=(300, 300), scale_factor=(1., 1.)))',
        'with torch.no_grad():',
        '    out = model.predict(torch.rand(1, 3, 300, 300), [sample])',
        'print("BOXES", out[0].pred_instances.bboxes.shape)',
    ])


def test_stock_ssd_predicts_with_mmdssd():
    bare = _fresh_python(_stock_ssd_predict_code(False))
    assert "has no attribute 'loss_cls'" in bare.stderr
    fixed = _fresh_python(_stock_ssd_predict_code(True))
    assert fixed.returncode == 0, fixed.stderr[-3000:]
    assert 'BOXES torch.Size([' in fixed.stdout


def test_ssdhead_patch_does_not_shadow_a_head_own_loss_cls():
    from mmdet.models.dense_heads import SSDHead
    from mmdet.models.losses import CrossEntropyLoss
    from mmdet.registry import MODELS
    stock = SSDHead(
        num_classes=3,
        anchor_generator=dict(
            type='SSDAnchorGenerator',
            scale_major=False,
            input_size=300,
            basesize_ratio_range=(0.15, 0.9),
            strides=[8, 16, 32, 64, 100, 300],
            ratios=[[2], [2, 3], [2, 3], [2, 3], [2], [2]]))
    assert isinstance(stock.loss_cls, CrossEntropyLoss)
    assert not stock.loss_cls.use_sigmoid
    assert 'loss_cls' not in dict(stock.named_children())
    cfg = load_cfg('synthetic/dssd_tiny_synthetic.py').model.bbox_head
    cfg.loss_cls = dict(
        type='CrossEntropyLoss', use_sigmoid=False, loss_weight=2.0)
    head = MODELS.build(cfg)
    assert head.loss_cls is head._modules['loss_cls']
    assert head.loss_cls.loss_weight == 2.0


class _AsksForGetattr:
    """Pickles as getattr(HistoryBuffer, <name>), like a crafted file."""

    def __init__(self, name):
        self.name = name

    def __reduce__(self):
        from mmengine.logging.history_buffer import HistoryBuffer
        return getattr, (HistoryBuffer, self.name)


def test_getattr_stand_in_allows_only_history_buffer_statistics(tmp_path):
    from mmengine.logging.history_buffer import HistoryBuffer
    good, bad = tmp_path / 'good.pth', tmp_path / 'bad.pth'
    torch.save({'m': _AsksForGetattr('mean')}, good)
    torch.save({'m': _AsksForGetattr('__init__')}, bad)
    assert torch.load(good, weights_only=True)['m'] is HistoryBuffer.mean
    with pytest.raises(Exception, match="getattr.*'__init__'"):
        torch.load(bad, weights_only=True)
