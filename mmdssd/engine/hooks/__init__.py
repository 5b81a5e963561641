from .freeze_norm_hook import FreezeNormHook
from .fuse_conv_bn_hook import FuseConvBNHook
from .progress_hook import ProgressHook

__all__ = ['FreezeNormHook', 'FuseConvBNHook', 'ProgressHook']
