# The SSD baseline of dssd_tiny_synthetic.py: deconvolution module off.
_base_ = './dssd_tiny_synthetic.py'
model = dict(
    neck=dict(use_deconv=False),
    bbox_head=dict(in_channels=(64, 256, 256, 256, 256, 256)))
