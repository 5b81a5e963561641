"""Workarounds for the OpenMMLab stack on current torch/numpy.

Each function fixes one breakage of the stack (listed in
``docs/en/notes/compatibility.md``) at import time of :mod:`mmdssd`,
without touching site-packages. Every one of them is idempotent and is
covered by ``tests/test_utils/test_compat.py``.
"""
import pickle
from typing import List

import numpy as np
import torch


def _history_buffer_getattr(obj: object, name: str) -> object:
    """The only ``getattr`` a runner checkpoint needs.

    ``HistoryBuffer._statistics_methods`` maps names to functions such as
    ``HistoryBuffer.min``, which pickle stores as ``getattr(HistoryBuffer,
    'min')``. Allowing ``builtins.getattr`` itself would let a checkpoint
    read any attribute of any allowed object; this stand-in, registered
    under that name, resolves HistoryBuffer's statistics methods only.
    """
    from mmengine.logging.history_buffer import HistoryBuffer
    # the built-in statistics, plus any registered with register_statistics
    known = {'min', 'max', 'current', 'mean',
             *HistoryBuffer._statistics_methods}
    if obj is HistoryBuffer and name in known:
        return getattr(obj, name)
    raise pickle.UnpicklingError(
        f'mmdssd: a checkpoint asked for getattr({obj!r}, {name!r}); only '
        'HistoryBuffer statistics methods are allowed under weights_only')


def _checkpoint_globals() -> List[object]:
    """The non-tensor types MMEngine runner checkpoints pickle.

    A runner checkpoint holds ``meta`` (numpy scalars such as the seed and
    per-iteration statistics) and ``message_hub`` (MMEngine's
    ``HistoryBuffer`` objects, which store numpy arrays). Nothing else beyond
    what torch already allows is needed; the list is kept exact on purpose so
    that ``weights_only`` keeps refusing arbitrary code.
    """
    from mmengine.logging.history_buffer import HistoryBuffer

    allowed: List[object] = [
        HistoryBuffer, np.ndarray, np.dtype,
        (_history_buffer_getattr, 'builtins.getattr')
    ]
    multiarray = getattr(np, '_core', None)
    multiarray = getattr(multiarray, 'multiarray', None) or np.core.multiarray
    allowed += [multiarray._reconstruct, multiarray.scalar]
    # numpy >= 1.25 pickles dtypes by their class (np.dtypes.Float64DType...).
    dtypes = getattr(np, 'dtypes', None)
    if dtypes is not None:
        allowed += [
            type(np.dtype(name)) for name in (
                'bool', 'int8', 'int16', 'int32', 'int64', 'uint8', 'uint16',
                'uint32', 'uint64', 'float16', 'float32', 'float64')
        ]
    return allowed


def allow_checkpoint_globals() -> None:
    """Let ``torch.load(weights_only=True)`` read MMEngine checkpoints.

    torch >= 2.6 defaults to ``weights_only=True``; MMEngine 0.10.7 calls
    ``torch.load`` without the argument, so ``load_from``, ``--resume`` and
    ``tools/test.py`` fail with "Unsupported global". We allow exactly the
    types MMEngine/mmdssd checkpoints hold instead of turning the safety off
    (``TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD=1``).
    """
    add_safe_globals = getattr(torch.serialization, 'add_safe_globals', None)
    if add_safe_globals is not None:  # torch < 2.4 does not need it
        add_safe_globals(_checkpoint_globals())


def patch_ssdhead_loss_cls() -> None:
    """Give mmdet 3.3.0's ``SSDHead`` the ``loss_cls`` it never sets.

    ``BaseDenseHead._predict_by_feat_single`` reads ``self.loss_cls``, which
    ``SSDHead.__init__`` never assigns: stock SSD trains, then crashes at its
    first validation. SSD's classification loss is a softmax cross-entropy
    (computed inline in ``SSDHead.loss_by_feat_single``), so ``SSDHead``
    gets a read-only ``loss_cls`` property returning a
    ``CrossEntropyLoss(use_sigmoid=False)`` describing exactly that. A head
    that registers its own ``loss_cls`` module (a fixed mmdet, or
    :class:`mmdssd.models.DSSDHead`) gets that one back: a plain class
    attribute would shadow it, since ``nn.Module`` keeps submodules in
    ``_modules``.
    """
    from mmdet.models.dense_heads import SSDHead
    from mmdet.models.losses import CrossEntropyLoss

    if 'loss_cls' in vars(SSDHead):
        return
    softmax_ce = CrossEntropyLoss(use_sigmoid=False)

    def loss_cls(self):
        return self._modules.get('loss_cls', softmax_ce)

    SSDHead.loss_cls = property(loss_cls, doc=patch_ssdhead_loss_cls.__doc__)


def apply_all() -> None:
    """Apply every workaround (called when :mod:`mmdssd` is imported)."""
    allow_checkpoint_globals()
    patch_ssdhead_loss_cls()
