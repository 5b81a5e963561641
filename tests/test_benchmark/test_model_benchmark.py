"""benchmark_config in both precisions, the table's step-cost column (the
step and a forward timed in turns), and the training step's profile."""
import pytest
import torch

from mmdssd.benchmark import (benchmark_config, format_step_profiles,
                              format_table)
from mmdssd.benchmark.model_benchmark import STEP_OP_GROUPS, op_time_shares

from ..conftest import TINY


@pytest.fixture(scope='module')
def small_input_config(tmp_path_factory):
    """The tiny DSSD at a 128 input: bf16 is emulated, and slow, on CPUs
    without native bf16."""
    path = tmp_path_factory.mktemp('cfg') / 'tiny_128.py'
    path.write_text(
        f'_base_ = {TINY!r}\n'
        'test_dataloader = dict(dataset=dict(pipeline=[\n'
        "    dict(type='LoadImageFromFile'),\n"
        "    dict(type='Resize', scale=(128, 128), keep_ratio=False),\n"
        "    dict(type='PackDetInputs')]))\n"
        'model = dict(bbox_head=dict(anchor_generator=dict(input_size=128)))'
        '\n')
    return str(path)


@pytest.mark.parametrize('precision', ['fp32', 'bf16'])
def test_train_step_cost_in_forwards(precision, small_input_config):
    result = benchmark_config(small_input_config, device='cpu', warmup=0,
                              repeat=1, train_batch=2, train_steps=1,
                              flops=False, precision=precision)
    assert result['input_size'] == [128, 128]
    assert result['precision'] == precision
    for key in ('latency', 'forward', 'train_step', 'step_forward'):
        assert result[key]['median'] > 0, key
    # one round: the step per image over the forward timed beside it
    expected = (result['train_step']['median'] / 2 /
                result['step_forward']['median'])
    assert result['step_cost']['median'] == pytest.approx(expected)
    row = format_table([result]).splitlines()[2].split('|')
    header = format_table([result]).splitlines()[0].split('|')
    cost = row[header.index(' step/image in forwards (min-max) ')]
    # one round: its median, min and max are the same figure
    assert cost.strip() == f'{expected:.2f} ({expected:.2f}-{expected:.2f})'
    assert row[header.index(' precision ')].strip() == precision


def test_unknown_precision_is_refused():
    with pytest.raises(ValueError, match="'fp32' or 'bf16'"):
        benchmark_config(TINY, device='cpu', warmup=0, repeat=1,
                         train_steps=1, flops=False, precision='fp16')


def _conv_step(norm: bool):
    layers = [torch.nn.Conv2d(3, 8, 3)]
    layers += [torch.nn.BatchNorm2d(8)] if norm else []
    model = torch.nn.Sequential(*layers, torch.nn.ReLU())
    x = torch.rand(2, 3, 32, 32)
    return lambda: model(x).sum().backward()


def test_op_time_shares_groups_a_training_step():
    shares = op_time_shares(_conv_step(norm=True), 'cpu', STEP_OP_GROUPS)
    assert list(shares) == ['conv backward', 'conv forward', 'batch norm',
                            'other']
    assert sum(shares.values()) == pytest.approx(1)
    assert all(shares[k] > 0 for k in ('conv backward', 'conv forward',
                                       'batch norm'))
    without_bn = op_time_shares(_conv_step(norm=False), 'cpu', STEP_OP_GROUPS)
    assert without_bn['batch norm'] == 0 and without_bn['conv backward'] > 0


def test_profiled_training_step_is_reported(small_input_config):
    result = benchmark_config(small_input_config, device='cpu', warmup=0,
                              repeat=1, train_batch=2, train_steps=1,
                              flops=False, profile_step=True)
    shares = result['train_step_profile']
    assert sum(shares.values()) == pytest.approx(1)
    # a DSSD step is mostly its convolutions
    assert shares['conv forward'] + shares['conv backward'] > 0.3
    line = format_step_profiles([result])
    assert line.startswith(f'{small_input_config} (fp32) training step')
    ratio = shares['conv backward'] / shares['conv forward']
    assert f'conv backward {ratio:.2f}x conv forward' in line
    unprofiled = dict(result)
    del unprofiled['train_step_profile']
    assert format_step_profiles([unprofiled]) == ''


def test_step_cost_is_per_round_and_leaves_the_model_training(
        small_input_config, monkeypatch):
    """Each round's step is divided by the forward of the same round, not
    by a forward timed apart: a machine that slows down halfway through
    moves both."""
    from mmdssd.benchmark import model_benchmark
    modes = []
    real = model_benchmark.time_in_turns

    def recording(fns, rounds, warmup=0, prepare=None, sync=None):
        # the forward is re-warmed before each timed call, in eval mode too
        assert list(prepare) == ['step_forward']
        wrapped = {}
        for name, fn in fns.items():
            def call(fn=fn, name=name):
                fn()
                modes.append((name, model.training))
            wrapped[name] = call
        real(wrapped, rounds, warmup, prepare=prepare, sync=sync)
        # a machine twice as slow from the second round on; the third
        # step is cheaper per forward than the others
        return {name: [1., 2., 2.] if name == 'step_forward' else
                [6., 12., 8.] for name in fns}

    torch.manual_seed(0)
    from mmdet.registry import MODELS
    from mmdssd.utils.config_paths import config_without_download
    model = MODELS.build(config_without_download(small_input_config).model)
    step, _ = model_benchmark._train_step(model, (128, 128), 2)
    monkeypatch.setattr(model_benchmark, 'time_in_turns', recording)
    out = model_benchmark._step_in_forwards(model, step, (128, 128), 'cpu',
                                            2, 3, 'fp32', None)
    # per round 3, 3 and 2 forwards per image; the medians' ratio, 8 / 2 /
    # 2, would say 2
    assert out['step_cost'] == dict(median=3., min=2., max=3.)
    assert out['train_step'] == dict(median=8., min=6., max=12.)
    # the step trains, the forward runs in eval mode, and the model is left
    # training for what comes next
    assert ('train_step', True) in modes and ('step_forward', False) in modes
    assert all(training == (name == 'train_step') for name, training in modes)
    assert model.training
