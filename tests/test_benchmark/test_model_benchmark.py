"""benchmark_config in both precisions, and the table's step-cost column."""
import pytest

from mmdssd.benchmark import benchmark_config, format_table

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
    for key in ('latency', 'forward', 'train_step'):
        assert result[key]['median'] > 0, key
    row = format_table([result]).splitlines()[2].split('|')
    header = format_table([result]).splitlines()[0].split('|')
    cost = row[header.index(' step/image in forwards ')]
    # a step per image, in batch-1 forwards, as the table prints it
    expected = (result['train_step']['median'] / 2 /
                result['forward']['median'])
    assert float(cost) == pytest.approx(expected, abs=0.006)
    assert row[header.index(' precision ')].strip() == precision


def test_unknown_precision_is_refused():
    with pytest.raises(ValueError, match="'fp32' or 'bf16'"):
        benchmark_config(TINY, device='cpu', warmup=0, repeat=1,
                         train_steps=1, flops=False, precision='fp16')
