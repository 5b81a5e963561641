from .checkpoint import (CheckpointError, check_checkpoint_fits,
                         find_resumable_checkpoint, load_checked_checkpoint)
from .hooks import (AtomicCheckpointHook, ChannelsLastHook,
                    ClassNameCheckHook, FreezeNormHook, FuseConvBNHook,
                    InvalidLossError, ProgressHook, RngStateHook,
                    StopOnInvalidLossHook, TimeBudgetHook, UnknownClassError,
                    find_unknown_classes, use_atomic_checkpoints)

__all__ = [
    'AtomicCheckpointHook', 'ChannelsLastHook', 'CheckpointError',
    'ClassNameCheckHook', 'FreezeNormHook', 'FuseConvBNHook',
    'InvalidLossError', 'ProgressHook', 'RngStateHook',
    'StopOnInvalidLossHook', 'TimeBudgetHook', 'UnknownClassError',
    'check_checkpoint_fits', 'find_resumable_checkpoint',
    'find_unknown_classes', 'load_checked_checkpoint',
    'use_atomic_checkpoints'
]
