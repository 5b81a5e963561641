"""DSSD's deconvolution module (DM, Fu et al. 2017, figure 3)."""
from typing import Tuple

import torch.nn as nn
import torch.nn.functional as F
from mmcv.cnn import ConvModule, build_activation_layer
from mmdet.utils import ConfigType, OptConfigType, OptMultiConfig
from mmengine.model import BaseModule
from torch import Tensor

FUSIONS = ('prod', 'sum')
FUSION_INITS = ('neutral', 'bn')


def match_size(x: Tensor, size: Tuple[int, int]) -> Tensor:
    """Centre-crop or zero-pad ``x`` to spatial ``size``."""
    h, w = x.shape[-2:]
    th, tw = size
    if (h, w) == (th, tw):
        return x
    top, left = (h - th) // 2, (w - tw) // 2
    if h >= th and w >= tw:
        return x[..., top:top + th, left:left + tw]
    pad_h, pad_w = max(th - h, 0), max(tw - w, 0)
    x = F.pad(x, (pad_w // 2, pad_w - pad_w // 2, pad_h // 2,
                  pad_h - pad_h // 2))
    return match_size(x, size)


class DeconvolutionModule(BaseModule):
    """Fuse a coarse (top-down) map into a finer (lateral) one.

    Top-down path: transposed conv (no BN) -> conv 3x3 -> BN. Lateral path:
    conv 3x3 -> BN -> ReLU -> conv 3x3 -> BN. The two are fused by an
    element-wise product (the paper's best, 78.6 mAP) or sum (78.4), then
    ReLU.

    How the module starts matters more than its wiring. With
    plain BN initialisation (``fusion_init='bn'``: gamma 1, beta 0) both
    branches end in zero-mean, unit-variance maps, so the product
    multiplies the lateral features by random-sign noise and gradients
    from one batch to the next barely agree: from random init the product
    DM learns almost nothing. ``fusion_init=
    'neutral'`` (the default) starts the top-down branch's BN at gamma
    ``top_scale`` and beta 1 for the product (a gate near 1) or beta 0 for
    the sum (an addend near 0), so the module starts as
    ``ReLU(lateral branch)`` -- an SSD level passed through a residual-free
    conv pair -- and learns the top-down context from there. The BN of the
    top-down branch keeps learning both parameters; nothing else changes.

    The transposed convolution always lands on the lateral map's size: when
    the size is reachable with an output padding (e.g. 10 -> 21 with kernel
    2, stride 2) that is used; otherwise (maps that were padded up to a
    kernel on the way down) the output is centre-cropped or padded.

    Args:
        top_channels (int): Channels of the coarser input.
        lateral_channels (int): Channels of the finer input.
        out_channels (int): Channels of the module (512 in the paper).
        deconv_kernel (int): Kernel of the transposed conv.
        deconv_stride (int): Stride of the transposed conv.
        fusion (str): ``'prod'`` or ``'sum'``. Defaults to ``'prod'``.
        fusion_init (str): ``'neutral'`` or ``'bn'``, see above. Defaults
            to ``'neutral'``.
        top_scale (float): Initial gamma of the top-down branch's BN with
            ``fusion_init='neutral'``. Defaults to 0.1.
        conv_cfg (dict, optional): Convolution config. Defaults to None.
        norm_cfg (dict): Norm config. Defaults to BN.
        act_cfg (dict): Activation config. Defaults to ReLU.
        init_cfg (dict or list[dict], optional): Initialization config.
    """

    def __init__(self,
                 top_channels: int,
                 lateral_channels: int,
                 out_channels: int = 512,
                 deconv_kernel: int = 2,
                 deconv_stride: int = 2,
                 fusion: str = 'prod',
                 fusion_init: str = 'neutral',
                 top_scale: float = 0.1,
                 conv_cfg: OptConfigType = None,
                 norm_cfg: ConfigType = dict(type='BN'),
                 act_cfg: ConfigType = dict(type='ReLU'),
                 init_cfg: OptMultiConfig = None) -> None:
        super().__init__(init_cfg)
        if fusion not in FUSIONS:
            raise ValueError(
                f'fusion must be one of {FUSIONS}, got {fusion!r}')
        if fusion_init not in FUSION_INITS:
            raise ValueError(f'fusion_init must be one of {FUSION_INITS}, '
                             f'got {fusion_init!r}')
        self.fusion = fusion
        self.fusion_init = fusion_init
        self.top_scale = top_scale
        self.deconv = nn.ConvTranspose2d(
            top_channels,
            out_channels,
            deconv_kernel,
            stride=deconv_stride)
        common = dict(conv_cfg=conv_cfg, norm_cfg=norm_cfg)
        self.top_conv = ConvModule(
            out_channels, out_channels, 3, padding=1, act_cfg=None, **common)
        self.lateral_convs = nn.Sequential(
            ConvModule(
                lateral_channels,
                out_channels,
                3,
                padding=1,
                act_cfg=act_cfg,
                **common),
            ConvModule(
                out_channels,
                out_channels,
                3,
                padding=1,
                act_cfg=None,
                **common))
        self.act = build_activation_layer(act_cfg)

    def init_weights(self) -> None:
        """Initialise as configured, then :meth:`init_fusion`."""
        super().init_weights()
        self.init_fusion()

    def init_fusion(self) -> None:
        """Set the top-down branch's BN as ``fusion_init`` says.

        Must run after every other initialisation of the module (the
        parent's ``init_cfg`` sets all BN to gamma 1, beta 0);
        :class:`DSSDNeck` calls it at the end of its ``init_weights``.
        """
        norm = self.top_conv.norm
        if self.fusion_init == 'neutral' and norm is not None:
            if getattr(norm, 'weight', None) is None:
                raise ValueError("fusion_init='neutral' needs an affine norm "
                                 f'layer in top_conv, got {norm}')
            nn.init.constant_(norm.weight, self.top_scale)
            nn.init.constant_(norm.bias,
                              1.0 if self.fusion == 'prod' else 0.0)

    def upsample(self, top: Tensor, size: Tuple[int, int]) -> Tensor:
        """Transposed conv of ``top`` landing exactly on ``size``."""
        (kh, kw), (sh, sw) = self.deconv.kernel_size, self.deconv.stride
        h, w = top.shape[-2:]
        natural = ((h - 1) * sh + kh, (w - 1) * sw + kw)
        reachable = all(n <= t < n + s
                        for n, t, s in zip(natural, size, (sh, sw)))
        if reachable:
            return self.deconv(top, output_size=list(size))
        return match_size(self.deconv(top), size)

    def forward(self, top: Tensor, lateral: Tensor) -> Tensor:
        """Fuse ``top`` (coarser) into ``lateral`` (finer)."""
        top = self.top_conv(self.upsample(top, lateral.shape[-2:]))
        lateral = self.lateral_convs(lateral)
        fused = top * lateral if self.fusion == 'prod' else top + lateral
        return self.act(fused)
