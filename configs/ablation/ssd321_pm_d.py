# Paper ablation row: SSD321 + PM(d), two (c) blocks (77.0 mAP).
_base_ = '../ssd321_r101_voc.py'
model = dict(bbox_head=dict(prediction_module='d'))
