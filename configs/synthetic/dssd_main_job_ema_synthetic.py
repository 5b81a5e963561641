# Ablation of the main job: validate, test and save an exponential moving
# average of the weights (MMDetection's ExpMomentumEMA through MMEngine's
# EMAHook, buffers averaged too) instead of the trained weights. Measured
# against the main job at equal iterations and rejected: in a run this
# short the average lags a model that is still improving, and the cosine
# decay already ends on small steps (docs/en/results/main_job.md).
_base_ = './dssd_main_job_synthetic.py'
# the base runtime's hooks, restated because a list is replaced, not merged
custom_hooks = [
    dict(type='NumClassCheckHook'),
    dict(type='StopOnInvalidLossHook', priority='VERY_LOW'),
    dict(type='RngStateHook'),
    # an averaging window of ~500 iterations (1 / momentum), reached
    # within the first few hundred (gamma)
    dict(type='EMAHook', ema_type='ExpMomentumEMA', momentum=0.002,
         gamma=100, update_buffers=True, priority=49)
]
