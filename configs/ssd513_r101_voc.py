# SSD513 baseline: DSSD513 without the deconvolution module (paper: 80.6).
_base_ = './dssd513_r101_voc.py'
model = dict(
    neck=dict(use_deconv=False),
    bbox_head=dict(in_channels=(512, 2048, 1024, 1024, 1024, 1024, 1024)))
