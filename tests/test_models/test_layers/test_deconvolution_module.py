import pytest
import torch

from mmdssd.models.layers import DeconvolutionModule
from mmdssd.models.layers.deconvolution_module import match_size


@pytest.mark.parametrize('top, lateral, ks', [
    (10, 20, (2, 2)), (10, 21, (2, 2)), (1, 3, (3, 1)), (3, 5, (3, 1)),
    (1, 2, (2, 1)), (1, 1, (3, 1)), (1, 1, (2, 2)), (5, 12, (2, 2))
])
def test_lands_on_lateral_size(top, lateral, ks):
    dm = DeconvolutionModule(6, 4, 8, *ks).eval()
    out = dm(torch.rand(2, 6, top, top), torch.rand(2, 4, lateral, lateral))
    assert out.shape == (2, 8, lateral, lateral)
    assert (out >= 0).all()  # ReLU after fusion


def test_fusion_is_what_it_says():
    torch.manual_seed(0)
    dm = DeconvolutionModule(6, 4, 8, 2, 2, fusion='prod').eval()
    top, lat = torch.rand(1, 6, 5, 5), torch.rand(1, 4, 10, 10)
    t = dm.top_conv(dm.upsample(top, (10, 10)))
    l_ = dm.lateral_convs(lat)
    assert torch.allclose(dm(top, lat), torch.relu(t * l_))
    dm.fusion = 'sum'
    assert torch.allclose(dm(top, lat), torch.relu(t + l_))


def test_no_bn_after_deconv_and_bn_elsewhere():
    dm = DeconvolutionModule(6, 4, 8)
    assert isinstance(dm.deconv, torch.nn.ConvTranspose2d)
    assert dm.top_conv.with_norm
    assert all(m.with_norm for m in dm.lateral_convs)
    assert dm.lateral_convs[0].with_activation
    assert not dm.lateral_convs[1].with_activation
    assert not dm.top_conv.with_activation


def test_match_size_crops_and_pads():
    x = torch.arange(25.).view(1, 1, 5, 5)
    assert match_size(x, (3, 3))[0, 0, 0, 0] == 6
    assert match_size(x, (7, 6)).shape[-2:] == (7, 6)
