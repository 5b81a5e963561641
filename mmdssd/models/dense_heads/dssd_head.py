"""DSSD head: prediction modules + SSD predictors + batched SSD loss (and
an optional cross-class score decay after NMS)."""
import math
from typing import Dict, List, Optional, Sequence, Tuple, Union

import torch
import torch.nn as nn
from mmdet.models.dense_heads import SSDHead
from mmdet.models.losses import CrossEntropyLoss, smooth_l1_loss
from mmdet.models.task_modules.samplers import PseudoSampler
from mmdet.registry import MODELS
from mmdet.structures.bbox import get_box_tensor
from mmdet.utils import (ConfigType, InstanceList, MultiConfig, OptConfigType,
                         OptInstanceList)
from mmengine.config import ConfigDict
from mmengine.structures import InstanceData
from torch import Tensor

from ..layers import PredictionModule, check_decay_cfg, cross_class_decay
from ..losses import MapCrossEntropyLoss
from ..task_modules.assigners import BatchMaxIoUAssigner


@MODELS.register_module()
class DSSDHead(SSDHead):
    """DSSD head: a prediction module per level, then SSD's predictors.

    Training is SSD's: IoU-0.5 matching with every ground truth's best box
    forced positive, softmax cross-entropy with 3:1 hard negative mining,
    smooth-L1 on positives, both divided by the number of positives. The
    loss is computed for the whole batch at once (``BatchMaxIoUAssigner``,
    one cross-entropy, one top-k for the negatives of all images) and
    equals MMDetection's per-image ``SSDHead`` definition; with another
    assigner, or ``batched_loss=False``, MMDetection's implementation is
    used (:meth:`fallback_reason` says why).

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
        anchor_generator (dict): Prior generator config, e.g. the DSSD321
            boxes of ``configs/_base_/models/dssd321_r101.py``.
        bbox_coder (dict): Box coder; centre-size deltas with variances
            (0.1, 0.1, 0.2, 0.2).
        loss_cls (dict): Per-box classification loss before mining:
            ``MapCrossEntropyLoss`` (default, on the predictors' maps) or
            another softmax loss such as ``CrossEntropyLoss`` with class
            weights (on flattened scores, ``reduction_override='none'``).
        batched_loss (bool): Batched loss (default) or MMDetection's
            per-image one.
        bg_prior_prob (float, optional): Background probability that every
            default box starts with, set through the class predictors'
            background biases (None: zero biases, as SSD).
        reg_decoded_bbox (bool): Regress decoded boxes. Defaults to False.
        train_cfg (dict, optional): SSD training config (assigner,
            ``neg_pos_ratio``, ``smoothl1_beta``...).
        test_cfg (dict, optional): Test config (NMS...). Besides SSD's,
            ``cross_class_decay=dict(iou_threshold=t, factor=f)`` multiplies
            by ``f`` the score of a detection that a better-scored one of
            another class overlaps by more than ``t``, after NMS (not
            where NMS is left to test-time augmentation), and ranks the
            detections again (see
            :func:`~mmdssd.models.layers.cross_class_decay`).
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
                 anchor_generator: OptConfigType = None,
                 bbox_coder: ConfigType = dict(
                     type='DeltaXYWHBBoxCoder',
                     clip_border=True,
                     target_means=[.0, .0, .0, .0],
                     target_stds=[0.1, 0.1, 0.2, 0.2]),
                 loss_cls: ConfigType = dict(type='MapCrossEntropyLoss'),
                 batched_loss: bool = True,
                 bg_prior_prob: Optional[float] = None,
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
        if anchor_generator is None:
            raise ValueError('DSSDHead needs anchor_generator (the DSSD321 '
                             'boxes: configs/_base_/models/dssd321_r101.py)')
        num_levels = len(in_channels)
        self.pm_variants = self._per_level(prediction_module, num_levels,
                                           'prediction_module')
        self.pred_kernel_sizes = self._per_level(pred_kernel_size,
                                                 num_levels,
                                                 'pred_kernel_size')
        even = [k for k in self.pred_kernel_sizes if k < 1 or k % 2 == 0]
        if even:
            raise ValueError(
                f'pred_kernel_size must be odd and >= 1, got {even[0]}')
        self.pm_mid_channels = pm_mid_channels
        self.pm_out_channels = pm_out_channels
        self.batched_loss = batched_loss
        if bg_prior_prob is not None and not 0 < bg_prior_prob < 1:
            raise ValueError(
                f'bg_prior_prob must be in (0, 1), got {bg_prior_prob}')
        self.bg_prior_prob = bg_prior_prob
        check_decay_cfg((test_cfg or {}).get('cross_class_decay'))
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

    def init_weights(self) -> None:
        """``init_cfg``, then the background biases of ``bg_prior_prob``."""
        super().init_weights()
        if self.bg_prior_prob is None:
            return
        # softmax over a background logit b and num_classes zero logits:
        # p = e^b / (e^b + num_classes)
        p = self.bg_prior_prob
        bias = math.log(p * self.num_classes / (1 - p))
        with torch.no_grad():
            for conv in self.cls_convs:
                conv.bias.view(-1, self.cls_out_channels)[:, -1] = bias

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
    def fallback_reason(self) -> str:
        """Why MMDetection's per-image loss is used instead of the batched
        one (``''``: the batched loss, which reproduces it, is used). The
        assigner's own options are checked when it is built."""
        checks = [
            (self.batched_loss, 'batched_loss=False'),
            (not self.reg_decoded_bbox, 'reg_decoded_bbox=True'),
            (isinstance(getattr(self, 'assigner', None), BatchMaxIoUAssigner),
             f'assigner {type(getattr(self, "assigner", None)).__name__} '
             '(BatchMaxIoUAssigner assigns the batch at once)'),
            (isinstance(getattr(self, 'sampler', None), PseudoSampler),
             'a sampler other than PseudoSampler'),
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
        reason = self.fallback_reason()
        if reason:
            return self._fallback_loss(reason, cls_scores, bbox_preds,
                                       batch_gt_instances, batch_img_metas,
                                       batch_gt_instances_ignore)
        featmap_sizes = [s.shape[-2:] for s in cls_scores]
        anchors, valid = self._anchors_and_flags(featmap_sizes,
                                                 batch_img_metas,
                                                 cls_scores[0].device)
        assigned, gt_boxes, gt_labels = self.assigner.batch_assign(
            anchors, valid, batch_gt_instances, self.num_classes)
        pos = assigned > 0
        gt_idx = (assigned - 1).clamp(min=0)
        labels = torch.where(pos, gt_labels.gather(1, gt_idx),
                             torch.full_like(assigned, self.num_classes))
        # MMDetection's SamplingResult counts max(num_pos, 1) per image
        avg_factor = pos.sum(1).clamp(min=1).sum().float()
        loss_cls = self._mined_cls_loss(
            self._per_box_cls_loss(cls_scores, labels), pos,
            assigned == 0) / avg_factor
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

    def _fallback_loss(self, reason: str, *args) -> Dict:
        """MMDetection's per-image SSDHead loss, for what the batched one
        does not cover. That loss computes plain softmax cross-entropy
        inline and cannot apply another ``loss_cls``, so one is refused."""
        if not (self._is_plain_softmax_ce()
                and self.loss_cls.loss_weight == 1.0):
            raise ValueError(
                f'DSSDHead: loss_cls={self.loss_cls!r} needs the batched '
                f'loss, but this batch falls back to MMDetection\'s '
                f'SSDHead loss ({reason}), which ignores loss_cls; '
                'use plain CrossEntropyLoss with loss_weight=1 there')
        return super().loss_by_feat(*args)

    def _mined_cls_loss(self, loss_all: Tensor, pos: Tensor,
                        neg: Tensor) -> Tensor:
        """Summed classification loss of the positives and of the hardest
        negatives, ``neg_pos_ratio`` of them per positive in each image."""
        num_neg = torch.minimum(pos.sum(1) * self.train_cfg['neg_pos_ratio'],
                                neg.sum(1))
        loss_pos = torch.where(pos, loss_all, 0).sum()
        pos_weight = self.train_cfg.get('pos_weight', -1)
        if pos_weight > 0:
            loss_pos = loss_pos * pos_weight
        max_neg = int(num_neg.max())
        if max_neg == 0:
            return loss_pos + loss_all.new_zeros(())
        top, _ = loss_all.masked_fill(~neg, float('-inf')).topk(max_neg, 1)
        keep = torch.arange(max_neg, device=top.device)[None] < num_neg[:,
                                                                        None]
        return loss_pos + torch.where(keep, top, 0).sum()

    def _per_box_cls_loss(self, cls_scores: List[Tensor],
                          labels: Tensor) -> Tensor:
        """Classification loss of every box, (B, A), unreduced: on the
        predictors' maps (``MapCrossEntropyLoss``), or through any other
        ``loss_cls`` on flattened (B * A, C) scores."""
        channels = self.cls_out_channels
        if isinstance(self.loss_cls, MapCrossEntropyLoss):
            return self.loss_cls(cls_scores, labels, channels)
        num_imgs = labels.shape[0]
        flat = torch.cat([
            s.permute(0, 2, 3, 1).reshape(num_imgs, -1, channels)
            for s in cls_scores
        ], 1)
        return self.loss_cls(
            flat.reshape(-1, channels),
            labels.reshape(-1),
            reduction_override='none').view(num_imgs, -1)

    def _is_plain_softmax_ce(self) -> bool:
        """Whether ``loss_cls`` is unweighted softmax cross-entropy."""
        loss = self.loss_cls
        return (isinstance(loss, CrossEntropyLoss) and not loss.use_sigmoid
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

    # ------------------------------------------------------------- predict
    def _bbox_post_process(self,
                           results: InstanceData,
                           cfg: ConfigDict,
                           rescale: bool = False,
                           with_nms: bool = True,
                           img_meta: Optional[dict] = None) -> InstanceData:
        """MMDetection's post-processing (rescale, NMS, ``max_per_img``),
        then the ``cross_class_decay`` of ``cfg`` where it has one: the
        decayed scores, best first."""
        results = super()._bbox_post_process(results, cfg, rescale,
                                             with_nms, img_meta)
        decay = cfg.get('cross_class_decay')
        if not (with_nms and decay) or len(results) < 2:
            return results
        results.scores = cross_class_decay(
            get_box_tensor(results.bboxes), results.scores, results.labels,
            **decay)
        return results[results.scores.argsort(descending=True, stable=True)]
