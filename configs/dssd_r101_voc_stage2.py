# Optional stage 2: unfreeze everything but BN, lr 1e-4, 40k iterations
# (~77 epochs). The paper found it helped only at 513. "All but BN": every
# BN layer (backbone, extra layers, DM, PM) keeps its statistics and affine
# parameters (FreezeNormHook); the convolutions train.
_base_ = './dssd_r101_voc_stage1.py'
load_from = 'work_dirs/dssd_r101_voc_stage1/epoch_58.pth'
model = dict(
    backbone=dict(frozen_stages=-1, norm_eval=True),
    neck=dict(freeze_extra_layers=False))
max_epochs = 77
train_cfg = dict(max_epochs=max_epochs)
optim_wrapper = dict(optimizer=dict(lr=1e-4))
param_scheduler = [
    dict(type='MultiStepLR', begin=0, end=max_epochs, by_epoch=True,
         milestones=[60], gamma=0.1)
]
custom_hooks = [
    dict(type='NumClassCheckHook'),
    dict(type='StopOnInvalidLossHook', priority='VERY_LOW'),
    dict(type='RngStateHook'),
    dict(type='FreezeNormHook')
]
