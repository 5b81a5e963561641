from .hooks import (ChannelsLastHook, FreezeNormHook, FuseConvBNHook,
                    InvalidLossError, ProgressHook, StopOnInvalidLossHook)

__all__ = [
    'ChannelsLastHook', 'FreezeNormHook', 'FuseConvBNHook',
    'InvalidLossError', 'ProgressHook', 'StopOnInvalidLossHook'
]
