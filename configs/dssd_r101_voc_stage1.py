# The paper's two-stage recipe, stage 1: start from a trained SSD321
# (ssd321_r101_voc.py), freeze backbone + extra layers (BN in eval) and
# train the deconvolution module, prediction modules and predictors:
# 30k iterations at batch 32 (~58 epochs of VOC07+12), lr x0.1 at 20k.
_base_ = './dssd_r101_voc.py'
load_from = 'work_dirs/ssd321_r101_voc/epoch_120.pth'
model = dict(
    backbone=dict(frozen_stages=4, norm_eval=True, init_cfg=None),
    neck=dict(freeze_extra_layers=True))
max_epochs = 58
train_cfg = dict(max_epochs=max_epochs)
param_scheduler = [
    dict(type='LinearLR', start_factor=0.001, by_epoch=False, begin=0,
         end=500),
    dict(type='MultiStepLR', begin=0, end=max_epochs, by_epoch=True,
         milestones=[39], gamma=0.1)
]
