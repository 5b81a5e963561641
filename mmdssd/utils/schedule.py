"""Change the length of a config's schedule, its lr schedulers with it."""
from mmengine.config import Config


def set_max_epochs(cfg: Config, epochs: int) -> Config:
    """Shorten/lengthen an epoch-based schedule, moving the end of every
    epoch-based lr scheduler with it. Modifies ``cfg`` in place."""
    cfg.train_cfg.max_epochs = epochs
    for sched in cfg.param_scheduler:
        if sched.get('by_epoch', True) and 'end' in sched:
            sched.end = epochs
    return cfg


def set_max_iters(cfg: Config, max_iters: int, val_interval: int) -> Config:
    """Turn an epoch-based schedule into an iteration-based one of
    ``max_iters`` iterations (MMEngine's ``IterBasedTrainLoop``, an
    ``InfiniteSampler``, iteration-based logging and a checkpoint at the
    end), validating every ``val_interval`` iterations and after the last.
    Epoch-based lr schedulers keep their share of the run: their
    ``begin``/``end`` move from epochs of the old schedule to iterations.
    Modifies ``cfg`` in place."""
    max_epochs = cfg.train_cfg.get('max_epochs')
    per_epoch = max_iters / max_epochs if max_epochs else None
    for sched in cfg.param_scheduler:
        if not sched.get('by_epoch', True):
            continue
        if per_epoch is None:
            raise ValueError(
                'set_max_iters: train_cfg has no max_epochs to convert the '
                f'epoch-based {sched.type} scheduler from')
        sched.by_epoch = False
        sched.pop('convert_to_iter_based', None)
        for key in ('begin', 'end', 'T_max'):
            if key in sched:
                sched[key] = round(sched[key] * per_epoch)
    cfg.train_cfg = dict(type='IterBasedTrainLoop', max_iters=max_iters,
                         val_interval=val_interval)
    cfg.train_dataloader.sampler = dict(type='InfiniteSampler', shuffle=True)
    cfg.log_processor = dict(type='LogProcessor', window_size=50,
                             by_epoch=False)
    cfg.default_hooks.checkpoint.update(by_epoch=False, interval=-1,
                                        save_last=True)
    return cfg
