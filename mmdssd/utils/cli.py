"""What tools/train.py and tools/test.py share."""
import argparse
import os
import os.path as osp
from typing import Optional

from mmengine.config import Config, DictAction

from .config_paths import resolve_config
from .dist import setup_cpu_distributed


def add_common_args(parser: argparse.ArgumentParser) -> None:
    """``config``, ``--work-dir``, ``--cfg-options``, ``--launcher``,
    ``--local-rank``: the options MMDetection's tools take."""
    parser.add_argument(
        'config', help='config file, or mmdet::path/in/mmdet/configs.py')
    parser.add_argument('--work-dir', help='where logs and models go')
    parser.add_argument(
        '--cfg-options',
        nargs='+',
        action=DictAction,
        help='override config keys, e.g. key=value a.b="[1,2]"')
    parser.add_argument(
        '--launcher',
        choices=['none', 'pytorch', 'slurm', 'mpi'],
        default='none',
        help='job launcher')
    # torch.distributed.launch passes --local-rank (torch >= 2.0)
    parser.add_argument('--local_rank', '--local-rank', type=int, default=0)


def load_config(args: argparse.Namespace) -> Config:
    """Load ``args.config`` with the overrides, work dir and launcher.

    Also prepares CPU-only distributed runs (gloo, no DDP ``device_ids``);
    see :func:`mmdssd.utils.setup_cpu_distributed`.
    """
    if 'LOCAL_RANK' not in os.environ:
        os.environ['LOCAL_RANK'] = str(args.local_rank)
    cfg = Config.fromfile(resolve_config(args.config))
    cfg.launcher = args.launcher
    if args.cfg_options is not None:
        cfg.merge_from_dict(args.cfg_options)
    work_dir: Optional[str] = args.work_dir
    if work_dir is not None:
        cfg.work_dir = work_dir
    elif cfg.get('work_dir', None) is None:
        name = osp.splitext(osp.basename(args.config.split('::')[-1]))[0]
        cfg.work_dir = osp.join('./work_dirs', name)
    setup_cpu_distributed(cfg, args.launcher)
    return cfg


def config_without_download(name: str) -> Config:
    """Load a config (file or ``mmdet::...``) whose backbone downloads
    nothing at build time (``init_cfg=None``): for tools that bring their
    own weights or need none (benchmarks, BN folding)."""
    cfg = Config.fromfile(resolve_config(name))
    if cfg.model.backbone.get('init_cfg'):
        cfg.model.backbone.init_cfg = None
    return cfg


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
