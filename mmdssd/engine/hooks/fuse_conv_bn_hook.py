from mmdet.registry import HOOKS
from mmengine.hooks import Hook

from ...models.utils import fuse_bn
from .utils import unwrapped_model


@HOOKS.register_module()
class FuseConvBNHook(Hook):
    """Fold BatchNorm into convolutions once the test checkpoint is loaded.

    Used by ``tools/test.py --fuse-conv-bn``; add it to ``custom_hooks`` to
    test folded models from a config.
    """

    priority = 'LOWEST'

    def before_test(self, runner) -> None:
        model = unwrapped_model(runner)
        model.eval()
        fuse_bn(model)
