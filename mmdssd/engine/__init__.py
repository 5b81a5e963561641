from .checkpoint import (CheckpointError, check_checkpoint_fits,
                         find_resumable_checkpoint, load_checked_checkpoint)
from .optimizers import (CPUAmpOptimWrapper, UnsupportedCPUPrecisionError,
                         choose_training_precision, cpu_bf16_support,
                         with_cpu_amp)
from .hooks import (AtomicCheckpointHook, ChannelsLastHook,
                    ClassNameCheckHook, FreezeNormHook, FuseConvBNHook,
                    InvalidLossError, MetricTimelineHook, ProgressHook,
                    RngStateHook,
                    StopOnInvalidLossHook, UnknownClassError,
                    find_unknown_classes, use_atomic_checkpoints)
from .time_budget import (TimeBudgetHook, fit_iterations, measure_step_times,
                          measure_step_times_in_turns)

__all__ = [
    'CPUAmpOptimWrapper', 'UnsupportedCPUPrecisionError', 'cpu_bf16_support',
    'choose_training_precision', 'with_cpu_amp',
    'AtomicCheckpointHook', 'ChannelsLastHook', 'CheckpointError',
    'ClassNameCheckHook', 'FreezeNormHook', 'FuseConvBNHook',
    'InvalidLossError', 'MetricTimelineHook', 'ProgressHook', 'RngStateHook',
    'StopOnInvalidLossHook', 'TimeBudgetHook', 'UnknownClassError',
    'check_checkpoint_fits', 'find_resumable_checkpoint',
    'find_unknown_classes', 'load_checked_checkpoint',
    'fit_iterations', 'measure_step_times', 'measure_step_times_in_turns',
    'use_atomic_checkpoints'
]
