from mmdet.registry import HOOKS
from mmengine.hooks import Hook
from torch.nn.modules.batchnorm import _BatchNorm

from .utils import unwrapped_model


@HOOKS.register_module()
class FreezeNormHook(Hook):
    """Train everything but the BatchNorm layers (DSSD's stage 2).

    The paper's optional stage 2 fine-tunes "all but BN": every BN layer of
    the model keeps its running statistics (eval mode) and its affine
    parameters (no gradient), while convolutions train. MMEngine's loops
    put the model back in train mode at every epoch and after each
    validation, so the BN layers are put back in eval mode before every
    training iteration.
    """

    priority = 'VERY_HIGH'

    def __init__(self) -> None:
        self._norms = []

    def before_train(self, runner) -> None:
        self._norms = [
            m for m in unwrapped_model(runner).modules()
            if isinstance(m, _BatchNorm)
        ]
        for norm in self._norms:
            norm.requires_grad_(False)

    def before_train_iter(self, runner, batch_idx: int,
                          data_batch=None) -> None:
        for norm in self._norms:
            norm.eval()
