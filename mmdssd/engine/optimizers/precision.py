"""Pick the training precision for this machine by measuring it."""
import copy
from typing import Callable, Dict, Tuple

from mmengine.config import Config

from .cpu_amp_optim_wrapper import cpu_bf16_support


def with_cpu_amp(cfg: Config) -> Config:
    """A copy of ``cfg`` training under bf16 autocast on the CPU."""
    cfg = copy.deepcopy(cfg)
    cfg.optim_wrapper.type = 'CPUAmpOptimWrapper'
    cfg.optim_wrapper.pop('loss_scale', None)
    return cfg


def choose_training_precision(
        cfg: Config, fp32_times: Dict[str, float],
        measure: Callable[[Config], Dict[str, float]],
        precision: str = 'auto') -> Tuple[Config, str, Dict[str, float]]:
    """The config to train, a sentence saying which precision and why, and
    its step times.

    Args:
        cfg: The fp32 training config.
        fp32_times: ``measure(cfg)``, already taken.
        measure: Step timing (``train_iter`` in seconds) of a config.
        precision: ``'auto'`` (bf16 only where the CPU has native bf16 and
            its steps measure faster), ``'fp32'`` or ``'bf16'`` (forced).
    """
    if precision == 'fp32':
        return cfg, 'fp32 (asked for)', fp32_times
    supported, why = cpu_bf16_support()
    if not supported and precision == 'auto':
        return cfg, f'fp32: {why}; bf16 not timed', fp32_times
    bf16_cfg = with_cpu_amp(cfg)
    bf16_times = measure(bf16_cfg)
    if precision == 'bf16':
        return bf16_cfg, f'bf16 (asked for; {why})', bf16_times
    fp32_s, bf16_s = fp32_times['train_iter'], bf16_times['train_iter']
    timed = (f'a bf16 step took {bf16_s / fp32_s:.2f}x the fp32 step here '
             f'({bf16_s:.3f} vs {fp32_s:.3f} s; {why})')
    if bf16_s < fp32_s:
        return bf16_cfg, f'bf16: {timed}', bf16_times
    return cfg, f'fp32: {timed}', fp32_times
