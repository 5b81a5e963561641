# Small-scale ablation row: SSD (tiny) + PM(d).
_base_ = '../../synthetic/ssd_tiny_synthetic.py'
model = dict(bbox_head=dict(prediction_module='d'))
