# Paper ablation row: + stage-2 fine-tuning of the whole net (lower than
# 78.6 at 321) -- stage 1 checkpoint, all but BN unfrozen, lr 1e-4.
_base_ = '../dssd_r101_voc_stage2.py'
