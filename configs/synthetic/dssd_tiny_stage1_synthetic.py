# The paper's stage 1 at small scale: start from the trained SSD + PM(c)
# baseline (ssd_tiny_synthetic.py; its last checkpoint, epoch_30.pth, is
# the one it keeps), freeze backbone + extra layers (BN in eval), and train
# the deconvolution module (the paper's product fusion), prediction modules
# and predictors. tools/analysis_tools/ablation.py --two-stage E F runs this
# protocol with its own budget (it passes load_from).
_base_ = './dssd_tiny_synthetic.py'
load_from = 'work_dirs/ssd_tiny_synthetic/epoch_30.pth'
model = dict(
    backbone=dict(frozen_stages=4, norm_eval=True),
    neck=dict(freeze_extra_layers=True, fusion='prod'))
