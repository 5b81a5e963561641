"""Time a config's training and test steps before training, and fit a
schedule to a wall-time budget from them."""
import contextlib
import copy
import math
from typing import Dict, Iterator, List, Mapping, Tuple

from mmengine.config import Config
from mmengine.logging import MessageHub

from mmdssd.utils.timing import (endless, runner_environment, time_calls,
                                 time_in_turns)


def measure_step_times(cfg: Config, train_iters: int = 4,
                       warmup: int = 2,
                       channels_last: bool = False,
                       all_phases: bool = True) -> Dict[str, float]:
    """Seconds per training iteration and per test batch of ``cfg`` here.

    Builds the config's model, optimiser and train/test dataloaders exactly
    as MMEngine's runner would (no work dir, no hooks), runs ``warmup``
    training iterations untimed, then ``train_iters`` timed ones (data
    loading included), and times the test batches the same way, in the
    process environment the runner sets up (``env_cfg.mp_cfg``: OpenCV's
    threads, the start method), which is put back afterwards. The model
    is thrown away then: nothing it learned leaks into the run.

    With a :class:`ProgressiveResize` batch augment, each of its phases
    (input sizes) is timed with ``train_iters`` steps and ``train_iter``
    is their mean weighted by the phases' lengths (``phase_train_iters``
    holds each). With ``all_phases=False`` only the first phase is timed
    and the others are scaled from it by their pixels
    (:func:`phase_input_sides`): one phase's timing instead of all, for a
    first estimate that :class:`TimeBudgetHook` corrects as the run
    measures its own steps.

    Args:
        cfg (Config): A full training config (with ``train_dataloader``,
            ``test_dataloader`` and ``optim_wrapper``).
        train_iters (int): Timed training iterations. Defaults to 4.
        warmup (int): Untimed iterations first. Defaults to 2.
        channels_last (bool): Time the model in channels-last memory
            format (as :class:`ChannelsLastHook` runs it). Defaults to
            False.
        all_phases (bool): Time every input-size phase, not only the
            first. Defaults to True.

    Returns:
        dict: ``train_iter`` and ``test_batch`` in seconds, and
        ``iters_per_epoch`` / ``test_batches`` of the dataloaders.
    """
    return measure_step_times_in_turns({'': cfg}, train_iters, warmup,
                                       channels_last, all_phases)['']


def measure_step_times_in_turns(cfgs: Mapping[str, Config],
                                train_iters: int = 4,
                                warmup: int = 2,
                                channels_last: bool = False,
                                all_phases: bool = True
                                ) -> Dict[str, Dict[str, float]]:
    """:func:`measure_step_times` of several configs at once, their
    training steps taking turns (one step of each, then the next round).

    Timed one after the other, two configs would be compared across
    whatever the machine did in between; taking turns, a change of load
    hits every config alike. Each config keeps its own model, optimiser and
    dataloaders, so each timed step still loads its own batch.

    Args:
        cfgs (Mapping[str, Config]): Full training configs by name, with
            the same input-size phases (e.g. one config in two
            precisions).
        train_iters, warmup, channels_last, all_phases: As for
            :func:`measure_step_times`.

    Returns:
        dict: By name, what :func:`measure_step_times` returns.
    """
    first = next(iter(cfgs.values()))
    with runner_environment(first):
        return _measure(cfgs, train_iters, warmup, channels_last,
                        all_phases)


