# Small-scale ablation row: + PM(c) + DM, element-wise product.
_base_ = '../../synthetic/dssd_tiny_synthetic.py'
model = dict(neck=dict(fusion='prod'))
