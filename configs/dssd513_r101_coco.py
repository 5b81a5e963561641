# DSSD513 on COCO (paper test-dev: 33.2 AP). The authors' COCO boxes
# (their ssd_coco_resnet_deconv_513.py): min_ratio 10, max_ratio 95, first
# level 4%/10%.
_base_ = './dssd513_r101_voc.py'
model = dict(
    bbox_head=dict(
        num_classes=80,
        anchor_generator=dict(s_min=0.10, s_max=0.95,
                              first_level=(0.04, 0.10))))
dataset_type = 'CocoDataset'
data_root = 'data/coco/'
train_dataloader = dict(
    dataset=dict(
        _delete_=True,
        type=dataset_type,
        data_root=data_root,
        ann_file='annotations/instances_train2017.json',
        data_prefix=dict(img='train2017/'),
        filter_cfg=dict(filter_empty_gt=True, min_size=32),
        pipeline={{_base_.train_pipeline}}))
val_dataloader = dict(
    dataset=dict(
        _delete_=True,
        type=dataset_type,
        data_root=data_root,
        ann_file='annotations/instances_val2017.json',
        data_prefix=dict(img='val2017/'),
        test_mode=True,
        pipeline={{_base_.test_pipeline}}))
test_dataloader = val_dataloader
val_evaluator = dict(
    _delete_=True,
    type='CocoMetric',
    ann_file=data_root + 'annotations/instances_val2017.json',
    metric='bbox')
test_evaluator = val_evaluator
