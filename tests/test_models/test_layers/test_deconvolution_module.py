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


@pytest.mark.parametrize('fusion, beta', [('prod', 1.0), ('sum', 0.0)])
def test_neutral_init_starts_as_the_lateral_branch(fusion, beta):
    """Fresh from init_weights, the top-down BN is (gamma 0.1, beta 1) for
    the product and (0.1, 0) for the sum, so the module's output is
    ReLU(lateral branch) up to a 10% perturbation -- and the plain-BN init
    is not (its product is lateral times zero-mean noise)."""
    torch.manual_seed(0)
    top, lat = torch.randn(4, 6, 5, 5), torch.randn(4, 4, 10, 10)
    dm = DeconvolutionModule(6, 4, 16, 2, 2, fusion=fusion)
    dm.init_weights()
    norm = dm.top_conv.norm
    assert torch.all(norm.weight == 0.1) and torch.all(norm.bias == beta)
    dm.train()
    t = dm.top_conv(dm.upsample(top, (10, 10)))
    assert abs(t.mean().item() - beta) < 0.01
    assert abs(t.std().item() - 0.1) < 0.01
    ref = torch.relu(dm.lateral_convs(lat))
    err = (dm(top, lat) - ref).norm() / ref.norm()
    assert err < 0.15

    plain = DeconvolutionModule(6, 4, 16, 2, 2, fusion=fusion,
                                fusion_init='bn')
    plain.init_weights()
    assert torch.all(plain.top_conv.norm.weight == 1)
    assert torch.all(plain.top_conv.norm.bias == 0)
    plain.train()
    ref = torch.relu(plain.lateral_convs(lat))
    assert (plain(top, lat) - ref).norm() / ref.norm() > 0.5


def test_neutral_init_survives_the_neck_init_cfg():
    """The neck's Xavier/Constant init_cfg runs first; the DM's own init
    must still win (MMEngine initialises children after the parent)."""
    from mmdssd.models.necks import DSSDNeck
    neck = DSSDNeck(
        in_channels=(8, 16), extra_mid_channels=4, extra_out_channels=12,
        deconv_channels=8, top_scale=0.25)
    neck.init_weights()
    for dm in neck.deconv_modules:
        assert torch.all(dm.top_conv.norm.weight == 0.25)
        assert torch.all(dm.top_conv.norm.bias == 1)
        assert torch.all(dm.lateral_convs[1].norm.weight == 1)


def test_bad_fusion_init_names_the_value():
    with pytest.raises(ValueError, match="fusion_init.*'gate'"):
        DeconvolutionModule(6, 4, 8, fusion_init='gate')
    dm = DeconvolutionModule(6, 4, 8, norm_cfg=dict(type='BN', affine=False))
    with pytest.raises(ValueError, match='affine'):
        dm.init_weights()
