# Small-scale ablation row: SSD (tiny) + PM(a).
_base_ = '../../synthetic/ssd_tiny_synthetic.py'
model = dict(bbox_head=dict(prediction_module='a'))
