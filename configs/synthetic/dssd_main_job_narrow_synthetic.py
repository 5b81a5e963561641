# The main job's model at about half its step cost, for budgets that hold
# few iterations (tools/run_synthetic.py picks it where the main job's
# model fits too few; docs/en/results/main_job.md has the comparison):
# an eighth-width ResNet-18 (8 base channels), and half the deconvolution
# and prediction-module widths. Far from converged, a run gains more from
# the iterations the cheaper step buys than it loses in capacity.
_base_ = './dssd_main_job_synthetic.py'
model = dict(
    # its first downsampling (8 to 16 channels, 1x1, stride 2) as a
    # subsampling and a stride-1 convolution: the same function, but
    # oneDNN's AVX-512 fp32 weight-gradient kernel for the strided one
    # crashes on channels-last inputs this narrow
    backbone=dict(base_channels=8, conv_cfg=dict(type='SubsampleFirstConv')),
    neck=dict(in_channels=(16, 64), deconv_channels=32),
    bbox_head=dict(
        in_channels=(32, 32, 32, 32, 32, 256), pm_out_channels=64))
# twice the main job's lr for half its widths: under Adam a layer's
# update moves its output in proportion to its fan-in, so a narrower
# model takes a larger step for the same change (and learned more with it)
optim_wrapper = dict(optimizer=dict(lr=6e-3))
