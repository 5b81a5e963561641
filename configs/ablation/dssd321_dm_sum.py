# Paper ablation row: SSD321 + PM(c) + DM, element-wise sum (78.4 mAP).
_base_ = '../dssd_r101_voc.py'
model = dict(neck=dict(fusion='sum'))
