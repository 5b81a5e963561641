import errno
import os

import pytest
import torch
import torch.nn as nn
from mmengine.config import Config
from mmengine.evaluator import BaseMetric, Evaluator
from mmengine.model import BaseModel
from mmengine.runner import Runner
from torch.utils.data import Dataset

from mmdssd.engine import load_checked_checkpoint, use_atomic_checkpoints
from mmdssd.fileio import CheckpointWriteError, atomic_local_backend


class _Toy(BaseModel):

    def __init__(self):
        super().__init__()
        self.linear = nn.Linear(2, 1)

    def forward(self, inputs, data_samples=None, mode='tensor'):
        out = self.linear(inputs)
        if mode == 'loss':
            return dict(loss=out.square().mean())
        return [dict(score=float(v)) for v in out.flatten()]


class _Points(Dataset):

    def __len__(self):
        return 4

    def __getitem__(self, index):
        return dict(inputs=torch.full((2, ), float(index)))


class _Epochs(BaseMetric):
    """A metric that improves every epoch: each validation is a new best."""

    def __init__(self):
        super().__init__()
        self.calls = 0

    def process(self, data_batch, data_samples):
        self.results.append(0)

    def compute_metrics(self, results):
        self.calls += 1
        return dict(score=self.calls)


def _runner(work_dir, max_epochs, **hook):
    loader = dict(dataset=_Points(), batch_size=2, num_workers=0,
                  sampler=dict(type='DefaultSampler', shuffle=False),
                  collate_fn=dict(type='default_collate'))
    return Runner(
        model=_Toy(), work_dir=str(work_dir), train_dataloader=loader,
        val_dataloader=loader, val_evaluator=Evaluator(_Epochs()),
        optim_wrapper=dict(optimizer=dict(type='SGD', lr=0.01)),
        train_cfg=dict(by_epoch=True, max_epochs=max_epochs),
        val_cfg=dict(), default_scope='mmdet',
        default_hooks=dict(checkpoint=dict(type='AtomicCheckpointHook',
                                           interval=1, **hook)),
        experiment_name=f'toy_{os.path.basename(work_dir)}_{max_epochs}')


def _pth(work_dir):
    return sorted(f for f in os.listdir(work_dir) if '.pth' in f)


def test_keeps_the_newest_complete_checkpoints(tmp_path):
    _runner(tmp_path, 3, max_keep_ckpts=1).train()
    assert _pth(tmp_path) == ['epoch_3.pth']
    last = (tmp_path / 'last_checkpoint').read_text()
    assert last == str(tmp_path / 'epoch_3.pth')
    assert load_checked_checkpoint(last)['meta']['epoch'] == 3


def _fail_on(name):
    write = atomic_local_backend.write_bytes

    def write_bytes(f, data):
        if os.path.basename(f.name).startswith(f'.{name}'):
            f.write(data[:len(data) // 2])
            raise OSError(errno.ENOSPC, 'No space left on device')
        write(f, data)

    return write_bytes


def test_full_disk_keeps_the_previous_checkpoint(tmp_path, monkeypatch):
    monkeypatch.setattr(atomic_local_backend, 'write_bytes',
                        _fail_on('epoch_2.pth'))
    with pytest.raises(CheckpointWriteError) as info:
        _runner(tmp_path, 3, max_keep_ckpts=1).train()
    assert str(tmp_path / 'epoch_2.pth') in str(info.value)
    assert 'MiB free' in str(info.value)
    assert _pth(tmp_path) == ['epoch_1.pth']  # not removed, no partial file
    assert (tmp_path / 'last_checkpoint').read_text() == str(
        tmp_path / 'epoch_1.pth')
    load_checked_checkpoint(str(tmp_path / 'epoch_1.pth'))


def test_best_checkpoint_is_replaced_only_once_its_successor_is_complete(
        tmp_path, monkeypatch):
    monkeypatch.setattr(atomic_local_backend, 'write_bytes',
                        _fail_on('best_score_epoch_2.pth'))
    runner = _runner(tmp_path, 2, save_best='score', rule='greater')
    with pytest.raises(CheckpointWriteError, match='best_score_epoch_2'):
        runner.train()
    assert _pth(tmp_path) == ['best_score_epoch_1.pth', 'epoch_1.pth',
                              'epoch_2.pth']


def test_partial_files_of_a_killed_write_are_removed(tmp_path):
    partial = tmp_path / f'.epoch_2.pth{atomic_local_backend.TMP_MARK}123'
    partial.write_bytes(b'half')
    _runner(tmp_path, 1).train()
    assert not partial.exists()


def test_plain_checkpoint_hooks_are_made_atomic():
    cfg = Config(dict(default_hooks=dict(checkpoint=dict(
        type='CheckpointHook', interval=2, max_keep_ckpts=3))))
    use_atomic_checkpoints(cfg)
    assert cfg.default_hooks.checkpoint == dict(
        type='AtomicCheckpointHook', interval=2, max_keep_ckpts=3)
    mine = Config(dict(default_hooks=dict(checkpoint=dict(type='MyHook'))))
    use_atomic_checkpoints(mine)
    assert mine.default_hooks.checkpoint.type == 'MyHook'
