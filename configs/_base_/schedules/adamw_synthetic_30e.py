# A minutes-long schedule for models trained from random init on a CPU:
# AdamW (from random init for minutes it ended higher than SGD; the model
# zoo's results pages have the comparison), a short linear warm-up, then a
# cosine decay per iteration (such runs have few, long epochs).
_base_ = './ssd_voc_120e.py'
max_epochs = 30
train_cfg = dict(max_epochs=max_epochs, val_interval=max_epochs)
optim_wrapper = dict(
    optimizer=dict(_delete_=True, type='AdamW', lr=2e-3, weight_decay=0.05))
param_scheduler = [
    dict(type='LinearLR', start_factor=0.01, by_epoch=False, begin=0,
         end=60),
    dict(type='CosineAnnealingLR', by_epoch=True, begin=0, end=max_epochs,
         eta_min=1e-5, convert_to_iter_based=True)
]
auto_scale_lr = dict(base_batch_size=8)
