"""Resolve ``mmdet::ssd/ssd300_coco.py``-style names to config files."""
import os.path as osp


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
