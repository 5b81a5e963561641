"""mmdssd: DSSD (Deconvolutional Single Shot Detector) for MMDetection 3.x.

Importing this package registers every mmdssd component into MMDetection's
registries and applies the workarounds the stack needs on current
torch/numpy (see :mod:`mmdssd.utils.compat`); a runner's config is
formatted once instead of at every use (:mod:`mmdssd.utils.config_format`).
"""
from .utils import compat as _compat

_compat.apply_all()

from .utils.config_format import remember_config_formatting  # noqa: E402

remember_config_formatting()

from . import datasets, deployment, engine, fileio, models  # noqa: E402,F401
from .version import __version__  # noqa: E402

__all__ = ['__version__']
