# Multi-GPU DSSD321 with SyncBN in the new modules (the 513 models needed
# >= 5 images per GPU for plain BN). Train with --launcher pytorch.
_base_ = './dssd_r101_voc.py'
norm_cfg = dict(type='SyncBN', requires_grad=True)
model = dict(neck=dict(norm_cfg=norm_cfg), bbox_head=dict(norm_cfg=norm_cfg))
