"""Batch normalisation that also trains on a batch of one value per
channel: a batch of one image on a 1x1 feature map."""
import torch.nn as nn
import torch.nn.functional as F
from mmdet.registry import MODELS
from torch import Tensor


@MODELS.register_module('SafeBN')
class OneValueSafeBN(nn.BatchNorm2d):
    """``nn.BatchNorm2d`` (MMCV's ``BN``) that, in training, normalises a
    batch holding one value per channel with its running statistics.

    DSSD's last extra layer and its prediction module are 1x1 maps, so the
    last batch of an epoch that holds a single image (a training set whose
    size leaves a remainder of one per GPU) gives BN one value per channel:
    there is no batch variance to normalise by, and ``nn.BatchNorm2d``
    raises. Here that batch is normalised with the running statistics,
    which it leaves unchanged; the affine weights still learn from it. Every
    other batch is plain BN, and the state dict is BN's (``bn.weight``...),
    so checkpoints load either way.

    Args:
        Those of ``nn.BatchNorm2d``.
    """

    _abbr_ = 'bn'

    def forward(self, x: Tensor) -> Tensor:
        if self.training and x.numel() == x.shape[1]:
            return F.batch_norm(x, self.running_mean, self.running_var,
                                self.weight, self.bias, False, 0.0, self.eps)
        return super().forward(x)
