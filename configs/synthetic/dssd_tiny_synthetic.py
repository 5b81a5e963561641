# DSSD321 scaled down for the embedded synthetic set and a 2-core CPU.
# Same components as dssd_r101_voc.py, including the paper's product fusion
# (the DM's neutral start, fusion_init='neutral', lets it learn from random
# init); changes only what must change: ResNet-18 at half width (random
# init, no download), 256 input, narrower extra/DM/PM widths, boxes for the
# synthetic object sizes, the data, and a minutes-long AdamW schedule.
_base_ = [
    '../_base_/models/dssd321_r101.py', '../_base_/datasets/synthetic.py',
    '../_base_/schedules/adamw_synthetic_30e.py',
    '../_base_/default_runtime.py'
]
input_size = 256
model = dict(
    backbone=dict(depth=18, base_channels=32, frozen_stages=-1,
                  norm_eval=False, init_cfg=None),
    neck=dict(
        in_channels=(64, 256),
        fusion='prod',
        extra_mid_channels=64,
        extra_out_channels=256,
        deconv_channels=128),
    bbox_head=dict(
        num_classes=5,  # the synthetic classes
        in_channels=(128, 128, 128, 128, 128, 256),
        pm_mid_channels=64,
        pm_out_channels=256,
        pred_kernel_size=3,
        anchor_generator=dict(
            input_size=input_size,
            strides=[8, 16, 32, 64, 128, 256],
            s_min=0.12,
            s_max=0.9,
            first_level=(0.05, 0.12))))
default_hooks = dict(
    logger=dict(type='LoggerHook', interval=10),
    checkpoint=dict(interval=30, max_keep_ckpts=1, save_best=None))
env_cfg = dict(cudnn_benchmark=False)
