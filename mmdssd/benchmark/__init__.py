from .loss_benchmark import benchmark_loss
from .model_benchmark import benchmark_config, format_table

__all__ = ['benchmark_config', 'benchmark_loss', 'format_table']
