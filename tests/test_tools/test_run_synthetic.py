"""tools/run_synthetic.py (the main job): every artefact it promises."""
import json
import os.path as osp
import platform

import pytest
from mmengine.config import Config

from ..conftest import PYTHON, ROOT, TOOLS, run, run_status

SCRIPT = osp.join(TOOLS, 'run_synthetic.py')


def test_one_epoch_smoke_run(tmp_path):
    work = tmp_path / 'job'
    out = run([
        PYTHON, SCRIPT, '--epochs', '1', '--num-trainval', '16',
        '--num-vis', '2', '--data-root', tmp_path / 'data', '--work-dir',
        work, '--cfg-options', 'optim_wrapper.optimizer.weight_decay=0.125'
    ], cwd=tmp_path)
    summary = json.loads((work / 'summary.json').read_text())
    assert summary['iterations'] == 2 and summary['passes'] == 1
    assert summary['num_trainval'] == 16
    assert summary['refits'] == []  # --epochs: no time budget to fit
    # --width auto chooses only where steps are timed
    assert summary['config'].endswith('dssd_main_job_synthetic.py')
    for key in ('pascal_voc/mAP', 'coco/bbox_mAP', 'coco/bbox_mAP_s'):
        assert 0 <= summary['metrics'][key] <= 1, key
    # the validation after the last epoch is the final test, with its wall
    # time
    final = summary['timeline'][-1]
    assert final['final'] and final['seconds'] > 0
    assert final['pascal_voc/mAP'] == pytest.approx(
        summary['metrics']['pascal_voc/mAP'], abs=1e-4)
    # --cfg-options reached the run (MMEngine dumps the config it ran)
    ran = Config.fromfile(work / 'dssd_main_job_synthetic.py')
    assert ran.optim_wrapper.optimizer.weight_decay == 0.125
    for name in ('iter_2.pth', 'curves.png', 'detections.jpg'):
        assert (work / name).stat().st_size > 0, name
    # what the user reads: the progress line, the table, where things went
    progress = [ln for ln in out.splitlines() if 'iter 2/2' in ln]
    assert progress and 'ETA' in progress[-1]
    assert 'epoch' not in progress[-1]  # an iteration loop has none
    assert 'VOC mAP@0.5 (11-point)' in out and 'COCO AP small' in out
    if platform.libc_ver()[0] == 'glibc':
        assert 'freed memory kept for the next step' in out
    for path in ('iter_2.pth', 'curves.png', 'detections.jpg',
                 'summary.json'):
        assert str(work / path) in out, path


def test_a_budget_without_room_for_one_epoch_is_refused(tmp_path):
    """Refused before any step is timed: the budget does not even cover
    what the job keeps after training."""
    proc = run_status(
        [PYTHON, SCRIPT, '--minutes', '0.05', '--num-trainval', '16',
         '--data-root', tmp_path / 'data', '--work-dir', tmp_path / 'job'],
        cwd=tmp_path, timeout=600)
    assert proc.returncode != 0
    assert 'holds no iteration' in proc.stderr, proc.stderr[-2000:]
    assert not (tmp_path / 'job' / 'summary.json').exists()


def test_fixed_length_by_passes_or_iterations(monkeypatch):
    """``--iters`` fixes the iterations whatever the set's size;
    ``--epochs`` counts passes over it; the two do not go together."""
    import sys

    from ..conftest import load_tool
    tool = load_tool('run_synthetic.py')
    cfg = Config(dict(train_dataloader=dict(batch_size=8)))

    def length(*argv):
        monkeypatch.setattr(sys, 'argv', ['run_synthetic.py', *argv])
        return tool.fixed_length(cfg, tool.parse_args())

    assert length('--epochs', '3', '--num-trainval', '16').iters == 6
    assert length('--iters', '5', '--num-trainval', '16').iters == 5
    assert length('--iters', '5', '--num-trainval', '4000').iters == 5
    plan = length('--iters', '5', '--precision', 'fp32')
    assert plan.cfg is cfg and plan.precision == (
        'fp32 (--iters: steps not timed)')
    assert tool.is_main_config(plan.config)
    narrow = length('--iters', '5', '--width', 'narrow')
    assert narrow.config == tool.NARROW_CONFIG
    assert narrow.model.startswith('narrow') and 'asked for' in narrow.model
    for argv in (('--iters', '0'), ('--epochs', '2', '--iters', '5')):
        with pytest.raises(SystemExit):
            length(*argv)


