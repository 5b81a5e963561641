"""Progressive resizing: train on smaller inputs early, full size last."""
from typing import List, Optional, Sequence, Tuple

from mmdet.models.data_preprocessors import BatchSyncRandomResize
from mmdet.registry import MODELS
from mmdet.structures import DetDataSample
from mmengine.logging import MessageHub
from torch import Tensor


@MODELS.register_module()
class ProgressiveResize(BatchSyncRandomResize):
    """Resize training batches to a size that grows with training progress.

    A batch augment (``DetDataPreprocessor(batch_augments=[...])``, training
    only): MMDetection's :class:`BatchSyncRandomResize` with the random size
    replaced by a schedule. Early iterations run on smaller inputs, which
    cost less (the step time of a conv net scales with the pixels); the
    last phase runs at the size the training pipeline gives. The boxes,
    ``img_shape``, ``pad_shape`` and ``batch_input_shape`` are scaled with
    the images by the parent class.

    Progress is ``iter / max_iters`` from the current :class:`MessageHub`
    (MMEngine's ``RuntimeInfoHook`` keeps both there during training), so
    every rank picks the same size without communication and a resumed run
    picks up where it stopped. Outside a training loop (no ``max_iters``)
    the batch is left as it is.

    Args:
        phases (Sequence[tuple[float, int]]): ``(until, size)`` pairs in
            increasing ``until``: before ``until`` (a fraction of
            ``max_iters``, in (0, 1)) the longer input side is resized to
            ``size`` (the shorter keeps the aspect ratio, rounded to
            ``size_divisor``). From the last ``until`` on, the batch keeps
            the pipeline's size.
        size_divisor (int): Resized sides are multiples of it. Defaults
            to 32.

    Example:
        >>> # half the iterations at 192, a quarter at 224, the rest at
        >>> # the pipeline's 256
        >>> aug = ProgressiveResize(phases=((0.5, 192), (0.75, 224)))
    """

    def __init__(self,
                 phases: Sequence[Tuple[float, int]],
                 size_divisor: int = 32) -> None:
        super().__init__(
            random_size_range=(size_divisor, size_divisor),
            interval=1,
            size_divisor=size_divisor)
        phases = [tuple(p) for p in phases]
        last = 0.0
        for i, phase in enumerate(phases):
            if len(phase) != 2:
                raise ValueError(f'ProgressiveResize: phases[{i}]={phase!r} '
                                 'is not an (until, size) pair')
            until, size = phase
            if not last < until < 1:
                raise ValueError(
                    f'ProgressiveResize: phases[{i}] until={until!r} must '
                    f'be in ({last}, 1) (fractions of training, '
                    'increasing)')
            if int(size) != size or size < size_divisor or (
                    size % size_divisor):
                raise ValueError(
                    f'ProgressiveResize: phases[{i}] size={size!r} must be '
                    f'a multiple of size_divisor={size_divisor}')
            last = until
        self.phases: List[Tuple[float, int]] = [(float(u), int(s))
                                                for u, s in phases]

    @property
    def boundaries(self) -> List[float]:
        """Where each input-size phase ends, as fractions of training: one
        per ``phases`` entry, then 1.0 for the pipeline-size phase."""
        return [until for until, _ in self.phases] + [1.0]

    @staticmethod
    def of(model) -> Optional['ProgressiveResize']:
        """The ``ProgressiveResize`` among ``model``'s batch augments (a
        wrapped model's too), or None."""
        model = getattr(model, 'module', model)
        augs = getattr(model.data_preprocessor, 'batch_augments', None)
        found = [a for a in augs or [] if isinstance(a, ProgressiveResize)]
        return found[0] if found else None

    def size_at(self, progress: float) -> Optional[int]:
        """The longer side at ``progress`` (fraction of training), or None
        for the pipeline's own size."""
        for until, size in self.phases:
            if progress < until:
                return size
        return None

    def _progress(self) -> Optional[float]:
        hub = MessageHub.get_current_instance()
        max_iters, it = hub.get_info('max_iters'), hub.get_info('iter')
        if not max_iters or it is None:
            return None
        return it / max_iters

    def target_size(self, h: int, w: int,
                    progress: Optional[float]) -> Tuple[int, int]:
        """``(h, w)`` of an ``h`` x ``w`` batch at ``progress`` (None:
        outside training, the batch's own size)."""
        size = None if progress is None else self.size_at(progress)
        if size is None:
            return h, w
        scale = size / max(h, w)
        div = self._size_divisor
        return (max(div, round(h * scale / div) * div),
                max(div, round(w * scale / div) * div))

    def forward(self, inputs: Tensor, data_samples: List[DetDataSample]
                ) -> Tuple[Tensor, List[DetDataSample]]:
        """Resize ``inputs`` and the boxes of ``data_samples`` to the size
        of the current point of training."""
        h, w = inputs.shape[-2:]
        progress = self._progress()
        if progress is None:
            return inputs, data_samples
        # the parent resizes (images, boxes, shapes) to ``_input_size``
        self._input_size = self.target_size(h, w, progress)
        return super().forward(inputs, data_samples)

    def _get_random_size(self, aspect_ratio: float,
                         device) -> Tuple[int, int]:
        # the parent asks for the next iteration's size here; the schedule
        # sets it at the start of that forward, so keep this one's (nothing
        # random, nothing to broadcast between ranks)
        return self._input_size
