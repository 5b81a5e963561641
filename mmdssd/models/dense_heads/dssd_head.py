"""DSSD head: prediction modules + SSD predictors + batched SSD loss."""
from typing import Dict, List, Sequence, Tuple, Union

import torch
import torch.nn as nn
from mmdet.models.dense_heads import SSDHead
from mmdet.models.losses import CrossEntropyLoss, smooth_l1_loss
from mmdet.models.task_modules.assigners import (BboxOverlaps2D,
                                                MaxIoUAssigner)
from mmdet.models.task_modules.samplers import PseudoSampler
from mmdet.registry import MODELS
from mmdet.structures.bbox import get_box_tensor
from mmdet.utils import (ConfigType, InstanceList, MultiConfig, OptConfigType,
                         OptInstanceList)
from torch import Tensor

from ..layers import PredictionModule
from ..losses import map_cross_entropy

# IoU is computed in tiles of about this many pairs (512 KB of float32):
# cache-resident temporaries, about 1.7x faster than whole (N, M) planes
IOU_TILE_NUMEL = 1 << 17


def box_iou(boxes1: Tensor, boxes2: Tensor, eps: float = 1e-6) -> Tensor:
    """IoU matrix (N, M) of x1y1x2y2 boxes.

    The arithmetic of MMDetection's ``bbox_overlaps`` (so results are
    bitwise equal), on contiguous planes per coordinate instead of
    interleaved (N, M, 2) tensors, a tile of columns at a time: several
    times faster on the CPU.
    """
    out = boxes1.new_empty(len(boxes1), len(boxes2))
    step = max(IOU_TILE_NUMEL // max(len(boxes1), 1), 1)
    x1a, y1a, x2a, y2a = (c[:, None] for c in boxes1.unbind(-1))
    area1 = (x2a - x1a) * (y2a - y1a)
    for start in range(0, len(boxes2), step):
        x1b, y1b, x2b, y2b = boxes2[start:start + step].unbind(-1)
        area2 = (x2b - x1b) * (y2b - y1b)
        iw = (torch.min(x2a, x2b) - torch.max(x1a, x1b)).clamp_(min=0)
        ih = (torch.min(y2a, y2b) - torch.max(y1a, y1b)).clamp_(min=0)
        overlap = iw.mul_(ih)
        union = (area1 + area2).sub_(overlap).clamp_(min=eps)
        torch.div(overlap, union, out=out[:, start:start + step])
    return out


DSSD321_ANCHORS = dict(
    type='SkAnchorGenerator',
    input_size=320,
    strides=[8, 16, 32, 64, 320 / 3, 320],
    ratios=[1.6, 2, 3],
    s_min=0.2,
    s_max=0.95,
    first_level=(0.1, 0.2),
    integer_percent=True)


@MODELS.register_module()
class DSSDHead(SSDHead):
    """DSSD head: a prediction module per level, then SSD's predictors.

    Training is SSD's: IoU-0.5 matching with every ground truth's best box
    forced positive, softmax cross-entropy with 3:1 hard negative mining,
    smooth-L1 on positives, both divided by the number of positives. The
    loss is computed for the whole batch at once (one assignment over
    padded ground truths, one cross-entropy, one top-k for the negatives of
    all images) and equals MMDetection's per-image ``SSDHead`` definition;
    set ``batched_loss=False`` to use MMDetection's implementation.

    Args:
        num_classes (int): Number of classes without background.
        in_channels (Sequence[int]): Channels of each input level.
        prediction_module (str | Sequence[str]): PM variant ``'a'``-``'d'``
            for all levels or per level. Defaults to ``'c'``.
        pm_mid_channels (int): PM bottleneck width. Defaults to 256.
        pm_out_channels (int): PM (c)/(d) output width. Defaults to 1024.
        pred_kernel_size (int | Sequence[int]): Kernel of the class/box
            predictors, for all levels or per level (the authors used 5 on
            the two largest maps, 3 elsewhere). Defaults to 3.
        conv_cfg (dict, optional): Convolution config of the PMs.
        norm_cfg (dict): Norm config of the PMs. Defaults to ``SafeBN``
            (BN that also trains on a batch of one image).
        act_cfg (dict): Activation config of the PMs. Defaults to ReLU.
        anchor_generator (dict): Prior generator config. Defaults to the
            DSSD321 VOC boxes (:class:`SkAnchorGenerator`).
        bbox_coder (dict): Box coder; centre-size deltas with variances
            (0.1, 0.1, 0.2, 0.2).
        loss_cls (dict): Per-box classification loss (softmax CE); applied
            with ``reduction_override='none'`` before mining.
        batched_loss (bool): Batched loss (default) or MMDetection's
            per-image one.
        reg_decoded_bbox (bool): Regress decoded boxes. Defaults to False.
        train_cfg (dict, optional): SSD training config (assigner,
            ``neg_pos_ratio``, ``smoothl1_beta``...).
        test_cfg (dict, optional): Test config (NMS...).
        init_cfg (dict or list[dict], optional): Initialization config.
    """

    def __init__(self,
                 num_classes: int = 20,
                 in_channels: Sequence[int] = (512, ) * 5 + (1024, ),
                 prediction_module: Union[str, Sequence[str]] = 'c',
                 pm_mid_channels: int = 256,
                 pm_out_channels: int = 1024,
                 pred_kernel_size: Union[int, Sequence[int]] = 3,
                 conv_cfg: OptConfigType = None,
                 norm_cfg: ConfigType = dict(type='SafeBN'),
                 act_cfg: ConfigType = dict(type='ReLU'),
                 anchor_generator: ConfigType = DSSD321_ANCHORS,
                 bbox_coder: ConfigType = dict(
                     type='DeltaXYWHBBoxCoder',
                     clip_border=True,
                     target_means=[.0, .0, .0, .0],
                     target_stds=[0.1, 0.1, 0.2, 0.2]),
                 loss_cls: ConfigType = dict(
                     type='CrossEntropyLoss', use_sigmoid=False),
                 batched_loss: bool = True,
                 reg_decoded_bbox: bool = False,
                 train_cfg: OptConfigType = None,
                 test_cfg: OptConfigType = None,
                 init_cfg: MultiConfig = [
                     dict(
                         type='Xavier',
                         layer='Conv2d',
                         distribution='uniform',
                         bias=0),
                     dict(type='Constant', val=1, layer='_BatchNorm'),
                 ]) -> None:
        num_levels = len(in_channels)
        self.pm_variants = self._per_level(prediction_module, num_levels,
                                           'prediction_module')
        self.pred_kernel_sizes = self._per_level(pred_kernel_size,
                                                 num_levels,
                                                 'pred_kernel_size')
        for k in self.pred_kernel_sizes:
            if k < 1 or k % 2 == 0:
                raise ValueError(
                    f'pred_kernel_size must be odd and >= 1, got {k}')
        self.pm_mid_channels = pm_mid_channels
        self.pm_out_channels = pm_out_channels
        self.batched_loss = batched_loss
        super().__init__(
            num_classes=num_classes,
            in_channels=in_channels,
            conv_cfg=conv_cfg,
            norm_cfg=norm_cfg,
            act_cfg=act_cfg,
            anchor_generator=anchor_generator,
            bbox_coder=bbox_coder,
            reg_decoded_bbox=reg_decoded_bbox,
            train_cfg=train_cfg,
            test_cfg=test_cfg,
            init_cfg=init_cfg)
        if len(self.num_base_priors) != num_levels:
            raise ValueError(
                f'anchor_generator has {len(self.num_base_priors)} levels '
                f'but in_channels has {num_levels}')
        loss_cls = dict(loss_cls)
        if loss_cls.get('use_sigmoid', False):
            raise ValueError('DSSDHead uses a softmax classifier; '
                             'loss_cls.use_sigmoid must be False')
        self.loss_cls = MODELS.build(loss_cls)

    @staticmethod
    def _per_level(value, num_levels: int, name: str) -> list:
        if isinstance(value, (str, int)):
            return [value] * num_levels
        value = list(value)
        if len(value) != num_levels:
            raise ValueError(f'{name} has {len(value)} entries for '
                             f'{num_levels} levels')
        return value

    def _init_layers(self) -> None:
        """Prediction modules and class/box predictors (no BN)."""
        self.pred_modules = nn.ModuleList()
        self.cls_convs = nn.ModuleList()
        self.reg_convs = nn.ModuleList()
        for channels, num_priors, variant, k in zip(self.in_channels,
                                                    self.num_base_priors,
                                                    self.pm_variants,
                                                    self.pred_kernel_sizes):
            pm = PredictionModule(
                channels,
                variant,
                self.pm_mid_channels,
                self.pm_out_channels,
                conv_cfg=self.conv_cfg,
                norm_cfg=self.norm_cfg,
                act_cfg=self.act_cfg)
            self.pred_modules.append(pm)
            self.cls_convs.append(
                nn.Conv2d(
                    pm.out_channels,
                    num_priors * self.cls_out_channels,
                    k,
                    padding=k // 2))
            self.reg_convs.append(
                nn.Conv2d(pm.out_channels, num_priors * 4, k, padding=k // 2))

    def forward(self, x: Tuple[Tensor]) -> Tuple[List[Tensor], List[Tensor]]:
        """Class scores and box deltas of every level."""
        self._check_inputs(x)
        cls_scores, bbox_preds = [], []
        for feat, pm, cls_conv, reg_conv in zip(x, self.pred_modules,
                                                self.cls_convs,
                                                self.reg_convs):
            feat = pm(feat)
            cls_scores.append(cls_conv(feat))
            bbox_preds.append(reg_conv(feat))
        return cls_scores, bbox_preds

    def _check_inputs(self, x: Sequence[Tensor]) -> None:
        """One clear error when the neck and the head disagree (a config
        that changed one side only), instead of a conv shape error."""
        if len(x) != len(self.in_channels):
            raise ValueError(
                f'the neck gives {len(x)} levels but DSSDHead.in_channels '
                f'has {len(self.in_channels)} (and anchor_generator '
                f'{len(self.num_base_priors)})')
        for level, (feat, expected) in enumerate(zip(x, self.in_channels)):
            if feat.shape[1] != expected:
                raise ValueError(
                    f'level {level}: the neck gives {feat.shape[1]} channels '
                    f'but DSSDHead.in_channels[{level}] is {expected} '
                    f'(neck out_channels must equal head in_channels)')

    # ------------------------------------------------------------------ loss
    def fallback_reason(self, batch_gt_instances_ignore: OptInstanceList
                        ) -> str:
        """Why MMDetection's per-image loss is used instead of the batched
        one (``''``: the batched loss reproduces it exactly and is used)."""
        assigner = getattr(self, 'assigner', None)
        iou_calc = getattr(assigner, 'iou_calculator', None)
        checks = [
            (self.batched_loss, 'batched_loss=False'),
            (not self.reg_decoded_bbox, 'reg_decoded_bbox=True'),
            (isinstance(assigner, MaxIoUAssigner),
             f'assigner {type(assigner).__name__}'),
            (type(iou_calc) is BboxOverlaps2D
             and getattr(iou_calc, 'scale', None) == 1.
             and getattr(iou_calc, 'dtype', 0) is None,
             'a non-default IoU calculator'),
            (isinstance(getattr(self, 'sampler', None), PseudoSampler),
             'a sampler other than PseudoSampler'),
            (isinstance(getattr(assigner, 'neg_iou_thr', None), float),
             'a neg_iou_thr range'),
            (not getattr(assigner, 'gt_max_assign_all', True),
             'gt_max_assign_all=True'),
            (getattr(assigner, 'ignore_iof_thr', 1) <= 0
             or not batch_gt_instances_ignore, 'ignored boxes'),
            (self.train_cfg.get('allowed_border', -1) < 0,
             'allowed_border >= 0'),
        ]
        return ', '.join(why for ok, why in checks if not ok)

    def loss_by_feat(
        self,
        cls_scores: List[Tensor],
        bbox_preds: List[Tensor],
        batch_gt_instances: InstanceList,
        batch_img_metas: List[dict],
        batch_gt_instances_ignore: OptInstanceList = None
    ) -> Dict[str, Union[Tensor, List[Tensor]]]:
        """SSD loss of the batch (see the class docstring).

        Returns:
            dict[str, Tensor]: ``loss_cls`` and ``loss_bbox``.
        """
        reason = self.fallback_reason(batch_gt_instances_ignore)
        if reason:
            # MMDetection's SSDHead computes plain softmax cross-entropy
            # inline: it cannot apply another loss_cls, so refuse one
            if not (self._is_plain_softmax_ce()
                    and self.loss_cls.loss_weight == 1.0):
                raise ValueError(
                    f'DSSDHead: loss_cls={self.loss_cls!r} needs the batched '
                    f'loss, but this batch falls back to MMDetection\'s '
                    f'SSDHead loss ({reason}), which ignores loss_cls; '
                    'use plain CrossEntropyLoss with loss_weight=1 there')
            return super().loss_by_feat(cls_scores, bbox_preds,
                                        batch_gt_instances, batch_img_metas,
                                        batch_gt_instances_ignore)
        featmap_sizes = [s.shape[-2:] for s in cls_scores]
        device = cls_scores[0].device
        anchors, valid = self._anchors_and_flags(featmap_sizes,
                                                 batch_img_metas, device)
        assigned, gt_boxes, gt_labels = self._assign(anchors, valid,
                                                     batch_gt_instances)

        pos = assigned > 0
        neg = assigned == 0
        gt_idx = (assigned - 1).clamp(min=0)
        labels = torch.where(pos, gt_labels.gather(1, gt_idx),
                             torch.full_like(assigned, self.num_classes))
        loss_all = self._per_box_cls_loss(cls_scores, labels)

        num_pos = pos.sum(1)
        num_neg = torch.minimum(num_pos * self.train_cfg['neg_pos_ratio'],
                                neg.sum(1))
        # MMDetection's SamplingResult counts max(num_pos, 1) per image
        avg_factor = num_pos.clamp(min=1).sum().float()
        pos_weight = self.train_cfg.get('pos_weight', -1)
        loss_pos = torch.where(pos, loss_all, 0).sum()
        if pos_weight > 0:
            loss_pos = loss_pos * pos_weight
        max_neg = int(num_neg.max())
        if max_neg > 0:
            neg_loss = loss_all.masked_fill(~neg, float('-inf'))
            top, _ = neg_loss.topk(max_neg, dim=1)
            keep = torch.arange(max_neg, device=device)[None] < num_neg[:,
                                                                        None]
            loss_neg = torch.where(keep, top, 0).sum()
        else:
            loss_neg = loss_all.new_zeros(())
        loss_cls = (loss_pos + loss_neg) / avg_factor

        img_idx, anchor_idx = pos.nonzero(as_tuple=True)
        targets = self.bbox_coder.encode(
            anchors[anchor_idx], gt_boxes[img_idx, gt_idx[img_idx,
                                                          anchor_idx]])
        loss_bbox = smooth_l1_loss(
            self._gather_boxes(bbox_preds, 4, img_idx, anchor_idx),
            targets,
            beta=self.train_cfg['smoothl1_beta'],
            reduction='sum') / avg_factor
        if img_idx.numel() == 0:
            # keep every predictor in the graph when a batch has no positive
            loss_bbox = loss_bbox + sum(p.sum() for p in bbox_preds) * 0
        return dict(loss_cls=loss_cls, loss_bbox=loss_bbox)

    def _per_box_cls_loss(self, cls_scores: List[Tensor],
                          labels: Tensor) -> Tensor:
        """Classification loss of every box, (B, A), unreduced.

        Plain softmax cross-entropy is computed per level on the
        predictor's own layout (:func:`map_cross_entropy`): no (B, A, C)
        copy of the scores and no full log-softmax output, which were most
        of the loss time on the CPU. Other ``loss_cls`` settings (class
        weights...) go through ``self.loss_cls`` on flattened scores.
        """
        num_imgs, channels = labels.shape[0], self.cls_out_channels
        if not self._is_plain_softmax_ce():
            flat = torch.cat([
                s.permute(0, 2, 3, 1).reshape(num_imgs, -1, channels)
                for s in cls_scores
            ], 1)
            return self.loss_cls(
                flat.reshape(-1, channels),
                labels.reshape(-1),
                reduction_override='none').view(num_imgs, -1)
        losses, start = [], 0
        for score in cls_scores:
            num = score[0].numel() // channels
            losses.append(
                map_cross_entropy(score, labels[:, start:start + num]))
            start += num
        return torch.cat(losses, 1) * self.loss_cls.loss_weight

    def _is_plain_softmax_ce(self) -> bool:
        """Whether ``loss_cls`` is unweighted softmax cross-entropy."""
        loss = self.loss_cls
        return (type(loss) is CrossEntropyLoss and not loss.use_sigmoid
                and not loss.use_mask and loss.class_weight is None
                and loss.ignore_index is None)

    @staticmethod
    def _gather_boxes(maps: List[Tensor], channels: int, img_idx: Tensor,
                      box_idx: Tensor) -> Tensor:
        """Predictions (P, channels) of boxes ``(img_idx, box_idx)``.

        Read straight from each level's (B, n * channels, H, W) map, with
        box indices in MMDetection's flattened order (level, y, x, base
        box), instead of reordering every box of every image first.
        """
        out = maps[0].new_empty(len(box_idx), channels)
        start = 0
        for level in maps:
            num_imgs, _, height, width = level.shape
            num_base = level.shape[1] // channels
            end = start + height * width * num_base
            sel = ((box_idx >= start) & (box_idx < end)).nonzero()[:, 0]
            local = box_idx[sel] - start
            out[sel] = level.reshape(num_imgs, num_base, channels,
                                     height * width)[img_idx[sel],
                                                     local % num_base, :,
                                                     local // num_base]
            start = end
        return out

    def _anchors_and_flags(self, featmap_sizes, batch_img_metas: List[dict],
                           device) -> Tuple[Tensor, Tensor]:
        """All anchors (A, 4) and per-image valid flags (B, A).

        Both depend only on the feature-map sizes (and pad shape), so they
        are computed once and cached, instead of once per call and image.
        """
        sizes = tuple(tuple(int(v) for v in s) for s in featmap_sizes)
        cache = self.__dict__.setdefault('_prior_cache', {})
        key = (sizes, str(device))
        if key not in cache:
            cache.clear()  # one input size at a time in practice
            cache[key] = torch.cat(
                self.prior_generator.grid_priors(sizes, device=device))
        flags = []
        for meta in batch_img_metas:
            flag_key = (sizes, str(device), tuple(meta['pad_shape'][:2]))
            if flag_key not in cache:
                cache[flag_key] = torch.cat(
                    self.prior_generator.valid_flags(
                        sizes, flag_key[2], device))
            flags.append(cache[flag_key])
        return cache[key], torch.stack(flags)

    def _assign(self, anchors: Tensor, valid: Tensor,
                batch_gt_instances: InstanceList
                ) -> Tuple[Tensor, Tensor, Tensor]:
        """``MaxIoUAssigner`` for the whole batch at once.

        Returns:
            tuple: ``assigned`` (B, A) long: -1 ignored, 0 background,
            ``g + 1`` matched to ground truth ``g``; the padded ground-truth
            boxes (B, G, 4) and labels (B, G).
        """
        assigner: MaxIoUAssigner = self.assigner
        num_imgs, num_anchors = valid.shape
        device = anchors.device
        counts = [len(g) for g in batch_gt_instances]
        max_gts = max(counts + [1])
        boxes = torch.cat([
            get_box_tensor(g.bboxes).to(anchors.dtype)
            for g in batch_gt_instances
        ]) if sum(counts) else anchors.new_zeros(0, 4)
        labels = torch.cat([g.labels for g in batch_gt_instances
                            ]) if sum(counts) else anchors.new_zeros(
                                0, dtype=torch.long)
        # image of each gt and its index among that image's gts
        img_of = torch.repeat_interleave(
            torch.arange(num_imgs, device=device),
            torch.tensor(counts, device=device))
        starts = torch.tensor([0] + counts[:-1], device=device).cumsum(0)
        local = torch.arange(len(boxes), device=device) - starts[img_of]
        gt_boxes = anchors.new_zeros(num_imgs, max_gts, 4)
        gt_boxes[img_of, local] = boxes
        gt_labels = torch.full((num_imgs, max_gts),
                               self.num_classes,
                               dtype=torch.long,
                               device=device)
        gt_labels[img_of, local] = labels

        ious = box_iou(boxes, anchors)  # real gts only, (N, A)
        if not bool(valid.all()):
            ious = ious.masked_fill(~valid[img_of], -1)

        # Only (gt, anchor) pairs at or above the lower threshold can make
        # an anchor anything but background, and they are few: reduce over
        # those instead of over a padded (B, G, A) IoU tensor.
        neg_thr, pos_thr = assigner.neg_iou_thr, assigner.pos_iou_thr
        gt_idx, anchor = (ious >= min(neg_thr, pos_thr)).nonzero(
            as_tuple=True)
        iou = ious[gt_idx, anchor]
        key = img_of[gt_idx] * num_anchors + anchor  # (image, anchor)
        max_ov = ious.new_full((num_imgs * num_anchors, ), -1)
        max_ov.scatter_reduce_(0, key, iou, reduce='amax')
        # the first gt with the best IoU, as MMDetection's argmax picks
        best = (iou >= pos_thr) & (iou == max_ov[key])
        first_gt = key.new_full((num_imgs * num_anchors, ), max_gts)
        first_gt.scatter_reduce_(
            0, key[best], local[gt_idx[best]], reduce='amin')
        max_ov = max_ov.view(num_imgs, num_anchors)
        assigned = torch.where(valid & (max_ov < neg_thr), 0, -1)
        pos = valid & (max_ov >= pos_thr)
        assigned[pos] = first_gt.view(num_imgs, num_anchors)[pos] + 1

        if assigner.match_low_quality:
            # each gt's best anchor; MMDetection loops over gts, so a later
            # gt wins a shared anchor
            gt_max, gt_argmax = ious.max(dim=1)
            low = gt_max >= assigner.min_pos_iou
            forced = torch.full_like(assigned, -1).view(-1).scatter_reduce(
                0, img_of[low] * num_anchors + gt_argmax[low], local[low],
                reduce='amax')
            forced = forced.view(num_imgs, num_anchors)
            assigned = torch.where(forced >= 0, forced + 1, assigned)
        return assigned, gt_boxes, gt_labels
