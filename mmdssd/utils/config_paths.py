"""Resolve ``mmdet::ssd/ssd300_coco.py``-style names to config files, and
load them."""
import os.path as osp

from mmengine.config import Config


def resolve_config(name: str) -> str:
    """Path of a config given as a file or as ``package::relative/path``.

    ``mmdet::`` (or any installed OpenMMLab package shipping ``.mim/
    configs``) is looked up in that package; ``mmdssd::`` in this one.

    Raises:
        FileNotFoundError: naming the config that does not exist.
    """
    if '::' in name:
        package, rel = name.split('::', 1)
        module = __import__(package)
        path = osp.join(osp.dirname(module.__file__), '.mim', 'configs', rel)
        if package == 'mmdssd' and not osp.isfile(path):
            repo = osp.dirname(osp.dirname(osp.abspath(module.__file__)))
            path = osp.join(repo, 'configs', rel)
    else:
        path = name
    if not osp.isfile(path):
        raise FileNotFoundError(f'config not found: {name} ({path})')
    return path


def config_without_download(name: str) -> Config:
    """Load a config (file or ``mmdet::...``) whose backbone downloads
    nothing at build time (``init_cfg=None``): for tools that bring their
    own weights or need none (benchmarks, BN folding)."""
    cfg = Config.fromfile(resolve_config(name))
    if cfg.model.backbone.get('init_cfg'):
        cfg.model.backbone.init_cfg = None
    return cfg
