import copy
import glob
import os.path as osp

import pytest
import torch
import torch.nn as nn
from torch.nn.modules.batchnorm import _BatchNorm

from mmdssd.models.utils import fuse_bn

from ...conftest import TINY


def _randomise_bn(model, seed=0):
    g = torch.Generator().manual_seed(seed)
    for m in model.modules():
        if isinstance(m, _BatchNorm):
            m.running_mean.copy_(torch.randn(m.num_features, generator=g))
            m.running_var.copy_(torch.rand(m.num_features, generator=g) + .5)
            if m.affine:
                m.weight.data.copy_(torch.randn(m.num_features, generator=g))
                m.bias.data.copy_(torch.randn(m.num_features, generator=g))


@pytest.mark.parametrize('conv', [
    nn.Conv2d(3, 6, 3, padding=1),
    nn.Conv2d(4, 6, 3, padding=1, groups=2, bias=False),
    nn.ConvTranspose2d(3, 6, 2, stride=2),
    nn.ConvTranspose2d(4, 6, 3, groups=2, bias=False),
])
@pytest.mark.parametrize('affine', [True, False])
def test_conv_and_transposed_conv(conv, affine):
    model = nn.Sequential(conv, nn.BatchNorm2d(6, affine=affine), nn.ReLU())
    _randomise_bn(model)
    model.eval()
    x = torch.randn(2, conv.in_channels, 5, 5)
    ref = model(x)
    fused = fuse_bn(copy.deepcopy(model))
    assert isinstance(fused[1], nn.Identity)
    assert torch.allclose(fused(x), ref, atol=1e-5)


def test_refuses_training_mode():
    model = nn.Sequential(nn.Conv2d(3, 3, 1), nn.BatchNorm2d(3))
    with pytest.raises(RuntimeError, match='training mode'):
        fuse_bn(model)
    model.eval()
    model[1].train()
    with pytest.raises(RuntimeError, match=r'training mode \(e.g. 1\)'):
        fuse_bn(model)


def test_same_detections_on_trained_model(trained_tiny, data_cwd):
    """The folded model keeps the trained model's detections, checked as
    exports are: boxes and scores against the candidates, the kept sets
    equal up to swaps of tied scores."""
    from mmdet.apis import inference_detector, init_detector

    from mmdssd.deployment.verify import (compare_results,
                                          reference_detections)
    ckpt = str(trained_tiny / 'epoch_2.pth')
    model = init_detector(TINY, ckpt, device='cpu')
    images = sorted(
        glob.glob(
            osp.join(data_cwd, 'data/synthetic/VOCdevkit/VOC2007/JPEGImages',
                     '*.jpg')))[-3:]
    ref, pool = reference_detections(model, images)
    fuse_bn(model)
    assert not any(isinstance(m, _BatchNorm) for m in model.modules())
    out = [r.pred_instances for r in inference_detector(model, images)]
    report = compare_results(out, ref, candidates=pool)
    assert report.equal, str(report)
    assert min(len(r) for r in ref) > 0


def test_fuse_bn_tool_writes_a_loadable_folded_model(trained_tiny, tmp_path):
    import sys

    from ...conftest import TOOLS, run, run_status
    out = tmp_path / 'folded.pth'
    tool = osp.join(TOOLS, 'deployment', 'fuse_bn.py')
    run([sys.executable, tool, TINY, trained_tiny / 'epoch_2.pth', out])
    sys.path.insert(0, osp.dirname(tool))
    try:
        from fuse_bn import load_folded
    finally:
        sys.path.pop(0)
    model = load_folded(TINY, str(out))
    assert not any(isinstance(m, _BatchNorm) for m in model.modules())
    # refuses to overwrite what is already there
    again = run_status(
        [sys.executable, tool, TINY, trained_tiny / 'epoch_2.pth', out])
    assert again.returncode != 0 and 'not overwriting' in again.stderr
