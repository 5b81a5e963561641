"""DSSD neck: ResNet SSD extra layers + the deconvolution module path."""
from typing import List, Optional, Sequence, Tuple

import torch.nn as nn
from mmdet.registry import MODELS
from mmdet.utils import ConfigType, OptConfigType, OptMultiConfig
from mmengine.model import BaseModule
from torch import Tensor

from ..layers import DeconvolutionModule, ExtraResBlock

KernelStride = Tuple[int, int]


@MODELS.register_module()
class DSSDNeck(BaseModule):
    """SSD extra layers over a ResNet, then DSSD's top-down deconvolution.

    The backbone gives the first maps (conv3_x at stride 8 and conv5_x,
    dilated, at stride 16 for ResNet-101). Each extra block
    (:class:`ExtraResBlock`, a 256/256/1024 bottleneck with projection)
    shrinks the last map: with the 321 setting ``((2, 2), (2, 2), (3, 1),
    (3, 1))`` an input of 320 gives 40, 20, 10, 5, 3, 1; the 513 setting
    (five ``(2, 2)`` blocks) turns 512 into 64, 32, 16, 8, 4, 2, 1.

    With ``use_deconv=True`` a :class:`DeconvolutionModule` walks back from
    the smallest map: the top map predicts directly and every finer level
    ``i`` becomes ``DM(level i+1 output, level i)``, all of
    ``deconv_channels`` channels. With ``use_deconv=False`` the neck is the
    plain SSD321/SSD513 baseline.

    Args:
        in_channels (Sequence[int]): Channels of the backbone outputs, e.g.
            ``(512, 2048)`` for ResNet-101 conv3_x / conv5_x.
        extra_blocks (Sequence[tuple[int, int]]): ``(kernel, stride)`` of
            each extra block. Defaults to the 321 setting.
        extra_mid_channels (int): Bottleneck width of the extra blocks.
            Defaults to 256.
        extra_out_channels (int): Output width of the extra blocks.
            Defaults to 1024.
        use_deconv (bool): Build the deconvolution module path. Defaults to
            True.
        deconv_channels (int): Width of the deconvolution modules. Defaults
            to 512.
        fusion (str): ``'prod'`` or ``'sum'``. Defaults to ``'prod'``.
        fusion_init (str): How each module's fusion starts: ``'neutral'``
            (the top-down branch starts as a gate near 1 for the product,
            an addend near 0 for the sum) or ``'bn'`` (plain BN init); see
            :class:`DeconvolutionModule`. Defaults to ``'neutral'``.
        top_scale (float): Initial gamma of the top-down branch's BN with
            ``fusion_init='neutral'``. Defaults to 0.1.
        freeze_extra_layers (bool): Freeze the extra blocks (no gradient,
            BN in eval mode), for DSSD's stage-1 recipe. Defaults to False.
        deconv_kernel_strides (Sequence[tuple[int, int]], optional):
            ``(kernel, stride)`` of the transposed conv into level ``i``
            from level ``i + 1``, for ``i = 0..L-2``. Defaults to the extra
            block that made level ``i + 1`` (``(2, 2)`` between backbone
            levels).
        conv_cfg (dict, optional): Convolution config. Defaults to None.
        norm_cfg (dict): Norm config (``SyncBN``, ``GN``, frozen BN are one
            line). Defaults to ``SafeBN`` (BN that also trains on a batch
            of one image, which gives the 1x1 levels one value per channel).
        act_cfg (dict): Activation config. Defaults to ReLU.
        init_cfg (dict or list[dict], optional): Initialization config.
            Defaults to Xavier for (transposed) convs and 1 for BN.
    """

    def __init__(self,
                 in_channels: Sequence[int] = (512, 2048),
                 extra_blocks: Sequence[KernelStride] = ((2, 2), (2, 2),
                                                         (3, 1), (3, 1)),
                 extra_mid_channels: int = 256,
                 extra_out_channels: int = 1024,
                 use_deconv: bool = True,
                 deconv_channels: int = 512,
                 fusion: str = 'prod',
                 fusion_init: str = 'neutral',
                 top_scale: float = 0.1,
                 freeze_extra_layers: bool = False,
                 deconv_kernel_strides: Optional[
                     Sequence[KernelStride]] = None,
                 conv_cfg: OptConfigType = None,
                 norm_cfg: ConfigType = dict(type='SafeBN'),
                 act_cfg: ConfigType = dict(type='ReLU'),
                 init_cfg: OptMultiConfig = [
                     dict(
                         type='Xavier',
                         distribution='uniform',
                         layer=['Conv2d', 'ConvTranspose2d']),
                     dict(type='Constant', val=1, layer='_BatchNorm'),
                 ]) -> None:
        super().__init__(init_cfg)
        if len(in_channels) == 0:
            raise ValueError('in_channels must list the backbone outputs')
        self.in_channels = tuple(in_channels)
        self.use_deconv = use_deconv
        self.freeze_extra_layers = freeze_extra_layers
        common = dict(conv_cfg=conv_cfg, norm_cfg=norm_cfg, act_cfg=act_cfg)

        self.extra_layers = nn.ModuleList()
        level_channels: List[int] = list(in_channels)
        for kernel, stride in extra_blocks:
            self.extra_layers.append(
                ExtraResBlock(level_channels[-1], extra_mid_channels,
                              extra_out_channels, kernel, stride, **common))
            level_channels.append(extra_out_channels)
        self.deconv_modules = nn.ModuleList()
        self.out_channels = tuple(level_channels)
        if use_deconv and len(level_channels) > 1:
            if deconv_kernel_strides is None:
                deconv_kernel_strides = [(2, 2)] * (len(in_channels) - 1) + [
                    tuple(ks) for ks in extra_blocks
                ]
            self._build_deconv_modules(
                level_channels, deconv_channels, deconv_kernel_strides,
                dict(fusion=fusion, fusion_init=fusion_init,
                     top_scale=top_scale, **common))
        if freeze_extra_layers:
            self.extra_layers.requires_grad_(False)

    def _build_deconv_modules(self, level_channels: List[int],
                              channels: int,
                              kernel_strides: Sequence[KernelStride],
                              module_cfg: dict) -> None:
        """One deconvolution module per level below the top, built
        bottom-up so that ``deconv_modules[i]`` produces level ``i``."""
        num_levels = len(level_channels)
        if len(kernel_strides) != num_levels - 1:
            raise ValueError(
                f'deconv_kernel_strides needs {num_levels - 1} entries '
                f'(one per level below the top), got {len(kernel_strides)}')
        top = level_channels[-1]
        tops = [channels] * (num_levels - 2) + [top]
        for i in range(num_levels - 1):
            kernel, stride = kernel_strides[i]
            self.deconv_modules.append(
                DeconvolutionModule(tops[i], level_channels[i], channels,
                                    kernel, stride, **module_cfg))
        self.out_channels = tuple([channels] * (num_levels - 1) + [top])

    def init_weights(self) -> None:
        """``init_cfg``, then each deconvolution module's fusion start
        (the modules sit in a plain ``ModuleList``, which MMEngine's
        recursive ``init_weights`` does not enter)."""
        super().init_weights()
        for module in self.deconv_modules:
            module.init_fusion()

    def train(self, mode: bool = True) -> 'DSSDNeck':
        """Keep frozen extra layers (and their BN statistics) in eval."""
        super().train(mode)
        if self.freeze_extra_layers:
            self.extra_layers.eval()
        return self

    def forward(self, inputs: Sequence[Tensor]) -> Tuple[Tensor, ...]:
        """Forward the backbone maps (finest first) to all levels."""
        if len(inputs) != len(self.in_channels):
            raise ValueError(f'DSSDNeck expects {len(self.in_channels)} '
                             f'backbone maps, got {len(inputs)}')
        feats = list(inputs)
        for layer in self.extra_layers:
            feats.append(layer(feats[-1]))
        if not self.deconv_modules:
            return tuple(feats)
        outs = feats[-1:]
        for i in reversed(range(len(feats) - 1)):
            outs.insert(0, self.deconv_modules[i](outs[0], feats[i]))
        return tuple(outs)
