from .hooks import (FreezeNormHook, FuseConvBNHook, InvalidLossError,
                    ProgressHook, StopOnInvalidLossHook)

__all__ = [
    'FreezeNormHook', 'FuseConvBNHook', 'InvalidLossError', 'ProgressHook',
    'StopOnInvalidLossHook'
]
