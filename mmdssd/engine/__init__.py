from .hooks import (ChannelsLastHook, FreezeNormHook, FuseConvBNHook,
                    InvalidLossError, ProgressHook, RngStateHook,
                    StopOnInvalidLossHook)

__all__ = [
    'ChannelsLastHook', 'FreezeNormHook', 'FuseConvBNHook',
    'InvalidLossError', 'ProgressHook', 'RngStateHook',
    'StopOnInvalidLossHook'
]
