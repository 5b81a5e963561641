import subprocess

import pytest
import torch
import torch.nn as nn
from mmcv.cnn import build_conv_layer
from mmdet.registry import MODELS
from mmengine.config import Config

from mmdssd.models.layers import SubsampleFirstConv2d

from ...conftest import PYTHON, ROOT


def _pair(*args, **kwargs):
    torch.manual_seed(0)
    plain = nn.Conv2d(*args, **kwargs)
    ours = SubsampleFirstConv2d(*args, **kwargs)
    ours.load_state_dict(plain.state_dict())
    return plain, ours


def _run(conv, x):
    x = x.detach().clone().requires_grad_()
    y = conv(x)
    (y * torch.linspace(-1, 1, y.numel()).view_as(y)).sum().backward()
    return y, x.grad, [p.grad for p in conv.parameters()]


@pytest.mark.parametrize('layout', [torch.contiguous_format,
                                    torch.channels_last])
@pytest.mark.parametrize('stride,size', [(2, (56, 56)), (2, (7, 9)),
                                         ((2, 3), (11, 10))])
def test_a_strided_1x1_conv_is_nn_conv2d_with_its_layout(
        layout, stride, size):
    plain, ours = _pair(8, 16, 1, stride=stride)
    x = torch.randn(2, 8, *size)
    # the reference in NCHW: nn.Conv2d's channels-last weight gradient
    # here is the kernel that crashes on AVX-512 CPUs
    y_plain, gx_plain, gw_plain = _run(plain, x)
    y_ours, gx_ours, gw_ours = _run(ours,
                                    x.contiguous(memory_format=layout))
    assert y_ours.shape == y_plain.shape
    torch.testing.assert_close(y_ours, y_plain)
    torch.testing.assert_close(gx_ours, gx_plain)
    for a, b in zip(gw_ours, gw_plain):
        # sums over every kept pixel, in another kernel's order
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-4)
    # the next layer gets the layout it would have got
    assert y_ours.is_contiguous(memory_format=layout)


def test_it_subsamples_only_where_a_1x1_conv_reads_a_subsample():
    strided = SubsampleFirstConv2d(4, 4, 1, stride=2)
    assert strided._reads_a_subsample()
    for kwargs in (dict(kernel_size=3, stride=2, padding=1),
                   dict(kernel_size=1, stride=1),
                   dict(kernel_size=1, stride=2, padding=1)):
        conv = SubsampleFirstConv2d(4, 4, **kwargs)
        assert not conv._reads_a_subsample(), kwargs
        plain, ours = _pair(4, 4, **kwargs)
        x = torch.randn(1, 4, 9, 9)
        torch.testing.assert_close(ours(x), plain(x))


def test_built_by_name_with_nn_conv2d_state_dict():
    with MODELS.switch_scope_and_registry('mmdet'):
        conv = build_conv_layer(dict(type='SubsampleFirstConv'), 8, 16, 1,
                                stride=2, bias=False)
    assert isinstance(conv, SubsampleFirstConv2d)
    assert conv.state_dict().keys() == nn.Conv2d(
        8, 16, 1, stride=2, bias=False).state_dict().keys()


NARROW_BACKBONE_STEP = '''
import torch
from mmengine.config import Config
from mmdet.registry import MODELS
from mmdet.utils import register_all_modules
import mmdssd  # noqa: F401
register_all_modules()
cfg = Config.fromfile({config!r}).model.backbone
net = MODELS.build(cfg).to(memory_format=torch.channels_last)
net.train()
x = torch.randn(8, 3, 224, 224).to(memory_format=torch.channels_last)
sum(o.sum() for o in net(x)).backward()
print('stepped')
'''


def test_the_narrow_backbone_trains_in_fp32_at_224_channels_last():
    """The narrow model's backbone, fp32, channels-last, at the job's
    224: its first downsampling crashed oneDNN's AVX-512 weight-gradient
    kernel (the process died) before it ran as a subsampling. On CPUs
    without AVX-512 both forms run, and the test checks only that the
    step completes."""
    config = f'{ROOT}/configs/synthetic/dssd_main_job_narrow_synthetic.py'
    done = subprocess.run(
        [PYTHON, '-c', NARROW_BACKBONE_STEP.format(config=config)],
        capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert 'stepped' in done.stdout
    assert Config.fromfile(config).model.backbone.conv_cfg == dict(
        type='SubsampleFirstConv')
