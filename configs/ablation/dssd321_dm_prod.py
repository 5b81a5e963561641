# Paper ablation row: SSD321 + PM(c) + DM, element-wise product (78.6 mAP)
# -- dssd_r101_voc.py as is.
_base_ = '../dssd_r101_voc.py'
model = dict(neck=dict(fusion='prod'))
