from .compat import (allow_checkpoint_globals, apply_all,
                     patch_ssdhead_loss_cls)
from .config_paths import resolve_config
from .dist import setup_cpu_distributed

__all__ = [
    'apply_all', 'allow_checkpoint_globals', 'patch_ssdhead_loss_cls',
    'resolve_config', 'setup_cpu_distributed'
]
