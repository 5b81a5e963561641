from .cross_class_decay import check_decay_cfg, cross_class_decay
from .deconvolution_module import DeconvolutionModule
from .extra_res_block import ExtraResBlock
from .one_value_safe_bn import OneValueSafeBN
from .prediction_module import PredictionModule
from .subsample_first_conv import SubsampleFirstConv2d

__all__ = [
    'DeconvolutionModule', 'ExtraResBlock', 'OneValueSafeBN',
    'PredictionModule', 'SubsampleFirstConv2d', 'check_decay_cfg',
    'cross_class_decay'
]
