import torch
from mmdet.registry import HOOKS
from mmengine.hooks import Hook

from .utils import unwrapped_model


@HOOKS.register_module()
class ChannelsLastHook(Hook):
    """Run the model in channels-last (NHWC) memory format.

    oneDNN's CPU convolutions skip a layout conversion per call in NHWC,
    which makes small models' training steps faster on the CPU. The
    weights keep their values; only their strides change, and checkpoints
    load into either format.
    """

    priority = 'VERY_HIGH'

    def _convert(self, runner) -> None:
        unwrapped_model(runner).to(memory_format=torch.channels_last)

    def before_train(self, runner) -> None:
        self._convert(runner)

    def before_test(self, runner) -> None:
        self._convert(runner)
