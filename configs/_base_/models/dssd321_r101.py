# DSSD321: ResNet-101 (conv5_x dilated, stride 16) + SSD extra layers +
# deconvolution module (product fusion) + prediction module (c).
# Input 320: MMDetection's arithmetic gives the paper's 40, 20, 10, 5, 3, 1
# maps and 17080 default boxes (321 gives 41 and 21).
# (the input size itself is set by the dataset pipelines: input_size = 320)
custom_imports = dict(imports=['mmdssd'], allow_failed_imports=False)
model = dict(
    type='SingleStageDetector',
    data_preprocessor=dict(
        type='DetDataPreprocessor',
        mean=[123.675, 116.28, 103.53],
        std=[58.395, 57.12, 57.375],
        bgr_to_rgb=True,
        pad_size_divisor=1),
    backbone=dict(
        type='ResNet',
        depth=101,
        num_stages=4,
        strides=(1, 2, 2, 1),
        dilations=(1, 1, 1, 2),
        out_indices=(1, 3),  # conv3_x (stride 8), conv5_x (stride 16)
        frozen_stages=1,
        norm_cfg=dict(type='BN', requires_grad=True),
        norm_eval=True,
        style='pytorch',
        init_cfg=dict(type='Pretrained',
                      checkpoint='torchvision://resnet101')),
    neck=dict(
        type='DSSDNeck',
        in_channels=(512, 2048),
        extra_blocks=((2, 2), (2, 2), (3, 1), (3, 1)),
        extra_mid_channels=256,
        extra_out_channels=1024,
        use_deconv=True,
        deconv_channels=512,
        fusion='prod',
        # SafeBN: BN that also trains on a batch of one image, whose 1x1
        # levels give it one value per channel
        norm_cfg=dict(type='SafeBN')),
    bbox_head=dict(
        type='DSSDHead',
        num_classes=20,
        in_channels=(512, 512, 512, 512, 512, 1024),
        prediction_module='c',
        pm_mid_channels=256,
        pm_out_channels=1024,
        pred_kernel_size=(5, 5, 3, 3, 3, 3),
        norm_cfg=dict(type='SafeBN'),
        anchor_generator=dict(
            type='SkAnchorGenerator',
            input_size=320,
            strides=[8, 16, 32, 64, 320 / 3, 320],
            ratios=[1.6, 2, 3],
            s_min=0.2,
            s_max=0.95,
            first_level=(0.1, 0.2),
            integer_percent=True),
        bbox_coder=dict(
            type='DeltaXYWHBBoxCoder',
            target_means=[.0, .0, .0, .0],
            target_stds=[0.1, 0.1, 0.2, 0.2])),
    train_cfg=dict(
        assigner=dict(
            type='BatchMaxIoUAssigner',
            pos_iou_thr=0.5,
            neg_iou_thr=0.5,
            min_pos_iou=0.,
            ignore_iof_thr=-1,
            gt_max_assign_all=False),
        sampler=dict(type='PseudoSampler'),
        smoothl1_beta=1.,
        allowed_border=-1,
        pos_weight=-1,
        neg_pos_ratio=3,
        debug=False),
    test_cfg=dict(
        nms_pre=1000,
        nms=dict(type='nms', iou_threshold=0.45),
        min_bbox_size=0,
        score_thr=0.02,
        max_per_img=200))
