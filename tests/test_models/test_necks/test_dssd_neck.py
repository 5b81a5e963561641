import pytest
import torch
from mmdet.registry import MODELS

from mmdssd.models.necks import DSSDNeck

SMALL = dict(
    in_channels=(8, 16),
    extra_mid_channels=4,
    extra_out_channels=12,
    deconv_channels=8)


def _inputs(size, in_channels=(8, 16)):
    h, w = size if isinstance(size, tuple) else (size, size)
    s8 = ((h + 7) // 8, (w + 7) // 8)
    s16 = ((h + 15) // 16, (w + 15) // 16)
    return [torch.rand(1, in_channels[0], *s8),
            torch.rand(1, in_channels[1], *s16)]


def test_paper_pyramids():
    neck = DSSDNeck(**SMALL).eval()
    outs = neck(_inputs(320))
    assert [o.shape[-1] for o in outs] == [40, 20, 10, 5, 3, 1]
    assert [o.shape[1] for o in outs] == [8, 8, 8, 8, 8, 12]
    assert neck.out_channels == (8, 8, 8, 8, 8, 12)
    neck513 = DSSDNeck(extra_blocks=((2, 2), ) * 5, **SMALL).eval()
    outs = neck513(_inputs(512))
    assert [o.shape[-1] for o in outs] == [64, 32, 16, 8, 4, 2, 1]


@pytest.mark.parametrize('size', [321, 513, 64, 100, (200, 320), (96, 300)])
@pytest.mark.parametrize('blocks', [((2, 2), (2, 2), (3, 1), (3, 1)),
                                    ((2, 2), ) * 5])
def test_any_size_lands_on_lateral_maps(size, blocks):
    neck = DSSDNeck(extra_blocks=blocks, **SMALL).eval()
    inputs = _inputs(size)
    with torch.no_grad():
        outs = neck(inputs)
        plain = DSSDNeck(extra_blocks=blocks, use_deconv=False, **SMALL)
        plain.eval()
        ref = plain(inputs)
    assert len(outs) == len(ref) == 2 + len(blocks)
    for out, r in zip(outs, ref):
        assert out.shape[-2:] == r.shape[-2:]
        assert min(out.shape[-2:]) >= 1


def test_odd_sizes_use_output_padding():
    neck = DSSDNeck(**SMALL).eval()
    inputs = _inputs(321)  # 41 and 21: 10 -> 21 needs an output padding
    assert inputs[1].shape[-1] == 21
    outs = neck(inputs)
    assert outs[0].shape[-1] == 41 and outs[1].shape[-1] == 21


def test_prod_and_sum_differ():
    torch.manual_seed(0)
    prod = DSSDNeck(fusion='prod', **SMALL)
    summ = DSSDNeck(fusion='sum', **SMALL)
    summ.load_state_dict(prod.state_dict())
    prod.eval()
    summ.eval()
    inputs = _inputs(320)
    a, b = prod(inputs), summ(inputs)
    assert torch.equal(a[-1], b[-1])  # the top map predicts directly
    assert not torch.allclose(a[0], b[0])


def test_baseline_switch_and_registry():
    neck = MODELS.build(dict(type='DSSDNeck', use_deconv=False, **SMALL))
    assert len(neck.deconv_modules) == 0
    outs = neck.eval()(_inputs(320))
    assert [o.shape[1] for o in outs] == [8, 16, 12, 12, 12, 12]


def test_norm_cfg_is_one_line():
    neck = DSSDNeck(norm_cfg=dict(type='GN', num_groups=4), **SMALL)
    assert any(isinstance(m, torch.nn.GroupNorm) for m in neck.modules())
    assert not any(
        isinstance(m, torch.nn.BatchNorm2d) for m in neck.modules())


def test_frozen_extra_layers_stay_in_eval():
    neck = DSSDNeck(freeze_extra_layers=True, **SMALL)
    neck.train()
    assert not neck.extra_layers.training
    assert all(not p.requires_grad for p in neck.extra_layers.parameters())
    assert all(p.requires_grad for p in neck.deconv_modules.parameters())


def test_bad_arguments():
    with pytest.raises(ValueError, match='fusion'):
        DSSDNeck(fusion='max', **SMALL)
    with pytest.raises(ValueError, match='deconv_kernel_strides needs 5'):
        DSSDNeck(deconv_kernel_strides=((2, 2), ), **SMALL)
    with pytest.raises(ValueError, match='expects 2 backbone maps'):
        DSSDNeck(**SMALL)(_inputs(320)[:1])
