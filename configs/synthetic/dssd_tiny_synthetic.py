# DSSD321 scaled down for the embedded synthetic set and a 2-core CPU.
# Same components as dssd_r101_voc.py, including the paper's product fusion
# (the DM's neutral start, fusion_init='neutral', lets it learn from random
# init; README "Making the deconvolution module learn"); changes only what
# must change: ResNet-18 at half width (random init, no download), 256
# input, narrower extra/DM/PM widths, boxes for the synthetic object sizes,
# the data, and a minutes-long AdamW schedule.
_base_ = '../dssd_r101_voc.py'
input_size = 256
data_root = 'data/synthetic/'
classes = ('circle', 'square', 'triangle', 'cross', 'ring')
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
        num_classes=len(classes),
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

train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations', with_bbox=True),
    dict(type='PhotoMetricDistortion', brightness_delta=16,
         contrast_range=(0.8, 1.2), saturation_range=(0.8, 1.2),
         hue_delta=9),
    dict(type='Resize', scale=(input_size, input_size), keep_ratio=False),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PackDetInputs')
]
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='Resize', scale=(input_size, input_size), keep_ratio=False),
    dict(type='LoadAnnotations', with_bbox=True),
    dict(type='PackDetInputs',
         meta_keys=('img_id', 'img_path', 'ori_shape', 'img_shape',
                    'scale_factor'))
]
# train on the VOC layout (VOCDataset) ...
train_dataloader = dict(
    batch_size=8,
    num_workers=0,  # loading is cheap next to a CPU step
    persistent_workers=False,
    dataset=dict(
        _delete_=True,
        type='VOCDataset',
        data_root=data_root + 'VOCdevkit/',
        ann_file='VOC2007/ImageSets/Main/trainval.txt',
        data_prefix=dict(sub_data_root='VOC2007/'),
        metainfo=dict(classes=classes),
        filter_cfg=dict(filter_empty_gt=False),
        pipeline=train_pipeline))
# ... and evaluate the same test images through the COCO layout, so one pass
# gives both VOC mAP (11-point, difficult ignored) and COCO AP (difficult
# objects are iscrowd there, i.e. ignored too).
val_dataloader = dict(
    batch_size=8,
    num_workers=0,  # loading is cheap next to a CPU step
    persistent_workers=False,
    dataset=dict(
        _delete_=True,
        type='CocoDataset',
        data_root=data_root,
        ann_file='annotations/instances_test.json',
        data_prefix=dict(img='VOCdevkit/VOC2007/JPEGImages/'),
        metainfo=dict(classes=classes),
        test_mode=True,
        pipeline=test_pipeline))
test_dataloader = val_dataloader
val_evaluator = [
    dict(type='VOCMetric', metric='mAP', eval_mode='11points'),
    dict(type='CocoMetric',
         ann_file=data_root + 'annotations/instances_test.json',
         metric='bbox')
]
test_evaluator = val_evaluator

max_epochs = 30
train_cfg = dict(max_epochs=max_epochs, val_interval=max_epochs)
# AdamW, not the real configs' SGD: from random init for minutes it ended
# higher (README "The main job": VOC mAP 0.458 vs 0.387 for SGD lr 0.02,
# 900 iterations, seed 0, same data)
optim_wrapper = dict(
    optimizer=dict(_delete_=True, type='AdamW', lr=2e-3, weight_decay=0.05))
param_scheduler = [
    dict(type='LinearLR', start_factor=0.01, by_epoch=False, begin=0,
         end=60),
    # per iteration: the main job runs few, long epochs
    dict(type='CosineAnnealingLR', by_epoch=True, begin=0, end=max_epochs,
         eta_min=1e-5, convert_to_iter_based=True)
]
auto_scale_lr = dict(base_batch_size=8)
default_hooks = dict(
    logger=dict(type='LoggerHook', interval=10),
    checkpoint=dict(interval=max_epochs, max_keep_ckpts=1, save_best=None))
env_cfg = dict(cudnn_benchmark=False)
