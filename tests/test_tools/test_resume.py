"""Nothing is lost: a real ``tools/train.py`` run killed at any moment (in a
step, in a validation, in a checkpoint write), or stopped by a full disk,
resumes with ``--resume`` and ends where an uninterrupted run ends."""
import os
import os.path as osp
import re
import shutil
import signal
import time

import pytest
import torch

from mmdssd.engine import CheckpointError, load_checked_checkpoint

from ..conftest import PYTHON, TINY, TOOLS, run, start_tool

# One worker trains the uninterrupted run (a module fixture) for all of them.
pytestmark = pytest.mark.xdist_group('uninterrupted_run')

EPOCHS = 4
OPTIONS = [
    '--cfg-options', f'train_cfg.max_epochs={EPOCHS}',
    'train_cfg.val_interval=2', 'default_hooks.checkpoint.interval=1',
    'randomness.seed=0', 'randomness.deterministic=True'
]


def _train(work_dir, config=TINY, *extra):
    return [PYTHON, osp.join(TOOLS, 'train.py'), config, '--work-dir',
            str(work_dir)] + list(extra) + OPTIONS


def _max_diff(a, b):
    sa = torch.load(a, map_location='cpu', weights_only=True)['state_dict']
    sb = torch.load(b, map_location='cpu', weights_only=True)['state_dict']
    assert sa.keys() == sb.keys()
    return max((sa[k].double() - sb[k].double()).abs().max().item()
               for k in sa if sa[k].is_floating_point())


def _final_metrics(work_dir):
    logs = sorted(work_dir.glob('*/*.log'))
    found = re.findall(
        rf'Epoch\(val\) \[{EPOCHS}\]\[\d+/\d+\]\s+(.*?)\s+data_time',
        logs[-1].read_text())
    assert found, logs[-1]
    return found[-1]


@pytest.fixture(scope='module')
def whole(data_cwd, tmp_path_factory):
    """The uninterrupted run, every checkpoint kept."""
    work_dir = tmp_path_factory.mktemp('whole')
    run(_train(work_dir) + ['default_hooks.checkpoint.max_keep_ckpts=10'],
        cwd=data_cwd)
    return work_dir


@pytest.fixture
def faulty_config(tmp_path):
    """The tiny config with the fault injection of ``train_faults``."""
    path = tmp_path / 'faulty.py'
    path.write_text(f'_base_ = {TINY!r}\ncustom_imports = dict(imports=['
                    "'tests.test_tools.train_faults'], "
                    'allow_failed_imports=False)\n')
    return str(path)


class Life:
    """One process of a run that is killed or fails and is resumed."""

    def __init__(self, config, work_dir, cwd, tmp_path):
        self.config, self.work_dir, self.cwd = config, work_dir, cwd
        self.events = tmp_path / 'events'
        self.log = tmp_path / 'out.log'

    def start(self, disk='', pause=0.0):
        self.events.write_text('')
        # conftest.run's environment, as the uninterrupted run's: with
        # other threads, sums in another order would differ in the last bits
        env = dict(MMDSSD_TEST_EVENTS=str(self.events),
                   MMDSSD_TEST_PAUSE=str(pause), MMDSSD_TEST_DISK=disk)
        return start_tool(_train(self.work_dir, self.config, '--resume'),
                          self.log, cwd=self.cwd, env=env)

    def kill_at(self, event, **start):
        proc = self.start(pause=1.0, **start)
        deadline = time.time() + 600
        while event not in self.events.read_text().splitlines():
            assert proc.poll() is None, self.log.read_text()[-3000:]
            assert time.time() < deadline
            time.sleep(0.02)
        proc.send_signal(signal.SIGKILL)
        proc.wait()

    def finish(self, **start):
        code = self.start(**start).wait()
        return code, self.log.read_text()

    def checkpoints(self):
        return sorted(f for f in os.listdir(self.work_dir) if '.pth' in f)

    def last(self):
        return osp.basename(
            (self.work_dir / 'last_checkpoint').read_text().strip())


