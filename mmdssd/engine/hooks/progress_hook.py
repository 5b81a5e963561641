import sys
import time
from typing import Optional, TextIO

from mmdet.registry import HOOKS
from mmengine.hooks import Hook
from mmengine.runner import IterBasedTrainLoop


def format_seconds(seconds: float) -> str:
    """``83`` -> ``'1:23'``, ``3700`` -> ``'1:01:40'``."""
    seconds = int(round(max(seconds, 0)))
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    return (f'{hours}:{minutes:02d}:{secs:02d}'
            if hours else f'{minutes}:{secs:02d}')


@HOOKS.register_module()
class ProgressHook(Hook):
    """One progress line for a whole training run: bar, iteration, epoch,
    loss, elapsed time and ETA.

    On a terminal the line is redrawn in place; in a log file it is
    printed every ``interval`` iterations. The ETA extrapolates the mean
    speed since the start of this run (validation time included, as it
    recurs); a run fitted to a deadline by :class:`TimeBudgetHook` (the
    message hub's ``train_deadline``) counts down to it instead. The
    epoch is shown for epoch-based loops only.

    Args:
        interval (int): Iterations between updates. Defaults to 10.
        width (int): Characters of the bar. Defaults to 24.
        stream (TextIO, optional): Where to write. Defaults to stdout.
    """

    priority = 'BELOW_NORMAL'

    def __init__(self,
                 interval: int = 10,
                 width: int = 24,
                 stream: Optional[TextIO] = None) -> None:
        if interval < 1:
            raise ValueError(f'ProgressHook: interval must be >= 1, got '
                             f'{interval}')
        self.interval = interval
        self.width = width
        self.stream = stream
        self._start = 0.0
        self._start_iter = 0

    def _out(self) -> TextIO:
        return self.stream if self.stream is not None else sys.stdout

    def before_train(self, runner) -> None:
        self._start = time.perf_counter()
        self._start_iter = runner.iter

    def line(self,
             done: int,
             total: int,
             epoch: Optional[int] = None,
             max_epochs: Optional[int] = None,
             loss: Optional[float] = None,
             eta_s: Optional[float] = None) -> str:
        """The progress line after ``done`` of ``total`` iterations (and
        ``epoch`` of ``max_epochs``, if given). The ETA is ``eta_s`` if
        given, else extrapolated from the mean speed."""
        total = max(total, 1)
        elapsed = time.perf_counter() - self._start
        rate = (done - self._start_iter) / max(elapsed, 1e-9)
        if eta_s is not None:
            eta = format_seconds(eta_s)
        else:
            eta = format_seconds((total - done) / rate) if rate > 0 else '?'
        filled = int(self.width * done / total)
        bar = '#' * filled + '.' * (self.width - filled)
        text = f'[{bar}] {100 * done / total:3.0f}% iter {done}/{total}'
        if epoch is not None:
            text += f' epoch {epoch}/{max_epochs}'
        if loss is not None:
            text += f' loss {loss:.3f}'
        return text + f' | {format_seconds(elapsed)} elapsed, ETA {eta}'

    def after_train_iter(self,
                         runner,
                         batch_idx: int,
                         data_batch=None,
                         outputs: Optional[dict] = None) -> None:
        done = runner.iter + 1  # MMEngine counts the iteration after hooks
        if done % self.interval and done != runner.max_iters:
            return
        loss = float(outputs['loss']) if outputs and 'loss' in outputs \
            else None
        epoch = max_epochs = None
        if not isinstance(getattr(runner, 'train_loop', None),
                          IterBasedTrainLoop):
            epoch, max_epochs = runner.epoch + 1, runner.max_epochs
        # a run fitted to a deadline (TimeBudgetHook) ends then
        hub = getattr(runner, 'message_hub', None)
        deadline = hub.get_info('train_deadline') if hub else None
        eta_s = deadline - time.time() if deadline else None
        line = self.line(done, runner.max_iters, epoch, max_epochs, loss,
                         eta_s)
        out = self._out()
        out.write('\r' + line if out.isatty() else line + '\n')
        out.flush()

    def after_train(self, runner) -> None:
        out = self._out()
        if out.isatty():
            out.write('\n')
            out.flush()
