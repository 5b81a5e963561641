"""Fit the length of an iteration-based run to a wall-clock deadline."""
import math
import time
from typing import List, Optional, Sequence

from mmdet.registry import HOOKS
from mmengine.hooks import Hook
from mmengine.runner import IterBasedTrainLoop

from .step_times import phase_input_sides


@HOOKS.register_module()
class TimeBudgetHook(Hook):
    """End training (its validations included) by a wall-clock deadline,
    refitting the number of iterations from the step times measured in the
    run.

    A schedule fitted before training from a few timed steps is off by
    whatever those steps missed (machine noise, a model that gets faster or
    slower as it trains, input sizes that change with
    :class:`~mmdssd.models.data_preprocessors.ProgressiveResize`). This
    hook keeps measuring: every ``interval`` iterations it predicts the
    time the rest of the run needs (the iterations left, each at the
    measured seconds per iteration of its input-size phase, plus the
    validations left at their measured cost) and moves ``max_iters`` so
    that the run ends at ``deadline``. The schedulers that end with the
    run (cosine, ...) are stretched or shrunk with it, and so are the
    phases of a ``ProgressiveResize`` (they are fractions of
    ``max_iters``); a refit never moves the run back to an earlier phase.

    Phases not reached yet are predicted from ``phase_costs`` (relative
    seconds per iteration, e.g. measured before training), scaled by the
    ratio of measured to predicted cost of the phases seen so far.

    With ``num_vals``, the hook places the validations too: ``num_vals``
    of them, evenly spaced over the refitted length, the last after the
    last iteration. A fixed interval would let a refitted end land just
    after a scheduled validation and pay for two in a row; an interval
    recomputed from the length would fire again each time a refit moves
    its multiple past the current iteration.

    Needs MMEngine's ``IterBasedTrainLoop`` (an epoch loop cannot change
    its length in the middle of an epoch).

    Args:
        deadline (float): ``time.time()`` by which training and its
            validations should be done.
        val_s (float): Expected seconds of one validation until one has
            been measured. Defaults to 0.
        phase_costs (Sequence[float], optional): Relative seconds per
            iteration of each input-size phase (one per phase of the
            model's ``ProgressiveResize`` plus the last, full-size one).
            Defaults to the squared input side of each phase.
        interval (int): Iterations between refits. Defaults to 25.
        min_samples (int): Iterations of a phase measured before its
            measured time is trusted. Defaults to 10.
        num_vals (int, optional): Validations per run, the final one
            included, kept evenly spaced as the length moves. Defaults to
            None: the loop's ``val_interval`` is left as configured.
    """

    priority = 'LOW'

    def __init__(self,
                 deadline: float,
                 val_s: float = 0.0,
                 phase_costs: Optional[Sequence[float]] = None,
                 interval: int = 25,
                 min_samples: int = 10,
                 num_vals: Optional[int] = None) -> None:
        if interval < 1:
            raise ValueError(
                f'TimeBudgetHook: interval must be >= 1, got {interval}')
        if num_vals is not None and num_vals < 1:
            raise ValueError(
                f'TimeBudgetHook: num_vals must be >= 1, got {num_vals}')
        self.num_vals = num_vals
        self.deadline = float(deadline)
        self.val_s = float(val_s)
        self.phase_costs = list(phase_costs) if phase_costs else None
        self.interval = interval
        self.min_samples = min_samples
        self.refits: List[dict] = []
        # per input-size phase: where it ends (a fraction of max_iters), and
        # the seconds and count of its measured iterations
        self.untils: List[float] = [1.0]
        self.sums: List[float] = [0.0]
        self.counts: List[int] = [0]
        self.val_times: List[float] = []
        self._last: Optional[float] = None  # end of the last step
        self._val_start: Optional[float] = None

    # -- bookkeeping ------------------------------------------------------
    def before_train(self, runner) -> None:
        if not isinstance(runner.train_loop, IterBasedTrainLoop):
            raise TypeError(
                'TimeBudgetHook needs an IterBasedTrainLoop (train_cfg type='
                f"'IterBasedTrainLoop'), got "
                f'{type(runner.train_loop).__name__}')
        if (self.num_vals is not None
                and len(getattr(runner.train_loop, 'dynamic_intervals',
                                ())) > 1):
            raise ValueError(
                'TimeBudgetHook: num_vals spaces the validations itself; '
                "drop train_cfg's dynamic_intervals or num_vals")
        from mmdssd.models.data_preprocessors import ProgressiveResize
        resize = ProgressiveResize.of(runner.model)
        self.untils = resize.boundaries if resize else [1.0]
        num = len(self.untils)
        if self.phase_costs is None:
            self.phase_costs = self.default_phase_costs(runner, resize)
        if len(self.phase_costs) != num:
            raise ValueError(
                f'TimeBudgetHook: phase_costs has {len(self.phase_costs)} '
                f'entries, the model trains in {num} input-size phases')
        # ProgressHook counts its ETA down to this
        runner.message_hub.update_info('train_deadline', self.deadline)
        self.sums = [0.0] * num
        self.counts = [0] * num
        self.val_times = []
        self._last = None

    @staticmethod
    def default_phase_costs(runner, resize) -> List[float]:
        """The squared input side of each phase: a step's cost grows with
        the pixels it sees. The last phase runs at the pipeline's size."""
        if resize is None:
            return [1.0]
        return [side * side for side in phase_input_sides(runner.cfg, resize)]

    def _phase(self, it: int, max_iters: int) -> int:
        for i, until in enumerate(self.untils):
            if it < until * max_iters:
                return i
        return len(self.untils) - 1

    def before_train_iter(self, runner, batch_idx: int,
                          data_batch=None) -> None:
        if self._last is None:
            self._last = time.perf_counter()

    def before_val_epoch(self, runner) -> None:
        self._val_start = time.perf_counter()

    def after_val_epoch(self, runner, metrics=None) -> None:
        if runner.train_loop is None or self._val_start is None:
            return
        spent = time.perf_counter() - self._val_start
        self._val_start = None
        self.val_times.append(spent)
        if self._last is not None:  # a validation is no training step
            self._last += spent
        self.schedule_next_val(runner.train_loop, runner.iter,
                               runner.train_loop.max_iters)

    def after_train_iter(self, runner, batch_idx: int, data_batch=None,
                         outputs=None) -> None:
        now = time.perf_counter()
        it = runner.iter  # this iteration's index (counted after hooks)
        if self._last is not None:
            phase = self._phase(it, runner.max_iters)
            if it > 0:  # the first step carries one-off costs
                self.sums[phase] += now - self._last
                self.counts[phase] += 1
        self._last = now
        if (it + 1) % self.interval == 0:
            self.refit(runner, it + 1)

    # -- the fit ----------------------------------------------------------
    def seconds_per_iter(self) -> List[float]:
        """Predicted seconds per iteration of every phase."""
        seen = [i for i, c in enumerate(self.counts) if c >= self.min_samples]
        if not seen:
            return []
        measured = [self.sums[i] / self.counts[i] for i in seen]
        # measured / predicted of the latest phase seen, for those ahead
        scale = measured[-1] / self.phase_costs[seen[-1]]
        out = [self.phase_costs[i] * scale for i in range(len(self.counts))]
        for i, sec in zip(seen, measured):
            out[i] = sec
        return out

    def predict_seconds(self, done: int, max_iters: int, val_interval: int,
                        per_iter: List[float]) -> float:
        """Seconds from iteration ``done`` to the end of a ``max_iters``
        run: its iterations, each at its phase's cost, and validations."""
        total, start = 0.0, 0
        for until, sec in zip(self.untils, per_iter):
            end = math.ceil(until * max_iters)
            total += max(0, end - max(start, done)) * sec
            start = max(start, end)
        val_s = (sum(self.val_times) / len(self.val_times)
                 if self.val_times else self.val_s)
        return total + self.vals_left(done, max_iters, val_interval) * val_s

    def vals_left(self, done: int, max_iters: int, val_interval: int) -> int:
        """Validations from iteration ``done`` to the end of a
        ``max_iters`` run."""
        if self.num_vals is not None:
            return max(self.num_vals - len(self.val_times), 1)
        vals = max_iters // val_interval - done // val_interval
        if max_iters % val_interval:
            vals += 1  # the loop validates after the last iteration too
        return vals

    def next_val_iter(self, done: int, max_iters: int) -> int:
        """With ``num_vals``: the iteration after which the next
        validation of a ``max_iters`` run falls (never before ``done``)."""
        k = len(self.val_times) + 1
        if k >= self.num_vals:
            return max_iters
        return max(done, math.ceil(k * max_iters / self.num_vals))

    def refit(self, runner, done: int) -> Optional[int]:
        """Move ``max_iters`` so that the run ends at the deadline; returns
        the new ``max_iters`` (None: nothing measured yet)."""
        per_iter = self.seconds_per_iter()
        if not per_iter:
            return None
        loop = runner.train_loop
        old = loop.max_iters
        left = self.deadline - time.time()
        # keep the current phase: done / new stays in [until_prev, until)
        phase = self._phase(done, old)
        lo = max(done + 1, math.floor(done / self.untils[phase]) + 1)
        hi = (math.floor(done / self.untils[phase - 1])
              if phase > 0 else None)

        def fits(n):
            return self.predict_seconds(done, n, loop.val_interval,
                                        per_iter) <= left

        if not fits(lo):
            new = lo  # behind already: end as soon as the phase allows
        else:
            new = lo
            step = 1024
            while step:  # the largest n that fits
                if (hi is None or new + step <= hi) and fits(new + step):
                    new += step
                else:
                    step //= 2
        if new != old:
            self.set_max_iters(runner, old, new)
            self.refits.append(dict(iter=done, max_iters=new,
                                    seconds_left=round(left, 1)))
        self.schedule_next_val(loop, done, new)
        return new

    def schedule_next_val(self, loop, done: int, max_iters: int) -> None:
        """With ``num_vals``: make the next validation come after
        ``next_val_iter``. The loop validates where the iteration count is
        a multiple of its interval, and the first multiple from ``done`` on
        of that iteration is itself; the next refit or validation moves it
        on before the second. The loop re-reads its interval every
        iteration from its dynamic intervals (one, without
        ``dynamic_intervals``), so both are set."""
        if self.num_vals is None:
            return
        interval = self.next_val_iter(done, max_iters)
        loop.val_interval = interval
        if hasattr(loop, 'dynamic_intervals'):
            loop.dynamic_intervals = [interval]

    @staticmethod
    def set_max_iters(runner, old: int, new: int) -> None:
        """``max_iters`` of the loop, the message hub (which
        ``ProgressiveResize`` reads) and the end of every scheduler that
        ended with the run."""
        # IterBasedTrainLoop has no public setter; its loop condition and
        # ``max_iters`` property read this attribute every iteration
        runner.train_loop._max_iters = new
        runner.message_hub.update_info('max_iters', new)
        schedulers = runner.param_schedulers or []
        if isinstance(schedulers, dict):
            schedulers = [s for group in schedulers.values() for s in group]
        for sched in schedulers:
            if sched.by_epoch or sched.end != old:
                continue
            sched.end = new
            if hasattr(sched, 'T_max'):
                sched.T_max = new - sched.begin
