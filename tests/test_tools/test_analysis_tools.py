"""The benchmark, loss-benchmark and ablation tools run and hold numbers."""
import csv
import json
import os.path as osp
import re

import pytest

from ..conftest import CONFIGS, MIM, PYTHON, TOOLS, run

SYN = osp.join(CONFIGS, 'synthetic')
ANALYSIS = osp.join(TOOLS, 'analysis_tools')


def test_benchmark_table_and_json(tmp_path):
    out_json = tmp_path / 'bench.json'
    out = run([
        PYTHON, osp.join(ANALYSIS, 'benchmark.py'),
        osp.join(SYN, 'ssd_tiny_synthetic.py'),
        osp.join(SYN, 'dssd_tiny_synthetic.py'), '--repeat', '2',
        '--warmup', '1', '--train-steps', '1', '--train-batch', '2',
        '--fuse-conv-bn', '--out', out_json
    ])
    rows = [line for line in out.splitlines() if line.startswith('| ')]
    assert len(rows) == 3  # header + 2 configs
    assert '1.00x' in rows[1]  # the first config is the baseline
    results = json.loads(out_json.read_text())
    assert [osp.basename(r['config']) for r in results] == [
        'ssd_tiny_synthetic.py', 'dssd_tiny_synthetic.py'
    ]
    for r in results:
        assert r['params'] > 0 and r['flops'] > 0
        assert r['latency']['median'] > 0 and r['latency_fused']['median'] > 0
        assert r['train_step']['median'] > 0 and r['peak_mem_mb'] > 0
        assert 0 < r['bn_share'] < 1  # both have BN in the backbone
    assert re.search(r'\| [0-9.]+% \|', rows[1])
    # the DM and wider top levels cost parameters
    assert results[1]['params'] != results[0]['params']


def test_batch_norm_share_measures_bn_and_folding_removes_it():
    import torch

    from mmdssd.benchmark.model_benchmark import batch_norm_share
    from mmdssd.models.utils import fuse_bn
    model = torch.nn.Sequential(
        torch.nn.Conv2d(3, 8, 3), torch.nn.BatchNorm2d(8),
        torch.nn.ReLU()).eval()
    x = torch.rand(1, 3, 64, 64)
    assert 0 < batch_norm_share(lambda: model(x), 'cpu') < 1
    fuse_bn(model)
    assert batch_norm_share(lambda: model(x), 'cpu') == 0


def test_benchmark_reads_mmdet_configs_via_mim_run():
    out = run([
        MIM, 'run', 'mmdssd', 'benchmark', 'mmdet::ssd/ssdlite_mobilenetv2-'
        'scratch_8xb24-600e_coco.py', '--repeat', '1', '--warmup', '0',
        '--train-steps', '0', '--no-flops'
    ])
    assert re.search(r'\| mmdet::ssd/ssdlite\S+ \| 320x320 \| [0-9.]+ ', out)


@pytest.mark.parametrize('backward', [False, True])
def test_loss_benchmark_prints_both_and_agrees(backward):
    out = run([
        PYTHON, osp.join(ANALYSIS, 'benchmark_loss.py'), '--batch', '4',
        '--repeat', '2'
    ] + ['--backward'] * backward)
    result = json.loads(out.strip().splitlines()[-1])
    assert result['backward'] is backward
    assert result['boxes_per_image'] == 17080
    assert result['mmdet_ssdhead_s'] > 0 and result['dssdhead_batched_s'] > 0
    assert result['max_abs_loss_diff'] < 1e-4


def test_ablation_runner_writes_table_and_resumes(tmp_path):
    work = tmp_path / 'ablation'
    cmd = [
        PYTHON, osp.join(ANALYSIS, 'ablation.py'),
        osp.join(CONFIGS, 'ablation', 'synthetic', 'ssd_tiny_pm_a_synthetic.py'),
        osp.join(CONFIGS, 'ablation', 'synthetic',
                 'dssd_tiny_dm_sum_synthetic.py'), '--epochs', '1',
        '--num-trainval', '16', '--num-test', '8', '--data-root',
        tmp_path / 'data', '--work-dir', work
    ]
    run(cmd)
    with open(work / 'results.csv') as f:
        rows = list(csv.DictReader(f))
    assert [r['config'] for r in rows] == [
        'ssd_tiny_pm_a_synthetic', 'dssd_tiny_dm_sum_synthetic'
    ]
    for r in rows:
        for key in ('voc_mAP', 'coco_AP', 'AP_small', 'params_M', 'GFLOPs',
                    'latency_s'):
            float(r[key])  # a number, not a placeholder
        assert float(r['params_M']) > 0
    assert (work / 'results.png').stat().st_size > 1000
    assert 'voc_mAP' in (work / 'results.md').read_text()
    # an interrupted run: drop one result, keep the other
    (work / 'dssd_tiny_dm_sum_synthetic' / 'result.json').unlink()
    out = run(cmd)
    assert 'ssd_tiny_pm_a_synthetic: done before, skipping' in out
    assert 'dssd_tiny_dm_sum_synthetic: evaluating' in out
    assert 'dssd_tiny_dm_sum_synthetic: training' not in out  # checkpoint kept
