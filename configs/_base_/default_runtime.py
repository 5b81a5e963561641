_base_ = 'mmdet::_base_/default_runtime.py'
# AtomicCheckpointHook: MMEngine's CheckpointHook (same arguments) whose
# writes a kill or a full disk cannot leave half done
# ClassNameCheckHook: an annotation naming a class that is not in classes
# stops training (MMDetection drops such objects silently);
# default_hooks.class_names.allow_unknown=True trains without them
default_hooks = dict(
    checkpoint=dict(type='AtomicCheckpointHook', interval=10,
                    max_keep_ckpts=3, save_best='auto'),
    class_names=dict(type='ClassNameCheckHook'))
# StopOnInvalidLossHook: stops at the first NaN/inf loss, naming the
# iteration and the last checkpoint (MMDetection's check runs every 50)
custom_hooks = [dict(type='NumClassCheckHook'),
                dict(type='StopOnInvalidLossHook', priority='VERY_LOW'),
                # random states in checkpoints: --resume replays the run
                dict(type='RngStateHook')]
