"""tools/run_synthetic.py (the main job): every artefact it promises."""
import json
import os
import os.path as osp
import subprocess

import pytest
from mmengine.config import Config

from ..conftest import PYTHON, ROOT, TOOLS, run

SCRIPT = osp.join(TOOLS, 'run_synthetic.py')


def test_one_epoch_smoke_run(tmp_path):
    work = tmp_path / 'job'
    out = run([
        PYTHON, SCRIPT, '--epochs', '1', '--num-trainval', '16',
        '--num-vis', '2', '--data-root', tmp_path / 'data', '--work-dir',
        work, '--cfg-options', 'optim_wrapper.optimizer.weight_decay=0.125'
    ], cwd=tmp_path)
    summary = json.loads((work / 'summary.json').read_text())
    assert summary['epochs'] == 1 and summary['iterations'] == 2
    assert summary['num_trainval'] == 16
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
    for name in ('epoch_1.pth', 'curves.png', 'detections.jpg'):
        assert (work / name).stat().st_size > 0, name
    # what the user reads: the progress line, the table, where things went
    assert 'iter 2/2 epoch 1/1' in out and 'ETA' in out
    assert 'VOC mAP@0.5 (11-point)' in out and 'COCO AP small' in out
    for path in ('epoch_1.pth', 'curves.png', 'detections.jpg',
                 'summary.json'):
        assert str(work / path) in out, path


def test_a_budget_without_room_for_one_epoch_is_refused(tmp_path):
    proc = subprocess.run(
        [PYTHON, SCRIPT, '--minutes', '0.05', '--num-trainval', '400',
         '--data-root', str(tmp_path / 'data'), '--work-dir',
         str(tmp_path / 'job')],
        cwd=tmp_path, capture_output=True, text=True, timeout=600,
        env=dict(os.environ, PYTHONPATH=ROOT))
    assert proc.returncode != 0
    assert 'holds no iteration' in proc.stderr, proc.stderr[-2000:]
    assert not (tmp_path / 'job' / 'summary.json').exists()


def test_fit_schedule():
    from mmdssd.utils.time_budget import fit_schedule
    # 1000 iterations fit: 4 passes over 2000 images at batch 8
    assert fit_schedule(590, 0.5, 2000, 8, fixed_s=90) == (4, 2000)
    # a machine twice as slow: 500 iterations, 2 passes
    assert fit_schedule(590, 1.0, 2000, 8, fixed_s=90) == (2, 2000)
    # 1300 iterations: 6 passes of 216 iterations (1728 images)
    assert fit_schedule(740, 0.5, 2000, 8, fixed_s=90) == (6, 1728)
    # fewer iterations than one pass: one pass over fewer images
    assert fit_schedule(100, 0.5, 2000, 8) == (1, 1600)
    with pytest.raises(ValueError, match='holds no iteration'):
        fit_schedule(60, 0.5, 2000, 8, fixed_s=60)
