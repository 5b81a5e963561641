from .hooks import FreezeNormHook, FuseConvBNHook, ProgressHook

__all__ = ['FreezeNormHook', 'FuseConvBNHook', 'ProgressHook']
