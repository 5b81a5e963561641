"""Distributed training on the CPU: two gloo processes."""
import os.path as osp
import re

import pytest
import torch
from mmengine.config import Config

from mmdssd.utils import setup_cpu_distributed

from ..conftest import TINY, TOOLS, free_port, run, shell_python


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
    ],
              cwd=data_cwd,
              # the CPU path on any machine: no cuda:1 or nccl on GPU hosts
              env=dict(PORT=str(free_port()), PYTHON=shell_python(),
                       CUDA_VISIBLE_DEVICES=''))
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


def test_syncbn_config_falls_back_to_bn_on_cpu(monkeypatch):
    """configs/dssd_r101_voc_syncbn.py under the CPU gloo launcher: torch's
    SyncBatchNorm refuses CPU tensors, so the CPU path trains plain BN and
    says so; on GPUs the config is untouched."""
    from ..conftest import load_cfg
    monkeypatch.setattr(torch.cuda, 'is_available', lambda: False)
    monkeypatch.setattr(torch.distributed, 'is_initialized', lambda: True)
    cfg = load_cfg('dssd_r101_voc_syncbn.py')
    with pytest.warns(UserWarning, match='SyncBN needs CUDA.*model.neck'):
        setup_cpu_distributed(cfg, 'pytorch')
    assert cfg.model.neck.norm_cfg.type == 'BN'
    assert cfg.model.bbox_head.norm_cfg.type == 'BN'
    monkeypatch.setattr(torch.cuda, 'is_available', lambda: True)
    gpu = load_cfg('dssd_r101_voc_syncbn.py')
    setup_cpu_distributed(gpu, 'pytorch')
    assert gpu.model.neck.norm_cfg.type == 'SyncBN'
