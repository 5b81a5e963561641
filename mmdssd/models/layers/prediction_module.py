"""DSSD's prediction modules (a)-(d) (Fu et al. 2017, figure 2)."""
import torch.nn as nn
from mmcv.cnn import ConvModule, build_activation_layer
from mmdet.utils import ConfigType, OptConfigType, OptMultiConfig
from mmengine.model import BaseModule
from torch import Tensor

VARIANTS = ('a', 'b', 'c', 'd')


class ResidualUnit(BaseModule):
    """``1x1 mid -> 3x3 mid -> 1x1 out`` plus a skip, add, activation.

    The skip is the identity (PM (b), ``out == in``) or a 1x1 conv + BN
    projection (PM (c)). The paper's figure draws the middle conv 1x1; the
    authors' code uses 3x3, which we follow.

    Args:
        in_channels (int): Input channels.
        mid_channels (int): Bottleneck channels.
        out_channels (int): Output channels.
        projection (bool): Use a 1x1 conv + BN skip instead of identity.
        conv_cfg (dict, optional): Convolution config.
        norm_cfg (dict): Norm config.
        act_cfg (dict): Activation config.
        init_cfg (dict or list[dict], optional): Initialization config.
    """

    def __init__(self,
                 in_channels: int,
                 mid_channels: int,
                 out_channels: int,
                 projection: bool,
                 conv_cfg: OptConfigType = None,
                 norm_cfg: ConfigType = dict(type='BN'),
                 act_cfg: ConfigType = dict(type='ReLU'),
                 init_cfg: OptMultiConfig = None) -> None:
        super().__init__(init_cfg)
        if not projection and in_channels != out_channels:
            raise ValueError('an identity skip needs in_channels == '
                             f'out_channels, got {in_channels} and '
                             f'{out_channels}')
        common = dict(conv_cfg=conv_cfg, norm_cfg=norm_cfg)
        self.convs = nn.Sequential(
            ConvModule(in_channels, mid_channels, 1, act_cfg=act_cfg,
                       **common),
            ConvModule(
                mid_channels,
                mid_channels,
                3,
                padding=1,
                act_cfg=act_cfg,
                **common),
            ConvModule(mid_channels, out_channels, 1, act_cfg=None,
                       **common))
        self.skip = ConvModule(
            in_channels, out_channels, 1, act_cfg=None, **
            common) if projection else nn.Identity()
        self.act = build_activation_layer(act_cfg)

    def forward(self, x: Tensor) -> Tensor:
        return self.act(self.convs(x) + self.skip(x))


class PredictionModule(BaseModule):
    """The per-level block between a feature map and its predictors.

    * ``'a'``: none (SSD's plain predictors);
    * ``'b'``: a residual unit with an identity skip (keeps ``in_channels``);
    * ``'c'``: a residual unit ``1x1 mid -> 3x3 mid -> 1x1 out`` with a 1x1
      projection skip (the paper's choice: 256 / 1024);
    * ``'d'``: two ``'c'`` units in cascade.

    Args:
        in_channels (int): Channels of the feature map.
        variant (str): ``'a'``, ``'b'``, ``'c'`` or ``'d'``.
        mid_channels (int): Bottleneck width. Defaults to 256.
        out_channels (int): Output width of (c)/(d). Defaults to 1024.
        conv_cfg (dict, optional): Convolution config. Defaults to None.
        norm_cfg (dict): Norm config. Defaults to BN.
        act_cfg (dict): Activation config. Defaults to ReLU.
        init_cfg (dict or list[dict], optional): Initialization config.
    """

    def __init__(self,
                 in_channels: int,
                 variant: str = 'c',
                 mid_channels: int = 256,
                 out_channels: int = 1024,
                 conv_cfg: OptConfigType = None,
                 norm_cfg: ConfigType = dict(type='BN'),
                 act_cfg: ConfigType = dict(type='ReLU'),
                 init_cfg: OptMultiConfig = None) -> None:
        super().__init__(init_cfg)
        if variant not in VARIANTS:
            raise ValueError(f'prediction module variant must be one of '
                             f'{VARIANTS}, got {variant!r}')
        self.variant = variant
        common = dict(
            mid_channels=mid_channels,
            conv_cfg=conv_cfg,
            norm_cfg=norm_cfg,
            act_cfg=act_cfg)
        if variant == 'a':
            self.out_channels = in_channels
            self.units = nn.Sequential()
        elif variant == 'b':
            self.out_channels = in_channels
            self.units = nn.Sequential(
                ResidualUnit(
                    in_channels, out_channels=in_channels, projection=False,
                    **common))
        else:
            self.out_channels = out_channels
            units = [
                ResidualUnit(
                    in_channels, out_channels=out_channels, projection=True,
                    **common)
            ]
            if variant == 'd':
                units.append(
                    ResidualUnit(
                        out_channels,
                        out_channels=out_channels,
                        projection=True,
                        **common))
            self.units = nn.Sequential(*units)

    def forward(self, x: Tensor) -> Tensor:
        return self.units(x)
