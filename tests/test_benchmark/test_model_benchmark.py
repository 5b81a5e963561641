"""benchmark_config in both precisions, and the table's step-cost column."""
import pytest

from mmdssd.benchmark import benchmark_config, format_table

from ..conftest import TINY


@pytest.mark.parametrize('precision', ['fp32', 'bf16'])
def test_train_step_cost_in_forwards(precision):
    result = benchmark_config(TINY, device='cpu', warmup=0, repeat=1,
                              train_batch=2, train_steps=1, flops=False,
                              precision=precision)
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
