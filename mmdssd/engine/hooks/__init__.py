from .atomic_checkpoint_hook import (AtomicCheckpointHook,
                                     use_atomic_checkpoints)
from .channels_last_hook import ChannelsLastHook
from .class_name_check_hook import (ClassNameCheckHook, UnknownClassError,
                                    find_unknown_classes)
from .freeze_norm_hook import FreezeNormHook
from .fuse_conv_bn_hook import FuseConvBNHook
from .invalid_loss_hook import InvalidLossError, StopOnInvalidLossHook
from .metric_timeline_hook import MetricTimelineHook
from .progress_hook import ProgressHook
from .rng_state_hook import RngStateHook

__all__ = [
    'AtomicCheckpointHook', 'ChannelsLastHook', 'ClassNameCheckHook',
    'FreezeNormHook', 'FuseConvBNHook', 'InvalidLossError',
    'MetricTimelineHook', 'ProgressHook',
    'RngStateHook', 'StopOnInvalidLossHook',
    'UnknownClassError', 'find_unknown_classes', 'use_atomic_checkpoints'
]
