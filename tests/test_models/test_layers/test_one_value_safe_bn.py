import pytest
import torch
import torch.nn as nn
from mmcv.cnn import build_norm_layer

from mmdssd.models.layers import OneValueSafeBN


def test_one_image_on_a_1x1_map_trains_with_the_running_statistics():
    torch.manual_seed(0)
    bn = OneValueSafeBN(4)
    bn.running_mean.uniform_(-1, 1)
    bn.running_var.uniform_(0.5, 2)
    bn.weight.data.uniform_(0.5, 2)
    mean, var = bn.running_mean.clone(), bn.running_var.clone()
    x = torch.randn(1, 4, 1, 1)
    with pytest.raises(ValueError, match='more than 1 value'):
        nn.BatchNorm2d(4).train()(x)  # what it replaces
    out = bn.train()(x)
    assert torch.equal(bn.running_mean, mean)
    assert torch.equal(bn.running_var, var)
    assert torch.allclose(out, bn.eval()(x))
    bn.train()
    out.sum().backward()
    assert bn.weight.grad is not None and bn.weight.grad.abs().sum() > 0


def test_every_other_batch_is_plain_bn():
    torch.manual_seed(0)
    safe, plain = OneValueSafeBN(3), nn.BatchNorm2d(3)
    for x in (torch.randn(2, 3, 1, 1), torch.randn(1, 3, 2, 2)):
        assert torch.allclose(safe.train()(x), plain.train()(x))
        assert torch.allclose(safe.running_mean, plain.running_mean)


def test_builds_from_norm_cfg_with_bn_names():
    name, layer = build_norm_layer(dict(type='SafeBN'), 8)
    assert name == 'bn' and isinstance(layer, OneValueSafeBN)
    assert set(layer.state_dict()) == set(nn.BatchNorm2d(8).state_dict())
