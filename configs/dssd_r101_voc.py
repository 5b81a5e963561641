# DSSD321 on VOC07+12 -> VOC07 test (paper: 78.6 mAP), one-stage
# end-to-end from ImageNet ResNet-101 (docs/en/user_guides/train_test.md
# has the paper's two-stage recipe too).
_base_ = [
    '_base_/models/dssd321_r101.py', '_base_/datasets/voc0712_ssd.py',
    '_base_/schedules/ssd_voc_120e.py', '_base_/default_runtime.py'
]
