"""Softmax cross-entropy on a predictor's own (B, n * C, H, W) layout."""
from typing import Sequence

import torch
from mmdet.models.losses import CrossEntropyLoss
from mmdet.registry import MODELS
from torch import Tensor
from torch.autograd.function import once_differentiable


# Tiles of about this many scores keep each full-size temporary near 1 MB:
# cache-resident, and small enough to be reused by the allocator instead of
# mapped afresh (page faults made a whole-map temporary 3x slower on the
# CPU). Tiles are contiguous runs of (image, base box) rows, so they cross
# image boundaries freely.
TILE_NUMEL = 1 << 18


def _row_tiles(*tensors: Tensor):
    """Split (R, C or 1, HW) tensors into tiles of whole rows."""
    per_row = max(tensors[0][0].numel(), 1)
    size = max(TILE_NUMEL // per_row, 1)
    return zip(*(t.split(size) for t in tensors))


class _GroupedSoftmaxCE(torch.autograd.Function):
    """Cross-entropy over dim 1 of (R, C, HW) scores, labels (R, 1, HW).

    Forward: ``logsumexp - score[label]``. Backward: ``softmax - onehot``,
    recomputed from the scores, so nothing of full size is kept between
    forward and backward. Both work through the rows tile by tile.
    """

    @staticmethod
    def forward(ctx, score: Tensor, label: Tensor) -> Tensor:
        # logsumexp = shift + log_sum for any shift; the max keeps exp() in
        # range, and keeping the two apart keeps float32 accuracy as good
        # as log_softmax's for large logits
        shift = score.amax(1, keepdim=True)
        log_sum = torch.empty_like(shift)
        for s, m, out in _row_tiles(score, shift, log_sum):
            torch.sum((s - m).exp_(), 1, keepdim=True, out=out)
        log_sum.log_()
        ctx.save_for_backward(score, label, shift, log_sum)
        return (shift - score.gather(1, label)).add_(log_sum)

    @staticmethod
    @once_differentiable
    def backward(ctx, grad: Tensor):
        score, label, shift, log_sum = ctx.saved_tensors
        grad_score = torch.empty_like(score)
        for s, m, ls, g, out in _row_tiles(score, shift, log_sum, grad,
                                           grad_score):
            torch.sub(s, m, out=out).sub_(ls).exp_().mul_(g)
        return grad_score.scatter_add_(1, label, -grad), None


def map_cross_entropy(score: Tensor, labels: Tensor) -> Tensor:
    """Per-box softmax cross-entropy of one level's class map.

    Equal to ``F.cross_entropy(flat, labels, reduction='none')`` where
    ``flat = score.permute(0, 2, 3, 1).reshape(B, -1, C)`` is MMDetection's
    flattened layout, without making that (B, H * W * n, C) copy or a full
    log-softmax output (most of an SSD loss's time on the CPU), and with a
    one-pass backward.

    Args:
        score (Tensor): Class scores (B, n * C, H, W) of ``n`` boxes per
            location and ``C`` classes.
        labels (Tensor): Target class (long) of every box, (B, H * W * n) in
            MMDetection's box order (y, x, base box).

    Returns:
        Tensor: The loss of every box, (B, H * W * n); float32 for half
        precision scores (as ``F.cross_entropy`` under autocast).
    """
    num_imgs, height, width = score.shape[0], score.shape[2], score.shape[3]
    hw = height * width
    if labels.dim() != 2 or labels.shape[0] != num_imgs or (
            labels.shape[1] % hw or score.shape[1] % (labels.shape[1] // hw)):
        raise ValueError(f'labels of shape {tuple(labels.shape)} do not '
                         f'match scores of shape {tuple(score.shape)}')
    num_base = labels.shape[1] // hw
    if score.dtype in (torch.float16, torch.bfloat16):
        score = score.float()  # AMP: the loss in float32
    # rows: (image, base box); then classes; then positions
    rows = score.reshape(num_imgs * num_base, -1, hw)
    label = labels.reshape(num_imgs, hw, num_base).transpose(1, 2)
    loss = _GroupedSoftmaxCE.apply(
        rows, label.reshape(num_imgs * num_base, 1, hw))
    return loss.view(num_imgs, num_base, hw).transpose(1, 2).reshape(
        num_imgs, -1)


@MODELS.register_module()
class MapCrossEntropyLoss(CrossEntropyLoss):
    """Softmax cross-entropy of every box, on the predictors' own maps.

    The loss of an SSD-style head's classification: per-level class maps
    (B, n * C, H, W) and the target of every box (B, A) in MMDetection's
    flattened order (level, y, x, base box) give the unreduced loss (B, A)
    (:func:`map_cross_entropy` level by level), for hard negative mining
    to select from. Plain, unweighted softmax cross-entropy: a head that
    needs class weights uses ``CrossEntropyLoss`` on flattened scores.

    Args:
        loss_weight (float): Weight of the loss. Defaults to 1.0.
    """

    def __init__(self, loss_weight: float = 1.0) -> None:
        super().__init__(use_sigmoid=False, loss_weight=loss_weight)

    def forward(self, cls_scores: Sequence[Tensor], labels: Tensor,
                cls_out_channels: int) -> Tensor:
        """Unreduced loss (B, A) of the level maps ``cls_scores`` with
        ``cls_out_channels`` scores (classes + background) per box."""
        losses, start = [], 0
        for score in cls_scores:
            num = score[0].numel() // cls_out_channels  # boxes of the level
            losses.append(map_cross_entropy(
                score, labels[:, start:start + num]))
            start += num
        return torch.cat(losses, 1) * self.loss_weight