def test_killed_anywhere_and_resumed_equals_an_uninterrupted_run(
        whole, data_cwd, faulty_config, tmp_path):
    work_dir = tmp_path / 'killed'
    life = Life(faulty_config, work_dir, data_cwd, tmp_path)
    # the tiny config keeps one checkpoint: MMEngine's hook removes it
    # before writing the next
    life.kill_at('train 1 1')  # in a step of epoch 2
    assert life.checkpoints() == ['epoch_1.pth'] and life.last() == (
        'epoch_1.pth')

    life.kill_at('writing epoch_2.pth', disk='slow')
    partial = [f for f in life.checkpoints() if f.startswith('.epoch_2')]
    assert len(partial) == 1, life.checkpoints()
    with pytest.raises(CheckpointError):  # really cut short
        load_checked_checkpoint(str(work_dir / partial[0]))
    assert life.last() == 'epoch_1.pth'
    load_checked_checkpoint(str(work_dir / 'epoch_1.pth'))

    code, out = life.finish(disk='full:epoch_2.pth')
    assert code != 0
    assert re.search(r'epoch_2\.pth: could not be written \(the disk is '
                     r'full; [\d.]+ MiB free in ', out), out[-3000:]
    assert life.checkpoints() == ['epoch_1.pth'] and life.last() == (
        'epoch_1.pth')

    life.kill_at('val 2 0')  # in the validation after epoch 2
    assert life.checkpoints() == ['epoch_2.pth'] and life.last() == (
        'epoch_2.pth')

    code, out = life.finish()
    assert code == 0, out[-3000:]
    assert 'resumed epoch: 2' in out
    assert _max_diff(whole / f'epoch_{EPOCHS}.pth',
                     work_dir / f'epoch_{EPOCHS}.pth') <= 1e-6
    assert _final_metrics(whole) == _final_metrics(work_dir)


def test_resume_skips_a_truncated_newest_checkpoint(whole, data_cwd,
                                                    tmp_path):
    # what MMEngine's own hook leaves after a kill in its write
    shutil.copy(whole / 'epoch_1.pth', tmp_path / 'epoch_1.pth')
    newest = tmp_path / 'epoch_2.pth'
    shutil.copy(whole / 'epoch_2.pth', newest)
    with open(newest, 'r+b') as f:
        f.truncate(os.path.getsize(newest) // 3)
    (tmp_path / 'last_checkpoint').write_text(str(newest))
    out = run(_train(tmp_path, TINY, '--resume'), cwd=data_cwd)
    assert f'--resume: skipped {newest}: incomplete' in out
    assert 'resumed epoch: 1' in out
    assert _max_diff(whole / f'epoch_{EPOCHS}.pth',
                     tmp_path / f'epoch_{EPOCHS}.pth') <= 1e-6


def test_resume_without_random_states_does_not_replay(whole, data_cwd,
                                                      tmp_path):
    # the test above can tell a replay from a near miss
    shutil.copy(whole / 'epoch_1.pth', tmp_path / 'epoch_1.pth')
    run(_train(tmp_path, TINY, '--resume', tmp_path / 'epoch_1.pth') +
        ['custom_hooks=[]'], cwd=data_cwd)
    assert _max_diff(whole / f'epoch_{EPOCHS}.pth',
                     tmp_path / f'epoch_{EPOCHS}.pth') > 1e-4


def test_resume_from_a_broken_file_is_one_clear_error(data_cwd, tmp_path):
    broken = tmp_path / 'epoch_1.pth'
    broken.write_bytes(b'PK\x03\x04 not a whole archive')
    with pytest.raises(AssertionError,
                       match=re.escape(f'CheckpointError: {broken}: '
                                       'incomplete')):
        run(_train(tmp_path, TINY, '--resume', broken), cwd=data_cwd)
