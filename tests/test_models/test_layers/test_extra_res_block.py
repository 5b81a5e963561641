import pytest
import torch

from mmdssd.models.layers import ExtraResBlock


@pytest.mark.parametrize('k, s, size, out', [
    (2, 2, 20, 10), (2, 2, 21, 10), (3, 1, 5, 3), (3, 1, 3, 1), (3, 1, 1, 1),
    (2, 2, 1, 1)
])
def test_output_sizes(k, s, size, out):
    block = ExtraResBlock(6, 4, 10, k, s).eval()
    y = block(torch.rand(1, 6, size, size))
    assert y.shape == (1, 10, out, out)


def test_projection_shortcut_has_bn():
    block = ExtraResBlock(6, 4, 10, 2, 2)
    assert block.shortcut.with_norm and not block.shortcut.with_activation
    assert block.conv2.conv.stride == (2, 2)
