import random
from typing import Optional

import numpy as np
import torch
from mmdet.registry import HOOKS
from mmengine.hooks import Hook


@HOOKS.register_module()
class RngStateHook(Hook):
    """Save the random states with each checkpoint and restore them on
    ``--resume``, so that a resumed run replays the same augmentation and
    sampling as an uninterrupted one.

    MMEngine's checkpoints hold the weights, optimiser, schedulers and the
    seed, but not the states of Python's, NumPy's and torch's generators,
    which the data pipeline (flips, photometric distortion) draws from:
    a resumed run draws other augmentations than the uninterrupted one
    would have, and ends with other weights. With this hook and
    ``randomness.deterministic=True`` the two end equal.

    The states are restored only when training resumes (the loaded
    checkpoint's iteration is past 0), not for ``load_from`` fine-tuning.
    Data workers (``num_workers > 0``) are seeded by MMEngine from the
    seed and the epoch, which a resume reproduces already.
    """

    priority = 'VERY_LOW'

    def __init__(self) -> None:
        self._loaded: Optional[dict] = None

    def before_save_checkpoint(self, runner, checkpoint: dict) -> None:
        checkpoint['rng_state'] = dict(
            python=random.getstate(),
            numpy=np.random.get_state(),
            torch=torch.get_rng_state())

    def after_load_checkpoint(self, runner, checkpoint: dict) -> None:
        self._loaded = checkpoint.get('rng_state')

    def before_train(self, runner) -> None:
        state, self._loaded = self._loaded, None
        if state is None or runner.iter == 0:
            return
        random.setstate(state['python'])
        np.random.set_state(state['numpy'])
        torch.set_rng_state(state['torch'])
