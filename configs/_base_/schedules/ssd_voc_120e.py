# DSSD recipe: SGD lr 1e-3, momentum 0.9, wd 5e-4, batch 32 in total
# (4 GPUs x 8), linear warm-up, step decay (x0.1 at 2/3 and 5/6).
max_epochs = 120
train_cfg = dict(type='EpochBasedTrainLoop', max_epochs=max_epochs,
                 val_interval=10)
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')
optim_wrapper = dict(
    type='OptimWrapper',
    optimizer=dict(type='SGD', lr=1e-3, momentum=0.9, weight_decay=5e-4),
    clip_grad=dict(max_norm=35, norm_type=2))
param_scheduler = [
    dict(type='LinearLR', start_factor=0.001, by_epoch=False, begin=0,
         end=500),
    dict(type='MultiStepLR', begin=0, end=max_epochs, by_epoch=True,
         milestones=[80, 100], gamma=0.1)
]
# lr above is for 32 images per iteration; --auto-scale-lr rescales it
auto_scale_lr = dict(enable=False, base_batch_size=32)
