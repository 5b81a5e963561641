"""Distributed training on the CPU: two gloo processes."""
import os.path as osp
import re
import sys

import pytest
import torch
from mmengine.config import Config

from mmdssd.utils import setup_cpu_distributed

from ..conftest import TINY, TOOLS, run


def test_cpu_path_sets_gloo_and_no_device_ids(monkeypatch):
    monkeypatch.setattr(torch.cuda, 'is_available', lambda: False)
    monkeypatch.setattr(torch.distributed, 'is_initialized', lambda: True)
    cfg = Config.fromfile(TINY)
    assert setup_cpu_distributed(cfg, 'pytorch')
    assert cfg.env_cfg.dist_cfg.backend == 'gloo'
    assert cfg.model_wrapper_cfg.device_ids is None


def test_gpu_path_is_untouched(monkeypatch):
    monkeypatch.setattr(torch.cuda, 'is_available', lambda: True)
    cfg = Config.fromfile(TINY)
    before = cfg.to_dict()
    assert not setup_cpu_distributed(cfg, 'pytorch')
    assert cfg.to_dict() == before
    assert not setup_cpu_distributed(Config.fromfile(TINY), 'none')


def test_dist_train_two_processes(data_cwd, tmp_path):
    work_dir = tmp_path / 'ddp'
    out = run([
        'bash', osp.join(TOOLS, 'dist_train.sh'), TINY, '2', '--work-dir',
        work_dir, '--cfg-options', 'train_cfg.max_epochs=1',
        'train_cfg.val_interval=1', 'default_hooks.checkpoint.interval=1'
    ], cwd=data_cwd, env=dict(PORT='29533', PYTHON=sys.executable))
    logs = list(work_dir.glob('*/*.log'))
    assert logs, out[-3000:]
    log = logs[0].read_text()
    assert 'Distributed launcher: pytorch' in log
    assert 'Distributed training: True' in log
    assert "'backend': 'gloo'" in log or 'backend=gloo' in log or \
        "backend='gloo'" in log
    # 16 images / (2 processes x batch 8) = 1 iteration per epoch
    assert re.search(r'Epoch\(train\)\s+\[1\]\[1/1\]', log), log[-2000:]
    assert (work_dir / 'epoch_1.pth').is_file()
    assert 'pascal_voc/mAP' in log
