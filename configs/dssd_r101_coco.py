# DSSD321 on COCO train2017 -> val2017 (CocoMetric).
_base_ = [
    '_base_/models/dssd321_r101.py', '_base_/datasets/coco_ssd.py',
    '_base_/schedules/ssd_voc_120e.py', '_base_/default_runtime.py'
]
model = dict(
    bbox_head=dict(
        num_classes=80,
        # COCO holds smaller objects: first level 7%/15%, rule 15% -> 95%
        anchor_generator=dict(s_min=0.15, s_max=0.95,
                              first_level=(0.07, 0.15))))
