"""The deployed graph: image batch in, final detections out.

:class:`EndToEndDetector` wraps a trained single-stage detector (any mmdssd
config, or stock MMDetection SSD) so that one traced graph does what
``model.predict`` does: normalisation, the network, box decoding, the
per-level ``nms_pre`` selection, the score threshold, class-wise NMS,
the ``max_per_img`` cut and, where a :class:`~mmdssd.models.DSSDHead`'s
``test_cfg`` has one, its ``cross_class_decay``. It reproduces MMDetection's
``BaseDenseHead._predict_by_feat_single`` + ``_bbox_post_process`` step by
step (not MMDeploy's approximation of it), so the exported model gives the
same detections; only the rescale to the original image size is left to
the runtime side, which knows each image's scale factor.
"""
from typing import Tuple

import numpy as np
import torch
from mmcv.utils import ext_loader
from torch import Tensor, nn

from ..models.dense_heads import DSSDHead
from ..models.layers import cross_class_decay


class UnsupportedExportError(ValueError):
    """A config or an operation the ONNX export cannot represent."""


# mmcv's compiled NMS, the kernel of mmdet's batched_nms (calling it through
# mmcv's own autograd Function would nest two Functions inside a trace)
_ext = ext_loader.load_ext('_ext', ['nms'])


class _NonMaxSuppression(torch.autograd.Function):
    """ONNX ``NonMaxSuppression`` (class-wise, batched); eager forward with
    mmcv's NMS so the wrapper also runs, and traces, in PyTorch.

    Returns ``(K, 3)`` int64 rows ``(batch, class, box)``.
    """

    @staticmethod
    def forward(ctx, boxes, scores, max_per_class, iou_threshold,
                score_threshold):
        rows = []
        for b in range(boxes.shape[0]):
            for c in range(scores.shape[1]):
                keep = torch.nonzero(scores[b, c] > score_threshold)[:, 0]
                if keep.numel() == 0:
                    continue
                kept = _ext.nms(
                    boxes[b, keep], scores[b, c, keep],
                    iou_threshold=float(iou_threshold), offset=0)
                kept = keep[kept[:max_per_class]]
                rows.append(
                    torch.stack([
                        torch.full_like(kept, b),
                        torch.full_like(kept, c), kept
                    ], 1))
        if not rows:
            return boxes.new_zeros((0, 3), dtype=torch.long)
        return torch.cat(rows)

    @staticmethod
    def symbolic(g, boxes, scores, max_per_class, iou_threshold,
                 score_threshold):
        return g.op(
            'NonMaxSuppression', boxes, scores,
            g.op('Constant',
                 value_t=torch.tensor([max_per_class], dtype=torch.long)),
            g.op('Constant',
                 value_t=torch.tensor([iou_threshold], dtype=torch.float)),
            g.op('Constant',
                 value_t=torch.tensor([score_threshold], dtype=torch.float)))


def _check_supported(detector: nn.Module) -> None:
    """Refuse, by name, what the graph below does not reproduce."""
    from mmdet.models.dense_heads import AnchorHead
    from mmdet.models.task_modules.coders import DeltaXYWHBBoxCoder
    name = type(detector).__name__
    head = getattr(detector, 'bbox_head', None)
    if head is None or not hasattr(detector, 'extract_feat'):
        raise UnsupportedExportError(
            f'{name}: only single-stage detectors with a bbox_head export '
            '(model.type)')
    if not isinstance(head, AnchorHead):
        raise UnsupportedExportError(
            f'model.bbox_head.type={type(head).__name__}: the export '
            'supports anchor heads (SSDHead, DSSDHead and their kin)')
    if not isinstance(head.bbox_coder, DeltaXYWHBBoxCoder):
        raise UnsupportedExportError(
            f'model.bbox_head.bbox_coder.type='
            f'{type(head.bbox_coder).__name__}: only DeltaXYWHBBoxCoder '
            'is exported')
    cfg = head.test_cfg
    nms_type = cfg.get('nms', {}).get('type', 'nms')
    if nms_type != 'nms':
        raise UnsupportedExportError(
            f"model.test_cfg.nms.type='{nms_type}': ONNX has plain NMS "
            "only; use type='nms'")
    if cfg.get('min_bbox_size', -1) > 0:
        raise UnsupportedExportError(
            f'model.test_cfg.min_bbox_size={cfg.min_bbox_size}: the size '
            'test applies after the rescale to each original image, '
            'which the graph does not know; use 0 or -1')
    if getattr(head.loss_cls, 'custom_cls_channels', False):
        raise UnsupportedExportError(
            f'model.bbox_head.loss_cls.type={type(head.loss_cls).__name__}'
            ': custom classification channels are not exported')


