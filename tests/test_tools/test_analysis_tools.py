"""The benchmark, loss-benchmark and ablation tools run and hold numbers."""
import csv
import json
import math
import os.path as osp
import re

import pytest
from mmengine.config import Config

from ..conftest import (CONFIGS, MIM, PYTHON, ROOT, TOOLS, load_cfg,
                        load_tool, run)

SYN = osp.join(CONFIGS, 'synthetic')
ANALYSIS = osp.join(TOOLS, 'analysis_tools')


def test_benchmark_table_and_json(tmp_path):
    out_json = tmp_path / 'bench.json'
    out = run([
        PYTHON, osp.join(ANALYSIS, 'benchmark.py'),
        osp.join(SYN, 'ssd_tiny_synthetic.py'),
        osp.join(SYN, 'dssd_tiny_synthetic.py'), '--repeat', '2',
        '--warmup', '1', '--train-steps', '1', '--train-batch', '2',
        '--fuse-conv-bn', '--profile-step', '--out', out_json
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
        assert sum(r['train_step_profile'].values()) == pytest.approx(1)
        assert f"{r['config']} (fp32) training step, operator self time: " \
            'conv backward' in out
    assert re.search(r'\| [0-9.]+% \|', rows[1])
    # the DM and wider top levels cost parameters
    assert results[1]['params'] != results[0]['params']


def test_benchmark_deploy_columns_and_variants(tmp_path):
    """--deploy: eager and each runtime/precision's medians per batch size
    and image to detections, ratios in the same run, the CPU's flags and
    what each runtime ran; precisions the CPU lacks are listed as skipped
    with the reason; --deploy-variants lists the alternatives with their
    ratios to eager."""
    from mmdssd.deployment.openvino_runtime import openvino_capabilities
    out_json = tmp_path / 'deploy.json'
    out = run([
        PYTHON, osp.join(ANALYSIS, 'benchmark.py'),
        osp.join(SYN, 'dssd_tiny_synthetic.py'), '--deploy', '--repeat', '1',
        '--warmup', '0', '--batch-sizes', '1', '2', '--deploy-variants',
        '--no-compile', '--out', out_json
    ])
    capabilities = openvino_capabilities()
    expected = ['ONNX RT fp32', 'OpenVINO fp32'] + [
        f'OpenVINO {p}' for p, cap in (('bf16', 'BF16'), ('int8', 'INT8'))
        if cap in capabilities
    ]
    assert re.search(r'^CPU: .*\(flags: ', out, re.M)
    rows = [line for line in out.splitlines() if line.startswith('| ')]
    assert rows[0] == '| config | input | batch | eager fp32 s |' + ''.join(
        f' {n} s | ratio |' for n in expected)
    body = [r for r in rows[1:] if '| dssd_tiny' in r or SYN in r]
    assert [r.split(' | ')[2] for r in body] == ['1', '2', 'e2e']
    for row in body:
        assert len(re.findall(r'[0-9.]+x \|', row)) == len(expected)
    data = json.loads(out_json.read_text())
    (result, ) = data['results']
    assert set(result['times']) == {'1', '2', 'e2e'}
    for times in result['times'].values():
        assert set(times) == {'eager', *expected}
        assert all(t > 0 for t in times.values())
    assert result['precision_ran']['OpenVINO fp32'] == 'fp32'
    if 'OpenVINO int8' in expected:
        assert result['precision_ran']['OpenVINO int8'].startswith('int8 (')
    if 'OpenVINO bf16' not in expected:
        assert 'no BF16' in result['skipped']['OpenVINO bf16']
        assert '- OpenVINO bf16 skipped: ' in out
    variants = data['variants']
    assert {'eager', 'eager channels_last', 'eager BN folded'} <= set(variants)
    assert any(k.startswith('ONNX RT all') for k in variants)
    assert any(k.startswith('OpenVINO fp32 static batch') for k in variants)
    assert not any('compile' in k for k in variants)  # --no-compile
    assert '| eager | ' in out and '| 1.00x |' in out


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
        osp.join(CONFIGS, 'ablation', 'synthetic',
                 'ssd_tiny_pm_a_synthetic.py'),
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
            assert math.isfinite(float(r[key])), (key, r[key])
        assert float(r['params_M']) > 0 and float(r['latency_s']) > 0
    assert (work / 'results.png').stat().st_size > 1000
    assert 'voc_mAP' in (work / 'results.md').read_text()
    # an interrupted run: drop one result, keep the other
    (work / 'seed0' / 'dssd_tiny_dm_sum_synthetic' / 'result.json').unlink()
    out = run(cmd)
    assert 'ssd_tiny_pm_a_synthetic seed 0: done before, skipping' in out
    assert 'dssd_tiny_dm_sum_synthetic seed 0: evaluating' in out
    assert 'dssd_tiny_dm_sum_synthetic seed 0: training' not in out
    assert '[##] 2/2 runs' in out and 'ETA 0:00' in out


def test_ablation_two_stage_plans_first_stages_per_seed_or_shared():
    """Each seed's second stage starts from that seed's first-stage SSD,
    or, with ``--shared-first-stage``, every seed's from the first seed's
    (trained once)."""
    tool = load_tool('analysis_tools', 'ablation.py')
    for shared in (False, True):
        args = tool.parse_args(
            ['--two-stage', '3', '1', '--seeds', '0', '1', '--work-dir',
             'w'] + ['--shared-first-stage'] * shared)
        runs = tool.two_stage_runs(args)
        assert [(r['name'], r['seed']) for r in runs] == [
            (name, seed) for seed in (0, 1)
            for name in ('ssd_pm_c_3e+1e', 'dssd_stage1_3e+1e')]
        for run_ in runs:
            first = 0 if shared else run_['seed']
            base = osp.abspath(osp.join('w', f'seed{first}', 'ssd_pm_c_3e'))
            (ssd, epochs, start, work_dir, val_interval), second = \
                run_['steps']
            assert (ssd, epochs, start, work_dir) == (
                tool.SSD_PM_C, 3, None, base)
            assert val_interval == 1  # the first stage's curve
            assert second[1:] == (1, osp.join(base, 'epoch_3.pth'))
        assert ('(one, shared)' in tool.describe(args)) == shared


def test_ablation_two_stage_protocol(tmp_path):
    """SSD + PM(c), then SSD or DSSD stage 1 from that checkpoint, on the
    small-objects set; the summary holds the seed's values."""
    work = tmp_path / 'two_stage'
    out = run([
        PYTHON, osp.join(ANALYSIS, 'ablation.py'), '--two-stage', '1', '1',
        '--seeds', '1', '--spec', 'small_objects', '--num-trainval', '16',
        '--num-test', '8', '--data-root', tmp_path / 'data', '--work-dir',
        work, '--no-benchmark'
    ])
    assert out.count('training ssd_tiny_pm_c_synthetic.py for 1 epochs\n') \
        == 1  # shared by both arms
    assert 'training dssd_tiny_stage1_synthetic.py for 1 epochs from ' \
        'epoch_1.pth' in out
    summary = json.loads((work / 'summary.json').read_text())
    assert 'two-stage' in summary['protocol']
    assert 'small_objects' in summary['protocol']
    names = [r['config'] for r in summary['rows']]
    assert names == ['ssd_pm_c_1e+1e', 'dssd_stage1_1e+1e']
    for row in summary['rows']:
        assert row['seeds'] == [1]
        assert row['coco_AP']['mean'] == row['coco_AP']['values'][0]
    # stage 1 started from the SSD checkpoint: its trunk is the SSD's
    import torch
    ssd = torch.load(work / 'seed1' / 'ssd_pm_c_1e' / 'epoch_1.pth',
                     map_location='cpu', weights_only=True)['state_dict']
    dssd = torch.load(work / 'seed1' / 'dssd_stage1_1e+1e' / 'epoch_1.pth',
                      map_location='cpu', weights_only=True)['state_dict']
    key = 'backbone.layer1.0.conv1.weight'
    assert torch.equal(ssd[key], dssd[key])
    assert any(k.startswith('neck.deconv_modules') for k in dssd)
    # the README's picture: finished ablations side by side
    run([PYTHON, osp.join(ANALYSIS, 'ablation.py'), '--combine', work,
         '--out', tmp_path / 'combined.png'])
    assert (tmp_path / 'combined.png').stat().st_size > 1000


def test_ablation_two_stage_on_own_data_with_one_shared_ssd(tmp_path):
    """Configs written for real photos (tests/data/facemask): the first
    stage trains once and every seed's second-stage arms start from it,
    the SSD control with the DSSD's parts frozen among them; the summary
    holds the first stage's validation curve."""
    import torch

    from mmdssd.datasets.dataset_config import config_text, find_layout
    layout = find_layout(osp.join(ROOT, 'tests', 'data', 'facemask'))
    configs = []
    for name, base in (
            ('ssd.py', osp.join(CONFIGS, 'ablation', 'synthetic',
                                'ssd_tiny_pm_c_synthetic.py')),
            ('stage1.py', osp.join(SYN, 'dssd_tiny_stage1_synthetic.py')),
            ('frozen.py', osp.join(SYN, 'ssd_tiny_stage1_synthetic.py'))):
        (tmp_path / name).write_text(config_text(layout, base))
        configs.append(tmp_path / name)
    work = tmp_path / 'two_stage'
    out = run([
        PYTHON, osp.join(ANALYSIS, 'ablation.py'), *configs, '--own-data',
        '--two-stage', '2', '1', '--shared-first-stage', '--seeds', '0', '1',
        '--work-dir', work, '--no-benchmark'
    ])
    assert out.count('training ssd.py for 2 epochs\n') == 1, out
    assert out.count('ssd.py for 2 epochs: trained before') == 5
    assert out.count('training stage1.py for 1 epochs from epoch_2.pth') == 2
    assert not (work / 'seed1' / 'ssd_pm_c_2e').exists()
    summary = json.loads((work / 'summary.json').read_text())
    assert 'one, shared' in summary['protocol']
    assert [r['config'] for r in summary['rows']] == [
        'ssd_pm_c_2e+1e', 'dssd_stage1_2e+1e', 'frozen_2e+1e']
    for row in summary['rows']:
        assert row['seeds'] == [0, 1]
        values = row['coco_AP']['values']
        assert len(values) == 2
        assert row['coco_AP']['mean'] == pytest.approx(sum(values) / 2)
    curve = summary['first_stage']['0']
    assert [p['epoch'] for p in curve] == [1, 2]  # validated on the way
    assert all(0 <= p['coco_AP'] <= 1 for p in curve)
    assert 'first-stage SSD validations' in (work / 'results.md').read_text()
    # the control trains only what DSSD stage 1 trains besides the DM
    first, control = (torch.load(path, map_location='cpu',
                                 weights_only=True)['state_dict']
                      for path in (work / 'seed0' / 'ssd_pm_c_2e' /
                                   'epoch_2.pth', work / 'seed1' /
                                   'frozen_2e+1e' / 'epoch_1.pth'))
    trunk = [k for k in first if k.startswith(('backbone.', 'neck.extra'))]
    assert trunk and all(torch.equal(first[k], control[k]) for k in trunk)
    assert any(not torch.equal(first[k], control[k]) for k in first
               if k.startswith('bbox_head.'))
    with pytest.raises(AssertionError, match='SSD \\+ PM\\(c\\) config'):
        run([PYTHON, osp.join(ANALYSIS, 'ablation.py'), configs[0],
             '--own-data', '--two-stage', '1', '1'])


@pytest.fixture
def small_job(tmp_path):
    """``--config`` and ``--data-root`` for the tools that time or compare
    the main job's steps: its config training at 128 instead of 256 and a
    small synthetic set. Every path of the tools runs, at a quarter of the
    pixels (their tables' form is tested, not the job's timings)."""
    from mmdssd.datasets import SyntheticSpec, generate_synthetic_dataset
    from mmdssd.utils.cli import main_job_config
    generate_synthetic_dataset(str(tmp_path / 'data'),
                               SyntheticSpec(num_trainval=16, num_test=8))
    cfg = Config.fromfile(main_job_config(ROOT))
    resize = [t for t in cfg.train_dataloader.dataset.pipeline
              if t['type'] == 'Resize']
    assert len(resize) == 1 and resize[0]['scale'] == (256, 256)
    resize[0]['scale'] = (128, 128)
    cfg.dump(tmp_path / 'job_128.py')
    return ['--config', tmp_path / 'job_128.py', '--data-root',
            tmp_path / 'data']


def test_train_step_variants_prints_every_variant(small_job):
    """Every variant builds, steps and has its row: one timed step each,
    no warm-up."""
    out = run([
        PYTHON, osp.join(ANALYSIS, 'train_step_variants.py'), *small_job,
        '--rounds', '1', '--steps', '1', '--warmup', '0'
    ])
    names = ('job', 'adamw-unfused', 'bf16-autocast', '1-worker',
             'bf16-1-worker', 'batch-4', 'batch-16', 'bf16-batch-16',
             'input-224', 'input-192', 'resize-first', 'bf16-resize-first',
             'no-photometric', 'narrow', 'bf16-narrow')
    rows = {
        fields[0]: fields
        for fields in map(str.split, out.splitlines())
        if fields and fields[0] in names
    }
    assert len(rows) == len(names), out
    assert rows['job'][3] == '1.00x'  # the reference
    for name, row in rows.items():
        per_step, per_image = float(row[1]), float(row[2])
        batch = int(name.rsplit('-', 1)[1]) if 'batch' in name else 8
        assert per_step > 0 and per_image == pytest.approx(
            per_step / batch, abs=1e-3), name
        assert float(row[4]) >= 0  # minor page faults per step
    assert 'bf16-compile' not in rows  # compiling is asked for by name


def test_train_step_variants_compile_arm(tmp_path, monkeypatch):
    """``bf16-compile`` hands the backbone, neck and head to
    ``torch.compile`` and times the first (compiling) step; the wrapper is
    recorded here instead of compiling, which takes a minute."""
    import torch
    from mmengine.registry import init_default_scope

    from mmdssd.datasets import (SyntheticSpec, generate_synthetic_dataset,
                                 point_cfg_at_synthetic)
    generate_synthetic_dataset(str(tmp_path / 'data'),
                               SyntheticSpec(num_trainval=16, num_test=8))
    tool = load_tool('analysis_tools', 'train_step_variants.py')
    cfg = tool.variant_config(
        load_cfg('synthetic/dssd_main_job_synthetic.py'), 'bf16-compile')
    point_cfg_at_synthetic(cfg, str(tmp_path / 'data'))
    init_default_scope('mmdet')
    compiled = []
    monkeypatch.setattr(torch, 'compile',
                        lambda module: compiled.append(module) or module)
    arm = tool.Arm(cfg, bf16=True, compiled=True)
    assert compiled == [arm.model.backbone, arm.model.neck,
                        arm.model.bbox_head]
    assert arm.compile_s > 0 and arm.bf16
    assert tool.Arm(cfg, bf16=True).compile_s is None


def test_train_step_variants_pipeline_variants():
    tool = load_tool('analysis_tools', 'train_step_variants.py')
    base = load_cfg('synthetic/dssd_main_job_synthetic.py')

    def order(name):
        cfg = tool.variant_config(base, name)
        return [t['type'] for t in cfg.train_dataloader.dataset.pipeline]

    job = order('job')
    assert job.index('PhotoMetricDistortion') < job.index('Resize')
    first = order('resize-first')
    assert first.index('Resize') < first.index('PhotoMetricDistortion')
    assert sorted(first) == sorted(job)
    assert order('bf16-resize-first') == first
    assert order('no-photometric') == [
        t for t in job if t != 'PhotoMetricDistortion'
    ]
    # the variants changed copies only
    assert [t['type'] for t in base.train_dataloader.dataset.pipeline] == job
    # the narrow variants train the job's narrow model, nothing else changed
    narrow = tool.variant_config(base, 'bf16-narrow')
    assert narrow.model == load_cfg(
        'synthetic/dssd_main_job_narrow_synthetic.py').model
    assert (narrow.model.backbone.base_channels <
            base.model.backbone.base_channels)
    assert narrow.train_dataloader == base.train_dataloader


def test_train_step_variants_compares_allocators(small_job):
    out = run([
        PYTHON, osp.join(ANALYSIS, 'train_step_variants.py'), *small_job,
        '--rounds', '1', '--steps', '1', '--allocator-turns', '1',
        '--variants', 'input-192'
    ])
    rows = {
        fields[0]: fields
        for fields in map(str.split, out.splitlines())
        if fields and fields[0] in ('job', 'input-192')
    }
    assert set(rows) == {'job', 'input-192'}, out  # the job always runs
    for name, row in rows.items():
        default, kept = float(row[1]), float(row[2])
        assert default > 0 and kept > 0
        # the ratio is of the unrounded times, the columns are rounded
        assert float(row[3].rstrip('x')) == pytest.approx(
            kept / default, rel=0.03, abs=0.01), name
        assert float(row[4]) >= 0 and float(row[5]) >= 0


@pytest.mark.parametrize('method', ['blocks', 'turns'])
def test_precision_timing_ratio(monkeypatch, method):
    """``blocks`` times each precision on its own, ``turns`` both at once;
    either way the ratio is bf16's step over fp32's."""
    import mmdssd.engine as engine
    tool = load_tool('analysis_tools', 'precision_timing.py')
    seconds = dict(fp32=0.5, bf16=0.4)
    calls = []

    def alone(cfg, **kwargs):
        calls.append(('alone', cfg.name, kwargs['train_iters']))
        return dict(train_iter=seconds[cfg.name])

    def in_turns(cfgs, **kwargs):
        calls.append(('turns', tuple(cfgs), kwargs['train_iters']))
        return {k: dict(train_iter=seconds[k]) for k in cfgs}

    monkeypatch.setattr(engine, 'measure_step_times', alone)
    monkeypatch.setattr(engine, 'measure_step_times_in_turns', in_turns)
    cfgs = {k: Config(dict(name=k)) for k in ('fp32', 'bf16')}
    assert tool.ratio_by(method, cfgs, steps=3) == pytest.approx(0.8)
    assert calls == ([('turns', ('fp32', 'bf16'), 3)] if method == 'turns'
                     else [('alone', 'fp32', 3), ('alone', 'bf16', 3)])


def test_bf16_grad_error_tables_every_arm(small_job):
    out = run([
        PYTHON, osp.join(ANALYSIS, 'bf16_grad_error.py'), *small_job,
        '--batches', '2', '--fp32-parts', 'bn', 'head', '--json'
    ])
    results = json.loads(out.strip().splitlines()[-1])
    errors = results['errors']
    assert list(errors) == ['fp32 again', 'fp32 next batch', 'bf16',
                            'bf16, bn fp32', 'bf16, head fp32']
    parts = ('backbone', 'neck', 'head.modules', 'head.predictors', 'all')
    for name, row in errors.items():
        assert tuple(row) == parts, name
    assert all(e == 0 for e in errors['fp32 again'].values())
    # bf16 moves every part's gradient, far less than another batch does
    for part in parts:
        assert 0 < errors['bf16'][part] < errors['fp32 next batch'][part] / 2
    assert 0 < results['consistency'] < 2**0.5 + 1e-6
    assert 'consistency of the bf16 error over the batches' in out


def test_bf16_grad_error_fp32_islands():
    """A module named an fp32 part runs in fp32 inside autocast and gets
    its own forward back afterwards."""
    import torch
    from torch import nn
    tool = load_tool('analysis_tools', 'bf16_grad_error.py')
    first, second = nn.Conv2d(3, 4, 1), nn.Conv2d(4, 4, 1)
    x = torch.randn(1, 3, 4, 4)
    with torch.autocast('cpu', dtype=torch.bfloat16):
        with tool.fp32_islands([first]):
            y = first(x)
            assert y.dtype == torch.float32
            assert second(y).dtype == torch.bfloat16  # autocast goes on
            assert first(x.bfloat16()).dtype == torch.float32
        assert 'forward' not in vars(first)
        assert first(x).dtype == torch.bfloat16


def test_bf16_grad_error_consistency_tells_noise_from_bias():
    import torch
    tool = load_tool('analysis_tools', 'bf16_grad_error.py')
    same = [torch.tensor([1.0, 2.0, 3.0])] * 4
    assert tool.consistency(same) == pytest.approx(2.0)  # sqrt(4): a bias
    orthogonal = list(torch.eye(4) * 3)
    assert tool.consistency(orthogonal) == pytest.approx(1.0)  # noise
    assert math.isnan(tool.consistency(same[:1]))
    assert tool.part_of('bbox_head.cls_convs.0.weight') == 'head.predictors'
    assert tool.part_of('bbox_head.pms.0.conv.weight') == 'head.modules'
    assert tool.part_of('neck.dms.0.weight') == 'neck'


def test_plot_main_job_draws_runs_and_points(tmp_path):
    """A run's summary and a --point make a PNG at the given path, wide
    enough to hold the legend beside the axes."""
    from PIL import Image
    summary = tmp_path / 'summary.json'
    summary.write_text(json.dumps(dict(iterations=100, timeline=[
        {'seconds': 100.0, 'pascal_voc/mAP': 0.2},
        {'seconds': 580.0, 'pascal_voc/mAP': 0.6}])))
    out_png = tmp_path / 'plot.png'
    out = run([
        PYTHON, osp.join(ANALYSIS, 'plot_main_job.py'),
        f'{summary}:a run', '--point', 'an old run:578:0.3', '--out', out_png
    ])
    assert str(out_png) in out
    with Image.open(out_png) as image:
        assert image.format == 'PNG'
        # 10 x 4 inches at 100 dpi: the legend sits beside the axes
        assert image.size == (1000, 400)
