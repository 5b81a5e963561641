_base_ = 'mmdet::_base_/default_runtime.py'
default_hooks = dict(checkpoint=dict(type='CheckpointHook', interval=10,
                                     max_keep_ckpts=3, save_best='auto'))
custom_hooks = [dict(type='NumClassCheckHook'),
                dict(type='CheckInvalidLossHook', interval=50,
                     priority='VERY_LOW')]
