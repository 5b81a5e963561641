from .deconvolution_module import DeconvolutionModule
from .extra_res_block import ExtraResBlock
from .prediction_module import PredictionModule

__all__ = ['DeconvolutionModule', 'ExtraResBlock', 'PredictionModule']
