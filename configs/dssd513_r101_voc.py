# DSSD513 on VOC07+12 (paper: 81.5 mAP): input 512 gives the paper's
# 64, 32, 16, 8, 4, 2, 1 maps (43688 boxes); five halving extra blocks.
_base_ = './dssd_r101_voc.py'
input_size = 512
model = dict(
    neck=dict(
        extra_blocks=((2, 2), ) * 5,
        # the paper's 2x2 stride-1 deconvolution from the 1x1 to the 2x2 map
        deconv_kernel_strides=((2, 2), ) * 5 + ((2, 1), )),
    bbox_head=dict(
        in_channels=(512, ) * 6 + (1024, ),
        pred_kernel_size=(5, 5, 3, 3, 3, 3, 3),
        anchor_generator=dict(
            input_size=input_size,
            strides=[8, 16, 32, 64, 128, 256, 512],
            s_min=0.15,
            s_max=0.9,
            first_level=(0.07, 0.15))))
train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations', with_bbox=True),
    dict(type='PhotoMetricDistortion', brightness_delta=32,
         contrast_range=(0.5, 1.5), saturation_range=(0.5, 1.5),
         hue_delta=18),
    dict(type='Expand', mean=[123.675, 116.28, 103.53], to_rgb=True,
         ratio_range=(1, 4)),
    dict(type='MinIoURandomCrop', min_ious=(0.1, 0.3, 0.5, 0.7, 0.9),
         min_crop_size=0.3),
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
# >= 5 images per GPU for BN (the paper); 4 GPUs x 8 = 32
train_dataloader = dict(
    dataset=dict(dataset=dict(datasets=[
        dict(
            type='VOCDataset',
            data_root='data/VOCdevkit/',
            ann_file='VOC2007/ImageSets/Main/trainval.txt',
            data_prefix=dict(sub_data_root='VOC2007/'),
            filter_cfg=dict(filter_empty_gt=True, min_size=32),
            pipeline=train_pipeline),
        dict(
            type='VOCDataset',
            data_root='data/VOCdevkit/',
            ann_file='VOC2012/ImageSets/Main/trainval.txt',
            data_prefix=dict(sub_data_root='VOC2012/'),
            filter_cfg=dict(filter_empty_gt=True, min_size=32),
            pipeline=train_pipeline)
    ])))
val_dataloader = dict(dataset=dict(pipeline=test_pipeline))
test_dataloader = val_dataloader
