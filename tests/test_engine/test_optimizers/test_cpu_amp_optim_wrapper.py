"""CPU mixed precision: bf16 autocast without loss scaling, refused where
the CPU has no native bf16, and the choice of precision by measurement."""
import copy

import pytest
import torch
from mmdet.registry import MODELS
from mmdet.structures import DetDataSample
from mmengine.config import Config
from mmengine.optim import build_optim_wrapper
from mmengine.structures import InstanceData

from mmdssd.engine import (CPUAmpOptimWrapper, UnsupportedCPUPrecisionError,
                           choose_training_precision, cpu_bf16_support)
from mmdssd.engine.optimizers import precision as precision_module

from mmdssd.utils.config_paths import config_without_download

from ...conftest import TINY

SUPPORTED, WHY = cpu_bf16_support()


def _wrapper(model, **kwargs):
    return build_optim_wrapper(model, dict(
        type='CPUAmpOptimWrapper', check_hardware=False,
        optimizer=dict(type='SGD', lr=0.1), **kwargs))


def test_refused_where_the_cpu_has_no_native_bf16():
    model = torch.nn.Linear(4, 4)
    cfg = dict(type='CPUAmpOptimWrapper', optimizer=dict(type='SGD', lr=0.1))
    if SUPPORTED:
        assert isinstance(build_optim_wrapper(model, cfg), CPUAmpOptimWrapper)
        assert 'AMX' in WHY or 'AVX-512 BF16' in WHY
    else:
        with pytest.raises(UnsupportedCPUPrecisionError,
                           match=r'has neither AVX-512 BF16 nor AMX.*train '
                           'in fp32 here'):
            build_optim_wrapper(model, cfg)
    with pytest.raises(ValueError, match="CPU mixed precision is bfloat16"):
        _wrapper(model, dtype='float16')


def test_autocasts_to_bf16_and_updates_without_scaling():
    """Inside the context convolutions run in bf16; the gradients reach
    float32 parameters unscaled, and the update is plain SGD's."""
    torch.manual_seed(0)
    model = torch.nn.Conv2d(3, 4, 3)
    wrapper = _wrapper(model)
    x = torch.rand(2, 3, 8, 8)
    before = model.weight.detach().clone()
    with wrapper.optim_context(model):
        out = model(x)
        assert out.dtype == torch.bfloat16
        loss = out.float().square().mean()
    wrapper.backward(loss)
    grad = model.weight.grad.clone()
    assert grad.dtype == torch.float32 and grad.abs().sum() > 0
    wrapper.step()
    assert model.weight.dtype == torch.float32
    # the step is weight - lr * grad, the gradient as backward left it
    torch.testing.assert_close(model.weight.detach(), before - 0.1 * grad)
    state = wrapper.state_dict()
    assert 'loss_scaler' not in state
    state['loss_scaler'] = {'scale': 1.0}  # a GPU AMP checkpoint's
    wrapper.load_state_dict(state)


def _batch(side=128):
    """Two images of ``side`` pixels, a large and a small object each.
    128 reaches every level of the tiny DSSD (the last two are 1x1) at a
    quarter of the pixels of its 256: bf16 is emulated, and slow, where the
    CPU lacks it."""
    sample = DetDataSample(metainfo=dict(
        img_shape=(side, side), pad_shape=(side, side),
        batch_input_shape=(side, side), scale_factor=(1.0, 1.0)))
    boxes = torch.tensor([[16., 32., 144., 96.], [150., 150., 170., 172.]])
    sample.gt_instances = InstanceData(bboxes=boxes * side / 256,
                                       labels=torch.tensor([1, 3]))
    return dict(inputs=[torch.randint(0, 255, (3, side, side),
                                      dtype=torch.uint8)] * 2,
                data_samples=[sample, copy.deepcopy(sample)])


def test_dssd_trains_under_bf16():
    """The tiny DSSD (DMs, PMs, batched loss) takes training steps under
    the wrapper: finite losses in float32, weights updated."""
    torch.manual_seed(0)
    cfg = config_without_download(TINY)
    model = MODELS.build(cfg.model)
    model.init_weights()
    wrapper = _wrapper(model)
    first = next(model.bbox_head.parameters()).detach().clone()
    for _ in range(2):
        losses = model.train_step(_batch(), wrapper)
    for name, value in losses.items():
        assert value.dtype == torch.float32 and torch.isfinite(value), name
    assert not torch.equal(first, next(model.bbox_head.parameters()))


def _times(train_iter):
    return dict(train_iter=train_iter)


class _Measure:
    """A stand-in for the step timing: records which configs (by wrapper
    type) each call got, and returns ``seconds`` of each precision."""

    def __init__(self, **seconds) -> None:
        self.seconds = seconds
        self.calls = []

    def __call__(self, cfgs):
        self.calls.append({k: c.optim_wrapper.type for k, c in cfgs.items()})
        return {k: _times(self.seconds[k]) for k in cfgs}


@pytest.fixture
def fp32_cfg():
    return Config(dict(optim_wrapper=dict(type='OptimWrapper')))


@pytest.fixture
def bf16_cpu(monkeypatch):
    monkeypatch.setattr(precision_module, 'cpu_bf16_support',
                        lambda: (True, 'CPU X has AMX'))


@pytest.mark.parametrize('bf16_s,expected', [(0.3, 'bf16'), (0.6, 'fp32')])
def test_precision_follows_the_measurement(bf16_cpu, fp32_cfg, bf16_s,
                                           expected):
    measure = _Measure(fp32=0.5, bf16=bf16_s)
    chosen, why, times = choose_training_precision(fp32_cfg, measure)
    # one call with both: the two precisions are timed in turns
    assert measure.calls == [
        dict(fp32='OptimWrapper', bf16='CPUAmpOptimWrapper')
    ]
    assert why.startswith(expected + ': a bf16 step took '
                          f'{bf16_s / 0.5:.2f}x the fp32 step here')
    assert 'CPU X has AMX' in why
    assert chosen.optim_wrapper.type == (
        'CPUAmpOptimWrapper' if expected == 'bf16' else 'OptimWrapper')
    assert times['train_iter'] == min(bf16_s, 0.5)
    assert fp32_cfg.optim_wrapper.type == 'OptimWrapper'  # not in place


@pytest.mark.parametrize('precision,wrapper', [('fp32', 'OptimWrapper'),
                                               ('bf16', 'CPUAmpOptimWrapper')])
def test_forced_precision_times_only_itself(bf16_cpu, fp32_cfg, precision,
                                            wrapper):
    measure = _Measure(fp32=0.4, bf16=0.4)
    chosen, why, times = choose_training_precision(fp32_cfg, measure,
                                                   precision)
    assert measure.calls == [{precision: wrapper}]
    assert chosen.optim_wrapper.type == wrapper
    assert why.startswith(f'{precision} (asked for')
    assert times == _times(0.4)


def test_precision_is_fp32_untimed_without_native_bf16(monkeypatch,
                                                       fp32_cfg):
    monkeypatch.setattr(precision_module, 'cpu_bf16_support',
                        lambda: (False, 'CPU Y has neither'))
    measure = _Measure(fp32=0.5)  # a bf16 config would find no seconds
    chosen, why, times = choose_training_precision(fp32_cfg, measure)
    assert measure.calls == [dict(fp32='OptimWrapper')]
    assert chosen.optim_wrapper.type == 'OptimWrapper'
    assert why == 'fp32: CPU Y has neither; bf16 not timed'
    assert times == _times(0.5)
