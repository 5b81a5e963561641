# The control of dssd_tiny_stage1_synthetic.py: the same SSD + PM(c) start
# with the same parts frozen (backbone and extra layers, BN in eval), so
# that a two-stage comparison can tell what the deconvolution module adds
# from what further training of the trunk adds. Only the prediction
# modules and predictors train.
_base_ = '../ablation/synthetic/ssd_tiny_pm_c_synthetic.py'
load_from = 'work_dirs/ssd_tiny_synthetic/epoch_30.pth'
model = dict(
    backbone=dict(frozen_stages=4, norm_eval=True),
    neck=dict(freeze_extra_layers=True))
