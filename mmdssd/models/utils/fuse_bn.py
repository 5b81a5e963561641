"""Fold BatchNorm into the preceding (transposed) convolution."""
from typing import Union

import torch
import torch.nn as nn
from mmcv.cnn.utils.fuse_conv_bn import _fuse_conv_bn
from torch.nn.modules.batchnorm import _BatchNorm

Conv = Union[nn.Conv2d, nn.ConvTranspose2d]


def _bn_affine(bn: _BatchNorm):
    """``(scale, shift)`` of an eval-mode BN: ``y = scale * x + shift``."""
    weight = bn.weight if bn.affine else torch.ones_like(bn.running_var)
    bias = bn.bias if bn.affine else torch.zeros_like(bn.running_mean)
    scale = weight / torch.sqrt(bn.running_var + bn.eps)
    return scale, bias - bn.running_mean * scale


@torch.no_grad()
def _fuse(conv: Conv, bn: _BatchNorm) -> Conv:
    if isinstance(conv, nn.Conv2d) and bn.affine:
        return _fuse_conv_bn(conv, bn)  # MMCV's formula for plain convs
    scale, shift = _bn_affine(bn)
    if isinstance(conv, nn.ConvTranspose2d):
        # weight: (in, out / groups, kh, kw); output channel o of group g
        # sits at weight[g * in_g:(g + 1) * in_g, o - g * out_g]
        in_ch, out_g = conv.weight.shape[:2]
        groups = conv.groups
        w = conv.weight.view(groups, in_ch // groups, out_g, -1)
        w = w * scale.view(groups, 1, out_g, 1)
        conv.weight = nn.Parameter(w.view_as(conv.weight))
    else:
        conv.weight = nn.Parameter(conv.weight *
                                   scale.view(-1, 1, 1, 1))
    bias = conv.bias if conv.bias is not None else torch.zeros_like(shift)
    conv.bias = nn.Parameter(bias * scale + shift)
    return conv


def fuse_bn(model: nn.Module) -> nn.Module:
    """Fold every BatchNorm that directly follows a conv into that conv.

    Works through the backbone, extra layers, deconvolution modules and
    prediction modules (and any MMDetection model built from ``ConvModule``
    or ``nn.Sequential``-style conv/BN pairs). Plain convolutions use
    MMCV's ``_fuse_conv_bn``; transposed convolutions and non-affine BN,
    which MMCV's ``fuse_conv_bn`` does not handle, are folded here. The
    folded BN is replaced by ``nn.Identity``. For inference only.

    Args:
        model (nn.Module): Model in eval mode. Modified in place.

    Returns:
        nn.Module: The same model, folded.

    Raises:
        RuntimeError: If any module of ``model`` is in training mode (its
            BN would be using batch statistics, which folding cannot keep).
    """
    training = [name or '<model>' for name, m in model.named_modules()
                if m.training and isinstance(m, _BatchNorm)]
    if model.training or training:
        raise RuntimeError(
            'fuse_bn: the model is in training mode (e.g. '
            f'{(training or ["<model>"])[0]}); call model.eval() first, '
            'folding is for inference only')
    _fuse_children(model)
    return model


def _fuse_children(module: nn.Module) -> None:
    last_name = None
    for name, child in list(module.named_children()):
        if isinstance(child, _BatchNorm) and last_name is not None:
            module._modules[last_name] = _fuse(module._modules[last_name],
                                               child)
            module._modules[name] = nn.Identity()
            last_name = None
        elif isinstance(child, (nn.Conv2d, nn.ConvTranspose2d)):
            last_name = name
        else:
            last_name = None
            _fuse_children(child)
