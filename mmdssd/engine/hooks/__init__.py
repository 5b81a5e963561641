from .fuse_conv_bn_hook import FuseConvBNHook

__all__ = ['FuseConvBNHook']
