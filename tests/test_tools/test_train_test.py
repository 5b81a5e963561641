"""tools/train.py -> checkpoint -> --resume -> tools/test.py (VOC + COCO)."""
import os.path as osp
import re

import torch

from ..conftest import PYTHON, TINY, TOOLS, run


def test_train_writes_checkpoints_and_evaluates(trained_tiny):
    assert osp.isfile(trained_tiny / 'epoch_1.pth')
    assert osp.isfile(trained_tiny / 'epoch_2.pth')
    # weights_only=True: loads only with the globals mmdssd allows
    ckpt = torch.load(trained_tiny / 'epoch_2.pth', map_location='cpu',
                      weights_only=True)
    assert ckpt['meta']['epoch'] == 2
    assert any(k.startswith('neck.deconv_modules') for k in ckpt['state_dict'])


def test_resume_continues_from_checkpoint(trained_tiny, data_cwd):
    before = torch.load(trained_tiny / 'epoch_2.pth', map_location='cpu',
                      weights_only=True)
    out = run([
        PYTHON, osp.join(TOOLS, 'train.py'), TINY, '--work-dir', trained_tiny,
        '--resume', trained_tiny / 'epoch_2.pth', '--cfg-options',
        'train_cfg.max_epochs=3', 'train_cfg.val_interval=10',
        'default_hooks.checkpoint.interval=1',
        'default_hooks.checkpoint.max_keep_ckpts=5'
    ], cwd=data_cwd)
    assert 'resumed epoch: 2' in out
    after = torch.load(trained_tiny / 'epoch_3.pth', map_location='cpu',
                      weights_only=True)
    assert after['meta']['iter'] > before['meta']['iter']
    assert after['meta']['epoch'] == 3


def test_test_tool_reports_voc_and_coco(trained_tiny, data_cwd, tmp_path):
    pkl = tmp_path / 'dets.pkl'
    out = run([
        PYTHON, osp.join(TOOLS, 'test.py'), TINY, trained_tiny / 'epoch_2.pth',
        '--work-dir', tmp_path, '--out', pkl
    ], cwd=data_cwd)
    assert re.search(r'pascal_voc/mAP: [0-9.]+', out), out[-2000:]
    assert re.search(r'coco/bbox_mAP: [0-9.-]+', out)
    assert re.search(r'coco/bbox_mAP_s: [0-9.-]+', out)
    assert osp.getsize(pkl) > 0
