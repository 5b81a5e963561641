"""SSD extra layers of DSSD's ResNet-101: bottleneck residual blocks."""

import torch.nn.functional as F
from mmcv.cnn import ConvModule, build_activation_layer
from mmdet.utils import ConfigType, OptConfigType, OptMultiConfig
from mmengine.model import BaseModule
from torch import Tensor


class ExtraResBlock(BaseModule):
    """A bottleneck residual block that shrinks a feature map.

    ``1x1 mid -> kxk mid (stride s, no padding) -> 1x1 out`` with a
    projection shortcut ``kxk out (stride s)``, add, activation. The 321
    configuration uses ``k=2, s=2`` to halve (20 -> 10 -> 5) and ``k=3,
    s=1`` to shrink by two (5 -> 3 -> 1), as in the DSSD paper.

    A map smaller than the kernel is zero-padded up to the kernel first, so
    any input size gives a valid (at least 1x1) output instead of an error.

    Args:
        in_channels (int): Input channels.
        mid_channels (int): Bottleneck channels (256 in the paper).
        out_channels (int): Output channels (1024 in the paper).
        kernel_size (int): Kernel of the shrinking convolutions.
        stride (int): Their stride.
        conv_cfg (dict, optional): Convolution config. Defaults to None.
        norm_cfg (dict): Norm config. Defaults to BN.
        act_cfg (dict): Activation config. Defaults to ReLU.
        init_cfg (dict or list[dict], optional): Initialization config.
    """

    def __init__(self,
                 in_channels: int,
                 mid_channels: int,
                 out_channels: int,
                 kernel_size: int = 2,
                 stride: int = 2,
                 conv_cfg: OptConfigType = None,
                 norm_cfg: ConfigType = dict(type='BN'),
                 act_cfg: ConfigType = dict(type='ReLU'),
                 init_cfg: OptMultiConfig = None) -> None:
        super().__init__(init_cfg)
        self.kernel_size = kernel_size
        common = dict(conv_cfg=conv_cfg, norm_cfg=norm_cfg)
        self.conv1 = ConvModule(
            in_channels, mid_channels, 1, act_cfg=act_cfg, **common)
        self.conv2 = ConvModule(
            mid_channels,
            mid_channels,
            kernel_size,
            stride=stride,
            act_cfg=act_cfg,
            **common)
        self.conv3 = ConvModule(
            mid_channels, out_channels, 1, act_cfg=None, **common)
        self.shortcut = ConvModule(
            in_channels,
            out_channels,
            kernel_size,
            stride=stride,
            act_cfg=None,
            **common)
        self.act = build_activation_layer(act_cfg)

    def _pad_to_kernel(self, x: Tensor) -> Tensor:
        h, w = x.shape[-2:]
        k = self.kernel_size
        if h >= k and w >= k:
            return x
        return F.pad(x, (0, max(k - w, 0), 0, max(k - h, 0)))

    def forward(self, x: Tensor) -> Tensor:
        x = self._pad_to_kernel(x)
        out = self.conv3(self.conv2(self.conv1(x)))
        return self.act(out + self.shortcut(x))
