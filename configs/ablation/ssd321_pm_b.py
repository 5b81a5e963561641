# Paper ablation row: SSD321 + PM(b), identity-skip residual (76.9 mAP).
_base_ = '../ssd321_r101_voc.py'
model = dict(bbox_head=dict(prediction_module='b'))
