from .config_utils import point_cfg_at_synthetic
from .synthetic import (SYNTHETIC_CLASSES, SyntheticSpec,
                        generate_synthetic_dataset)

__all__ = [
    'SYNTHETIC_CLASSES', 'SyntheticSpec', 'generate_synthetic_dataset',
    'point_cfg_at_synthetic'
]
