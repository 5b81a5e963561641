# Paper ablation row: SSD321 + PM(c) (77.1 mAP) -- ssd321_r101_voc.py as is.
_base_ = '../ssd321_r101_voc.py'
model = dict(bbox_head=dict(prediction_module='c'))
