# SSD321 baseline: same backbone, extra layers and PM(c) head, no
# deconvolution module (paper: 77.1 mAP).
_base_ = './dssd_r101_voc.py'
model = dict(
    neck=dict(use_deconv=False),
    bbox_head=dict(in_channels=(512, 2048, 1024, 1024, 1024, 1024)))
