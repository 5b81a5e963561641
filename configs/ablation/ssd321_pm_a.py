# Paper ablation row: SSD321, plain prediction layer, PM(a) (76.4 mAP).
_base_ = '../ssd321_r101_voc.py'
model = dict(bbox_head=dict(prediction_module='a'))