def test_the_model_follows_the_iterations_the_budget_holds(monkeypatch):
    """``--width auto`` trains the narrow model where the main job's fits
    fewer iterations than the line, and only for the main job's config;
    ``--width`` forces either."""
    import sys

    from ..conftest import load_tool
    tool = load_tool('run_synthetic.py')
    line = tool.NARROW_BELOW_ITERS

    def model(iters, *argv):
        monkeypatch.setattr(sys, 'argv', ['run_synthetic.py', *argv])
        return tool.choose_model(tool.parse_args(), iters)

    assert model(line - 1).startswith('narrow') and str(line - 1) in model(
        line - 1)
    assert model(line).startswith("the main job's")
    assert model(line - 1, '--width', 'standard').startswith(
        "the main job's")
    assert model(10 * line, '--width', 'narrow').startswith('narrow')
    other = osp.join(ROOT, 'configs', 'synthetic', 'dssd_tiny_synthetic.py')
    assert model(1, '--config', other).startswith(other)
    # the narrow model is the main job's: another config has none
    monkeypatch.setattr(sys, 'argv', [
        'run_synthetic.py', '--config', other, '--width', 'narrow'])
    with pytest.raises(SystemExit):
        tool.parse_args()


def test_the_narrow_model_is_trained_only_where_it_fits_enough_more():
    """Timed, the narrow model is trained only where it fits at least
    ``NARROW_MIN_ITERS_RATIO`` times the main job's iterations: a step
    only a little cheaper does not pay for its lower capacity. The
    printed clause names both counts and the ratio."""
    from ..conftest import load_tool
    tool = load_tool('run_synthetic.py')
    need = tool.NARROW_MIN_ITERS_RATIO
    assert need > 1
    pays, why = tool.narrow_pays(round(need * 1000), 1000)
    assert pays and f'{need:.2f}x' in why and 'at least' in why
    for narrow_iters in (1000, 1070, round(need * 1000) - 1):
        pays, why = tool.narrow_pays(narrow_iters, 1000)
        assert not pays, narrow_iters
        assert f'({narrow_iters} against 1000)' in why and 'under' in why
    assert tool.narrow_pays(5, 0)[0]  # a budget that holds no main step


def test_the_narrow_model_is_the_main_job_narrowed():
    """Only the widths, the lr and the backbone's convolution type differ
    from the main job's config; the widths are narrower and the lr higher,
    as Adam needs for narrower layers, and the convolution computes what
    ``nn.Conv2d`` does: the schedule's shape, data and test setting are
    the same."""
    from ..conftest import load_tool
    tool = load_tool('run_synthetic.py')
    main = Config.fromfile(tool.MAIN_CONFIG).to_dict()
    narrow = Config.fromfile(tool.NARROW_CONFIG).to_dict()
    widths = {
        ('backbone', 'base_channels'), ('neck', 'in_channels'),
        ('neck', 'deconv_channels'), ('bbox_head', 'in_channels'),
        ('bbox_head', 'pm_out_channels')
    }
    for part, key in widths:
        a, b = main['model'][part][key], narrow['model'][part][key]
        assert sum(b if isinstance(b, tuple) else (b, )) < sum(
            a if isinstance(a, tuple) else (a, )), (part, key)
        del main['model'][part][key], narrow['model'][part][key]
    lr = main['optim_wrapper']['optimizer'].pop('lr')
    assert narrow['optim_wrapper']['optimizer'].pop('lr') > lr
    assert narrow['model']['backbone'].pop('conv_cfg') == dict(
        type='SubsampleFirstConv')
    assert narrow == main


def test_budgeted_run_times_the_precisions_and_fits_the_length(tmp_path):
    """The README's path: no ``--epochs``, so the job times its steps
    (both precisions in turns where the CPU has native bf16), fits the
    iterations to the minutes and refits them while training."""
    from mmdssd.engine import cpu_bf16_support
    work = tmp_path / 'job'
    # the budget holds the process's start too: on a 2-core AVX2 CPU beside
    # the other tests, 1.5 minutes left no room for one iteration
    out = run([
        PYTHON, SCRIPT, '--minutes', '2.5', '--num-trainval', '16',
        '--num-vis', '1', '--data-root', tmp_path / 'data', '--work-dir',
        work
    ], cwd=tmp_path)
    summary = json.loads((work / 'summary.json').read_text())
    precision = summary['precision']
    if cpu_bf16_support()[0]:
        assert 'timed in turns' in precision, precision
        assert precision.split(':')[0] in ('fp32', 'bf16')
    else:
        assert precision.startswith('fp32: ') and 'bf16 not timed' in precision
    assert f'[main job] precision {precision}' in out
    # which model, and why: the narrow one where the main job's fits few
    # iterations (so far every machine at this budget), timed itself
    assert f'[main job] model {summary["model"]}' in out
    if summary['model'].startswith('narrow'):
        assert summary['config'].endswith('narrow_synthetic.py')
        assert (work / 'dssd_main_job_narrow_synthetic.py').exists()
    assert summary['iterations'] >= 1
    assert summary['refits'] or summary['iterations'] < 25
    assert 0 <= summary['metrics']['pascal_voc/mAP'] <= 1
