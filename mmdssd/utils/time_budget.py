"""Fit an epoch-based schedule to a wall-time budget on this machine."""
import copy
import math
import time
from typing import Dict, Tuple

from mmengine.config import Config


def measure_step_times(cfg: Config, train_iters: int = 4,
                       warmup: int = 2,
                       channels_last: bool = False) -> Dict[str, float]:
    """Seconds per training iteration and per test batch of ``cfg`` here.

    Builds the config's model, optimiser and train/test dataloaders exactly
    as MMEngine's runner would (no work dir, no hooks), runs ``warmup``
    training iterations untimed, then ``train_iters`` timed ones (data
    loading included), and times the test batches the same way. The
    model is thrown away afterwards: nothing it learned leaks into the run.

    Args:
        cfg (Config): A full training config (with ``train_dataloader``,
            ``test_dataloader`` and ``optim_wrapper``).
        train_iters (int): Timed training iterations. Defaults to 4.
        warmup (int): Untimed iterations first. Defaults to 2.
        channels_last (bool): Time the model in channels-last memory
            format (as :class:`ChannelsLastHook` runs it). Defaults to
            False.

    Returns:
        dict: ``train_iter`` and ``test_batch`` in seconds, and
        ``iters_per_epoch`` / ``test_batches`` of the dataloaders.
    """
    import torch
    from mmdet.registry import MODELS
    from mmengine.optim import build_optim_wrapper
    from mmengine.registry import init_default_scope
    from mmengine.runner import Runner

    init_default_scope(cfg.get('default_scope', 'mmdet'))
    cfg = copy.deepcopy(cfg)
    model = MODELS.build(cfg.model)
    model.init_weights()
    if channels_last:
        model.to(memory_format=torch.channels_last)
    optim = build_optim_wrapper(model, cfg.optim_wrapper)
    train_loader = Runner.build_dataloader(cfg.train_dataloader, seed=0)
    test_loader = Runner.build_dataloader(cfg.test_dataloader, seed=0)

    def timed(loader, step, count):
        it, times = iter(loader), []
        for i in range(count):
            start = time.perf_counter()
            try:
                batch = next(it)
            except StopIteration:
                it = iter(loader)
                batch = next(it)
            step(batch)
            times.append(time.perf_counter() - start)
        return times

    model.train()
    times = timed(train_loader, lambda b: model.train_step(b, optim),
                  warmup + train_iters)[warmup:]
    train_iter = sorted(times)[len(times) // 2]
    model.eval()
    with torch.no_grad():
        test_times = timed(test_loader, model.test_step,
                           min(2, len(test_loader)))
    return dict(
        train_iter=train_iter,
        test_batch=min(test_times),
        iters_per_epoch=len(train_loader),
        test_batches=len(test_loader))


def fit_schedule(budget_s: float, train_iter_s: float, num_images: int,
                 batch_size: int, fixed_s: float = 0.0) -> Tuple[int, int]:
    """Epochs and images per epoch that fill ``budget_s`` seconds.

    The iterations that fit are ``(budget_s - fixed_s) / train_iter_s``;
    they are spread over as few passes over the data as possible (each
    pass over all ``num_images`` while they last), so a fast machine sees
    the data more often and a slow one sees fewer images per pass instead
    of a schedule cut short.

    Args:
        budget_s (float): Wall time for everything.
        train_iter_s (float): Seconds per training iteration.
        num_images (int): Training images available.
        batch_size (int): Images per iteration.
        fixed_s (float): Time spent outside training (data generation,
            validations, the final test, drawing, start-up).

    Returns:
        tuple[int, int]: ``(epochs, images)``: train ``epochs`` epochs over
        the first ``images`` images (a multiple of ``batch_size``).

    Raises:
        ValueError: If the budget cannot hold one iteration.
    """
    iters = math.floor((budget_s - fixed_s) / train_iter_s)
    if iters < 1:
        raise ValueError(
            f'a budget of {budget_s:.0f} s holds no iteration: one takes '
            f'~{train_iter_s:.2f} s here and the rest of the job '
            f'~{fixed_s:.0f} s; give more minutes')
    full = max(num_images // batch_size, 1)
    epochs = max(1, math.ceil(iters / full))
    per_epoch = max(1, min(full, iters // epochs))
    return epochs, per_epoch * batch_size
