"""A convolution that runs its strided 1x1 case as a subsampling followed
by a stride-1 convolution."""
import torch
import torch.nn as nn
import torch.nn.functional as F
from mmdet.registry import MODELS
from torch import Tensor


@MODELS.register_module('SubsampleFirstConv')
class SubsampleFirstConv2d(nn.Conv2d):
    """``nn.Conv2d`` (MMCV's ``Conv``) that runs a 1x1, unpadded, strided
    convolution as a stride-1 convolution of the pixels it reads.

    A 1x1 convolution of stride s reads only every s-th row and column, so
    the two are one function of the same parameters. They are not one
    kernel: on AVX-512 CPUs oneDNN's fp32 kernel for the weight gradient of
    a strided 1x1 convolution over a channels-last input with few channels
    (8 in and 16 out, from 56x56 up, among others) crashes the process
    (torch 2.13.0, oneDNN 3.12), and ResNet's first downsampling in a
    narrow backbone is such a convolution. The stride-1 kernel does not
    crash. Every other convolution is ``nn.Conv2d``'s, and so is the state
    dict: checkpoints load either way.

    Args:
        Those of ``nn.Conv2d``.
    """

    def forward(self, x: Tensor) -> Tensor:
        if not self._reads_a_subsample():
            return super().forward(x)
        # the output layout nn.Conv2d gives: channels-last only for an input
        # that is channels-last and not also contiguous
        layout = (torch.channels_last
                  if x.is_contiguous(memory_format=torch.channels_last)
                  and not x.is_contiguous() else torch.contiguous_format)
        row_step, col_step = self.stride
        kept = x[:, :, ::row_step, ::col_step].contiguous(
            memory_format=layout)
        return F.conv2d(kept, self.weight, self.bias, 1, 0, self.dilation,
                        self.groups)

    def _reads_a_subsample(self) -> bool:
        return (self.kernel_size == (1, 1) and self.stride != (1, 1)
                and self.padding == (0, 0)
                and self.padding_mode == 'zeros')
