"""Pick the training precision for this machine by measuring it."""
import copy
from typing import Callable, Dict, Mapping, Tuple

from mmengine.config import Config

from .cpu_amp_optim_wrapper import cpu_bf16_support


def with_cpu_amp(cfg: Config) -> Config:
    """A copy of ``cfg`` training under bf16 autocast on the CPU."""
    cfg = copy.deepcopy(cfg)
    cfg.optim_wrapper.type = 'CPUAmpOptimWrapper'
    cfg.optim_wrapper.pop('loss_scale', None)
    return cfg


def choose_training_precision(
        cfg: Config,
        measure: Callable[[Mapping[str, Config]], Dict[str, Dict[str, float]]],
        precision: str = 'auto') -> Tuple[Config, str, Dict[str, float]]:
    """The config to train, a sentence saying which precision and why, and
    its step times.

    Under ``'auto'`` the fp32 and bf16 configs are handed to ``measure``
    together, for it to time their steps in turns: timed one block after
    the other, the two were compared across whatever the machine did in
    between.

    Args:
        cfg: The fp32 training config.
        measure: Step timing (``train_iter`` in seconds) of configs by
            name, e.g. :func:`~mmdssd.engine.measure_step_times_in_turns`.
        precision: ``'auto'`` (bf16 only where the CPU has native bf16 and
            its steps measure faster), ``'fp32'`` or ``'bf16'`` (forced).
    """
    if precision == 'fp32':
        return cfg, 'fp32 (asked for)', measure(dict(fp32=cfg))['fp32']
    supported, why = cpu_bf16_support()
    if not supported and precision == 'auto':
        return (cfg, f'fp32: {why}; bf16 not timed',
                measure(dict(fp32=cfg))['fp32'])
    bf16_cfg = with_cpu_amp(cfg)
    if precision == 'bf16':
        return (bf16_cfg, f'bf16 (asked for; {why})',
                measure(dict(bf16=bf16_cfg))['bf16'])
    times = measure(dict(fp32=cfg, bf16=bf16_cfg))
    fp32_s, bf16_s = times['fp32']['train_iter'], times['bf16']['train_iter']
    timed = (f'a bf16 step took {bf16_s / fp32_s:.2f}x the fp32 step here, '
             f'timed in turns ({bf16_s:.3f} vs {fp32_s:.3f} s; {why})')
    if bf16_s < fp32_s:
        return bf16_cfg, f'bf16: {timed}', times['bf16']
    return cfg, f'fp32: {timed}', times['fp32']