def _measure(cfgs: Mapping[str, Config], train_iters: int, warmup: int,
             channels_last: bool, all_phases: bool
             ) -> Dict[str, Dict[str, float]]:
    """:func:`measure_step_times_in_turns` in the current process
    environment."""
    arms = {name: _Arm(cfg, channels_last) for name, cfg in cfgs.items()}
    resize, sides = _common_phases(cfgs, arms)
    ends = resize.boundaries if resize else [1.0]
    starts = [0.0] + ends[:-1]
    phase_times: Dict[str, List[float]] = {name: [] for name in arms}
    for start in starts if all_phases else starts[:1]:
        with _training_progress(start if resize else None):
            times = time_in_turns(
                {name: arm.train_step for name, arm in arms.items()},
                train_iters, warmup)
        for name, ts in times.items():
            phase_times[name].append(sorted(ts)[len(ts) // 2])
    if len(starts) > 1 and not all_phases:
        pixels = [side * side for side in sides]
        phase_times = {name: [ts[0] * p / pixels[0] for p in pixels]
                       for name, ts in phase_times.items()}
    return {
        name: dict(
            # the mean over training, each phase weighted by its length
            train_iter=sum((end - start) * t for start, end, t in zip(
                starts, ends, phase_times[name])),
            phase_train_iters=phase_times[name],
            **arm.test_times())
        for name, arm in arms.items()
    }


class _Arm:
    """One config's model (initialised, in training mode), optimiser
    wrapper and endless training batches, for timing its steps."""

    def __init__(self, cfg: Config, channels_last: bool) -> None:
        from mmengine.runner import Runner
        self.model, self.optim = _model_and_optimizer(cfg, channels_last)
        self.model.train()
        train_loader = Runner.build_dataloader(cfg.train_dataloader, seed=0)
        self.iters_per_epoch = len(train_loader)
        self.batches = endless(train_loader)
        self.test_loader = Runner.build_dataloader(cfg.test_dataloader,
                                                   seed=0)

    def train_step(self) -> None:
        self.model.train_step(next(self.batches), self.optim)

    def test_times(self) -> Dict[str, float]:
        """Seconds of a test batch (the faster of two), and the loaders'
        lengths."""
        import torch
        self.model.eval()
        batches = endless(self.test_loader)
        with torch.no_grad():
            times = time_calls(lambda: self.model.test_step(next(batches)),
                               min(2, len(self.test_loader)))
        return dict(test_batch=min(times),
                    iters_per_epoch=self.iters_per_epoch,
                    test_batches=len(self.test_loader))


def _common_phases(cfgs: Mapping[str, Config], arms: Mapping[str, _Arm]):
    """The arms' :class:`ProgressiveResize` (or None) and the input side
    of each of its phases. Arms take turns under one training progress,
    so their phases must agree."""
    from mmdssd.models.data_preprocessors import ProgressiveResize
    resizes = {name: ProgressiveResize.of(arm.model)
               for name, arm in arms.items()}
    phases = {
        name: (r.boundaries, phase_input_sides(cfgs[name], r)) if r else
        (None, [])
        for name, r in resizes.items()
    }
    first = next(iter(arms))
    if any(p != phases[first] for p in phases.values()):
        raise ValueError('measure_step_times_in_turns: the configs train at '
                         f'different input-size phases: {phases}')
    return resizes[first], phases[first][1]


def phase_input_sides(cfg: Config, resize) -> List[int]:
    """The input side of each phase of ``resize`` (a
    :class:`ProgressiveResize`), the last one the training pipeline's (a
    config may test at another size)."""
    return [side for _, side in resize.phases] + [train_input_side(cfg)]


def train_input_side(cfg: Config) -> int:
    """The longer side of the training pipeline's fixed-size ``Resize``:
    what a :class:`ProgressiveResize` trains at in its last phase."""
    dataset = cfg.train_dataloader.dataset
    while 'pipeline' not in dataset and 'dataset' in dataset:
        dataset = dataset.dataset  # RepeatDataset and friends
    resizes = [t for t in dataset.get('pipeline', [])
               if t.get('type') == 'Resize']
    scale = resizes[0].get('scale') if len(resizes) == 1 else None
    if isinstance(scale, int):
        return scale
    if not (isinstance(scale, (tuple, list)) and len(scale) == 2):
        raise ValueError(
            'train_dataloader.dataset.pipeline: expected one Resize with a '
            f'fixed scale, found {resizes}; ProgressiveResize trains its '
            'last phase at that size')
    return int(max(scale))


def _model_and_optimizer(cfg: Config, channels_last: bool) -> Tuple:
    """The config's model (initialised) and optimiser wrapper."""
    import torch
    from mmdet.registry import MODELS
    from mmengine.optim import build_optim_wrapper
    from mmengine.registry import init_default_scope
    init_default_scope(cfg.get('default_scope', 'mmdet'))
    cfg = copy.deepcopy(cfg)
    model = MODELS.build(cfg.model)
    model.init_weights()
    if channels_last:
        model.to(memory_format=torch.channels_last)
    return model, build_optim_wrapper(model, cfg.optim_wrapper)


@contextlib.contextmanager
def _training_progress(fraction) -> Iterator[None]:
    """Tell the message hub that training is ``fraction`` done (what
    ``ProgressiveResize`` reads to pick its input size); ``None`` leaves it
    alone. The hub is restored afterwards."""
    hub = MessageHub.get_current_instance()
    saved = {k: hub.get_info(k) for k in ('iter', 'max_iters')}
    if fraction is not None:
        hub.update_info('max_iters', 1000)
        hub.update_info('iter', int(fraction * 1000))
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                hub.pop_info(key, None)
            else:
                hub.update_info(key, value)


def fit_iterations(budget_s: float, train_iter_s: float,
                   fixed_s: float = 0.0) -> int:
    """Training iterations that fill ``budget_s`` seconds:
    ``(budget_s - fixed_s) / train_iter_s``, rounded down.

    Args:
        budget_s (float): Wall time for training and what else is counted
            in ``fixed_s``.
        train_iter_s (float): Seconds per training iteration.
        fixed_s (float): Time spent outside training steps (validations).

    Raises:
        ValueError: If the budget cannot hold one iteration.
    """
    iters = math.floor((budget_s - fixed_s) / train_iter_s)
    if iters < 1:
        raise ValueError(
            f'a budget of {budget_s:.0f} s holds no iteration: one takes '
            f'~{train_iter_s:.2f} s here and the rest of the job '
            f'~{fixed_s:.0f} s; give more minutes')
    return iters
