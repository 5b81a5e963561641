from mmdet.registry import HOOKS
from mmengine.hooks import Hook
from mmengine.model import is_model_wrapper
from torch.nn.modules.batchnorm import _BatchNorm


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

    @staticmethod
    def _norms(runner):
        model = runner.model.module if is_model_wrapper(
            runner.model) else runner.model
        return [m for m in model.modules() if isinstance(m, _BatchNorm)]

    def before_train(self, runner) -> None:
        for norm in self._norms(runner):
            norm.requires_grad_(False)

    def before_train_iter(self, runner, batch_idx: int,
                          data_batch=None) -> None:
        for norm in self._norms(runner):
            norm.eval()
