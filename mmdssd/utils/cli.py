"""What the tools share: tools/train.py and tools/test.py, and the main
job with the tools that time it."""
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


def main_job_config(root: str, narrow: bool = False) -> str:
    """The main job's config under ``root`` (the repository), or its
    narrow version, which the job trains where its own fits few
    iterations."""
    name = 'dssd_main_job_narrow_synthetic.py' if narrow else (
        'dssd_main_job_synthetic.py')
    return osp.join(root, 'configs', 'synthetic', name)


def add_main_job_args(parser: argparse.ArgumentParser, root: str) -> None:
    """``--config`` (default: the main job's config under ``root``, the
    repository) and ``--data-root`` (the synthetic set): what the main
    job and the tools that time its steps take."""
    parser.add_argument('--config', default=main_job_config(root))
    parser.add_argument('--data-root', default='data/synthetic')
