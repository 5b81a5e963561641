from .cpu_amp_optim_wrapper import (CPUAmpOptimWrapper,
                                    UnsupportedCPUPrecisionError,
                                    cpu_bf16_support)
from .precision import choose_training_precision, with_cpu_amp

__all__ = [
    'CPUAmpOptimWrapper', 'UnsupportedCPUPrecisionError', 'cpu_bf16_support',
    'choose_training_precision', 'with_cpu_amp'
]
