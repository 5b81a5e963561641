from .hooks import (ChannelsLastHook, FreezeNormHook, FuseConvBNHook,
                    InvalidLossError, ProgressHook, RngStateHook,
                    StopOnInvalidLossHook, TimeBudgetHook)

__all__ = [
    'ChannelsLastHook', 'FreezeNormHook', 'FuseConvBNHook',
    'InvalidLossError', 'ProgressHook', 'RngStateHook',
    'StopOnInvalidLossHook', 'TimeBudgetHook'
]
