import os.path as osp
from typing import Optional

import torch
from mmdet.engine.hooks import CheckInvalidLossHook
from mmdet.registry import HOOKS


class InvalidLossError(RuntimeError):
    """The training loss became NaN or infinite."""


@HOOKS.register_module()
class StopOnInvalidLossHook(CheckInvalidLossHook):
    """Stop training at the first NaN or infinite loss, saying where.

    MMDetection's :class:`CheckInvalidLossHook` checks every 50 iterations
    and fails with an empty ``AssertionError``. This one checks every
    ``interval`` iterations (default: each) and raises
    :class:`InvalidLossError` naming the iteration, the epoch, each loss
    term and the last checkpoint written (from MMEngine's
    ``work_dir/last_checkpoint``), the one to resume or debug from.

    Args:
        interval (int): Check every this many iterations. Defaults to 1.
    """

    def __init__(self, interval: int = 1) -> None:
        super().__init__(interval=interval)

    def after_train_iter(self,
                         runner,
                         batch_idx: int,
                         data_batch: Optional[dict] = None,
                         outputs: Optional[dict] = None) -> None:
        if not outputs or 'loss' not in outputs or \
                not self.every_n_train_iters(runner, self.interval):
            return
        if torch.isfinite(outputs['loss']).all():
            return
        terms = ', '.join(f'{k}={float(v):.4g}' for k, v in outputs.items()
                          if k.startswith('loss') and torch.is_tensor(v)
                          and v.numel() == 1)
        marker = osp.join(runner.work_dir, 'last_checkpoint')
        last = 'none written yet'
        if osp.isfile(marker):
            with open(marker) as f:
                last = f.read().strip()
        raise InvalidLossError(
            f'training loss is not finite at iteration {runner.iter + 1} '
            f'(epoch {runner.epoch + 1}): {terms}. Last checkpoint: {last}. '
            'Lower the learning rate or check the data, then resume with '
            '--resume.')
