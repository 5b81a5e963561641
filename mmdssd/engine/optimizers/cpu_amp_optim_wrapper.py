"""Mixed precision on the CPU: MMEngine's ``AmpOptimWrapper`` for bf16.

MMEngine's wrapper asserts a GPU and scales the loss for float16. On a
CPU the low precision is bfloat16, which has float32's exponent range: no
loss scaling is needed, so this wrapper autocasts the forward pass and the
loss to bfloat16 and otherwise updates exactly as ``OptimWrapper``.
"""
from contextlib import contextmanager
from typing import Tuple, Union

import torch
from mmengine.optim import AmpOptimWrapper, OptimWrapper
from mmengine.registry import OPTIM_WRAPPERS

from mmdssd.utils.cpu_info import cpu_description


class UnsupportedCPUPrecisionError(RuntimeError):
    """bf16 asked for on a CPU without native bf16 arithmetic."""


def cpu_bf16_support() -> Tuple[bool, str]:
    """Whether this CPU has native bf16 arithmetic (AVX-512 BF16 or AMX),
    and a sentence saying which it has. Elsewhere torch emulates bf16,
    which is slower than fp32."""
    avx512_bf16 = torch.cpu._is_avx512_bf16_supported()
    amx = torch.cpu._is_amx_tile_supported()
    if amx or avx512_bf16:
        kind = 'AMX' if amx else 'AVX-512 BF16'
        return True, f'{cpu_description()} has {kind}'
    return False, (f'{cpu_description()} has neither AVX-512 BF16 nor AMX: '
                   'torch would emulate bf16, slower than fp32')


@OPTIM_WRAPPERS.register_module()
class CPUAmpOptimWrapper(AmpOptimWrapper):
    """``AmpOptimWrapper`` for CPUs: bfloat16 autocast, no loss scaling.

    Args:
        dtype (str or torch.dtype): ``'bfloat16'``, the only CPU autocast
            type that needs no loss scaling.
        check_hardware (bool): Refuse a CPU without native bf16 (see
            :func:`cpu_bf16_support`). ``False`` trains with torch's
            emulation there (correct, slow).
        **kwargs: Arguments of MMEngine's ``OptimWrapper`` (``optimizer``,
            ``clip_grad``, ``accumulative_counts``).
    """

    def __init__(self,
                 dtype: Union[str, torch.dtype] = 'bfloat16',
                 check_hardware: bool = True,
                 **kwargs) -> None:
        if dtype not in ('bfloat16', torch.bfloat16):
            raise ValueError(
                f'optim_wrapper.dtype={dtype!r}: CPU mixed precision is '
                "bfloat16 (float16 would need loss scaling); use 'bfloat16'")
        if check_hardware:
            supported, why = cpu_bf16_support()
            if not supported:
                raise UnsupportedCPUPrecisionError(
                    f'--amp / CPUAmpOptimWrapper: {why}; train in fp32 here '
                    '(or set optim_wrapper.check_hardware=False to emulate)')
        # AmpOptimWrapper.__init__ asserts a GPU and builds a GradScaler
        OptimWrapper.__init__(self, **kwargs)
        self.cast_dtype = torch.bfloat16
        self.loss_scaler = None
        self._scale_update_param = None

    def backward(self, loss: torch.Tensor, **kwargs) -> None:
        loss.backward(**kwargs)
        self._inner_count += 1

    def step(self, **kwargs) -> None:
        OptimWrapper.step(self, **kwargs)

    def state_dict(self) -> dict:
        return OptimWrapper.state_dict(self)

    def load_state_dict(self, state_dict: dict) -> None:
        state_dict.pop('loss_scaler', None)  # a GPU AMP checkpoint's
        OptimWrapper.load_state_dict(self, state_dict)

    @contextmanager
    def optim_context(self, model: torch.nn.Module):
        with OptimWrapper.optim_context(self, model), torch.autocast(
                'cpu', dtype=self.cast_dtype):
            yield
