_base_ = 'mmdet::_base_/default_runtime.py'
default_hooks = dict(checkpoint=dict(type='CheckpointHook', interval=10,
                                     max_keep_ckpts=3, save_best='auto'))
# StopOnInvalidLossHook: stops at the first NaN/inf loss, naming the
# iteration and the last checkpoint (MMDetection's check runs every 50)
custom_hooks = [dict(type='NumClassCheckHook'),
                dict(type='StopOnInvalidLossHook', priority='VERY_LOW'),
                # random states in checkpoints: --resume replays the run
                dict(type='RngStateHook')]