class EndToEndDetector(nn.Module):
    """A trained detector as one graph, for ``torch.onnx.export``.

    Args:
        detector (nn.Module): A built single-stage MMDetection detector in
            eval mode (BN already folded, if wanted).
        input_size (tuple[int, int]): ``(height, width)`` of the network
            input, i.e. the test pipeline's resize; anchors are computed
            for it once here.

    Input: ``(B, 3, H, W)`` float32 images as the test pipeline leaves them
    (resized, BGR as loaded, 0-255). Outputs: ``dets`` ``(B, M, 5)`` boxes
    ``x1, y1, x2, y2`` in input pixels and score, ``labels`` ``(B, M)``,
    best first, with ``M = max_per_img``; unused rows have label -1 and
    score 0.
    """

    def __init__(self, detector: nn.Module,
                 input_size: Tuple[int, int]) -> None:
        super().__init__()
        _check_supported(detector)
        self.detector = detector
        self.input_size = tuple(int(s) for s in input_size)
        head = detector.bbox_head
        prep = detector.data_preprocessor
        self.bgr_to_rgb = bool(getattr(prep, '_channel_conversion', False))
        self.normalize = bool(getattr(prep, '_enable_normalize', False))
        if self.normalize:
            self.register_buffer('mean', prep.mean.detach().clone())
            self.register_buffer('std', prep.std.detach().clone())
        cfg = head.test_cfg
        self.score_thr = float(cfg.get('score_thr', 0.0))
        self.nms_pre = int(cfg.get('nms_pre', -1))
        self.iou_thr = float(cfg.nms.get('iou_threshold', 0.5))
        self.max_per_img = int(cfg.get('max_per_img', 100))
        self.check_size = cfg.get('min_bbox_size', -1) >= 0
        # only our head applies it; another head ignores the key
        decay = (cfg.get('cross_class_decay')
                 if isinstance(head, DSSDHead) else None)
        self.decay = None if not decay else {
            k: float(v) for k, v in dict(decay).items()}
        self.num_classes = head.num_classes
        self.use_sigmoid = bool(head.use_sigmoid_cls)
        coder = head.bbox_coder
        self.register_buffer('means', torch.tensor(coder.means).float())
        self.register_buffer('stds', torch.tensor(coder.stds).float())
        # the wh_ratio_clip default of DeltaXYWHBBoxCoder.decode
        self.max_ratio = float(np.abs(np.log(16 / 1000)))
        self.clip_border = bool(coder.clip_border)
        self.ctr_clamp = (float(coder.ctr_clamp)
                          if coder.add_ctr_clamp else None)
        with torch.no_grad():
            dummy = torch.zeros(1, 3, *self.input_size)
            cls_maps = head(detector.extract_feat(dummy))[0]
            sizes = [f.shape[-2:] for f in cls_maps]
        priors = head.prior_generator.grid_priors(sizes, device='cpu')
        for i, p in enumerate(priors):
            self.register_buffer(f'priors_{i}', p.float())
        # candidates per level after nms_pre; a plain int, because NMS's
        # per-class cap must be a constant (a traced size fails there)
        self.level_topk = [
            len(p) * self.num_classes if self.nms_pre <= 0 else min(
                self.nms_pre, len(p) * self.num_classes) for p in priors
        ]

    def decode(self, priors: Tensor, deltas: Tensor) -> Tensor:
        """MMDetection's ``delta2bbox`` on ``(B, N, 4)``."""
        deltas = deltas * self.stds + self.means
        pxy = (priors[..., :2] + priors[..., 2:]) * 0.5
        pwh = priors[..., 2:] - priors[..., :2]
        dxy_wh = pwh * deltas[..., :2]
        dwh = deltas[..., 2:]
        if self.ctr_clamp is not None:
            dxy_wh = dxy_wh.clamp(min=-self.ctr_clamp, max=self.ctr_clamp)
            dwh = dwh.clamp(max=self.max_ratio)
        else:
            dwh = dwh.clamp(min=-self.max_ratio, max=self.max_ratio)
        gxy = pxy + dxy_wh
        gwh = pwh * dwh.exp()
        x1y1 = gxy - gwh * 0.5
        x2y2 = gxy + gwh * 0.5
        if self.clip_border:
            h, w = self.input_size
            x1y1 = torch.stack([x1y1[..., 0].clamp(0, w),
                                x1y1[..., 1].clamp(0, h)], -1)
            x2y2 = torch.stack([x2y2[..., 0].clamp(0, w),
                                x2y2[..., 1].clamp(0, h)], -1)
        return torch.cat([x1y1, x2y2], -1)

    def forward(self, images: Tensor) -> Tuple[Tensor, Tensor]:
        x = images
        if self.bgr_to_rgb:
            x = x.flip(1)
        if self.normalize:
            x = (x - self.mean) / self.std
        head = self.detector.bbox_head
        cls_scores, bbox_preds = head(self.detector.extract_feat(x))
        num_img = images.shape[0]
        c = self.num_classes
        boxes, scores, labels = [], [], []
        for level, (cls, reg) in enumerate(zip(cls_scores, bbox_preds)):
            priors = getattr(self, f'priors_{level}')
            cls = cls.permute(0, 2, 3, 1).reshape(num_img, priors.shape[0],
                                                  -1)
            prob = cls.sigmoid() if self.use_sigmoid else \
                cls.softmax(-1)[..., :c]
            flat = prob.reshape(num_img, -1)  # (anchor, class) pairs
            top, idx = flat.topk(self.level_topk[level], dim=1)
            anchor = torch.div(idx, c, rounding_mode='floor')
            deltas = reg.permute(0, 2, 3, 1).reshape(num_img, -1, 4)
            deltas = deltas.gather(1, anchor.unsqueeze(-1).expand(-1, -1, 4))
            boxes.append(self.decode(priors[anchor], deltas))
            scores.append(top)
            labels.append(idx - anchor * c)
        boxes = torch.cat(boxes, 1)
        scores = torch.cat(scores, 1)
        labels = torch.cat(labels, 1)
        keep = scores > self.score_thr
        if self.check_size:  # min_bbox_size == 0: drop degenerate boxes
            keep = keep & (boxes[..., 2] > boxes[..., 0]) & (
                boxes[..., 3] > boxes[..., 1])
        scores = scores * keep.float()
        # class-wise NMS over the candidate pairs: each pair competes only
        # within its own class, like mmdet's batched_nms
        per_class = nn.functional.one_hot(labels, c).permute(0, 2, 1)
        selected = _NonMaxSuppression.apply(
            boxes, scores.unsqueeze(1) * per_class.float(),
            sum(self.level_topk), self.iou_thr, max(self.score_thr, 1e-12))
        img, box = selected[:, 0], selected[:, 2]
        num_sel = selected.shape[0]
        # best max_per_img per image: a dense (image, selected) score table
        # padded with max_per_img empty slots, so topk always has enough
        table = scores.new_full((num_img, num_sel), -1.0)
        table[img, torch.arange(num_sel)] = scores[img, box]
        pad = scores.new_full((num_img, self.max_per_img), -1.0)
        best, slot = torch.cat([table, pad], 1).topk(self.max_per_img, dim=1)
        slot_box = torch.cat([box, box.new_zeros(self.max_per_img)])[slot]
        valid = best > 0
        best = best.clamp(min=0)  # empty slots: score 0, decaying nothing
        out_boxes = boxes.gather(1, slot_box.unsqueeze(-1).expand(-1, -1, 4))
        out_labels = labels.gather(1, slot_box)
        if self.decay is not None:
            best, order = cross_class_decay(out_boxes, best, out_labels,
                                            **self.decay).topk(
                                                self.max_per_img, dim=1)
            out_boxes = out_boxes.gather(
                1, order.unsqueeze(-1).expand(-1, -1, 4))
            out_labels = out_labels.gather(1, order)
            valid = valid.gather(1, order)
        dets = torch.cat([out_boxes, best.unsqueeze(-1)], -1)
        dets = dets * valid.unsqueeze(-1).float()
        out_labels = torch.where(valid, out_labels,
                                 torch.full_like(out_labels, -1))
        return dets, out_labels
