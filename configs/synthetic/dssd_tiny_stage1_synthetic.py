# The paper's stage 1 at small scale: start from a trained SSD baseline
# (ssd_tiny_synthetic.py), freeze backbone + extra layers (BN in eval), and
# train the deconvolution module, prediction modules and predictors.
_base_ = './dssd_tiny_synthetic.py'
load_from = 'work_dirs/ssd_tiny_synthetic/epoch_12.pth'
model = dict(
    backbone=dict(frozen_stages=4, norm_eval=True),
    neck=dict(freeze_extra_layers=True))
