from .fuse_bn import fuse_bn

__all__ = ['fuse_bn']
