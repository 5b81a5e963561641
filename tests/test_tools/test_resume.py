"""A run killed with SIGKILL mid-training and resumed ends where an
uninterrupted run of the same length ends (issue 13)."""
import os
import os.path as osp
import re
import shutil
import signal
import subprocess
import time

import torch

from ..conftest import PYTHON, ROOT, TINY, TOOLS, run

OPTIONS = [
    '--cfg-options', 'train_cfg.max_epochs=3', 'train_cfg.val_interval=3',
    'default_hooks.checkpoint.interval=1',
    'default_hooks.checkpoint.max_keep_ckpts=5', 'randomness.seed=0',
    'randomness.deterministic=True'
]


def _train(work_dir, cwd, *extra):
    return [PYTHON, osp.join(TOOLS, 'train.py'), TINY, '--work-dir',
            str(work_dir)] + list(extra) + OPTIONS


def _max_diff(a, b):
    sa = torch.load(a, map_location='cpu', weights_only=True)['state_dict']
    sb = torch.load(b, map_location='cpu', weights_only=True)['state_dict']
    assert sa.keys() == sb.keys()
    return max((sa[k].double() - sb[k].double()).abs().max().item()
               for k in sa if sa[k].is_floating_point())


def _final_metrics(work_dir):
    logs = sorted(work_dir.glob('*/*.log'))
    found = re.findall(r'Epoch\(val\) \[3\]\[\d+/\d+\]\s+(.*?)\s+data_time',
                       logs[-1].read_text())
    assert found, logs[-1]
    return found[-1]


def test_sigkill_then_resume_equals_an_uninterrupted_run(data_cwd, tmp_path):
    whole = tmp_path / 'whole'
    run(_train(whole, data_cwd), cwd=data_cwd)

    killed = tmp_path / 'killed'
    env = dict(os.environ, PYTHONPATH=ROOT)
    proc = subprocess.Popen(_train(killed, data_cwd), cwd=data_cwd, env=env,
                            stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    deadline = time.time() + 600
    # MMEngine writes last_checkpoint once epoch_1.pth is complete
    while not (killed / 'last_checkpoint').is_file() and proc.poll() is None:
        assert time.time() < deadline
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)  # in epoch 2, with no warning
    proc.wait()
    assert not (killed / 'epoch_3.pth').exists()
    out = run(_train(killed, data_cwd, '--resume'), cwd=data_cwd)
    assert 'resumed epoch: ' in out
    assert _max_diff(whole / 'epoch_3.pth', killed / 'epoch_3.pth') <= 1e-6
    # and the same metrics at the end (the validation after epoch 3)
    assert _final_metrics(whole) == _final_metrics(killed)

    # the same resume without the random states does not replay the run:
    # the test can tell the difference
    control = tmp_path / 'control'
    control.mkdir()
    shutil.copy(whole / 'epoch_1.pth', control / 'epoch_1.pth')
    run(_train(control, data_cwd, '--resume', control / 'epoch_1.pth') +
        ['custom_hooks=[]'], cwd=data_cwd)
    assert _max_diff(whole / 'epoch_3.pth', control / 'epoch_3.pth') > 1e-4
