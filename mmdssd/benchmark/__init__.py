from .deploy_benchmark import (benchmark_deployed, benchmark_variants,
                               format_deploy_table)
from .loss_benchmark import benchmark_loss
from .model_benchmark import (benchmark_config, format_step_profiles,
                              format_table)

__all__ = [
    'benchmark_config', 'benchmark_deployed', 'benchmark_loss',
    'benchmark_variants', 'format_deploy_table', 'format_step_profiles',
    'format_table'
]
