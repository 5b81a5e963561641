"""tools/train.py -> checkpoint -> --resume -> tools/test.py (VOC + COCO)."""
import os.path as osp
import re
import shutil

import torch
from mmengine.config import Config

from ..conftest import (PYTHON, TINY, TOOLS, free_port, run,
                        run_status, shell_python)


def test_train_writes_checkpoints_and_evaluates(trained_tiny):
    assert osp.isfile(trained_tiny / 'epoch_1.pth')
    assert osp.isfile(trained_tiny / 'epoch_2.pth')
    # weights_only=True: loads only with the globals mmdssd allows
    ckpt = torch.load(trained_tiny / 'epoch_2.pth', map_location='cpu',
                      weights_only=True)
    assert ckpt['meta']['epoch'] == 2
    assert any(k.startswith('neck.deconv_modules') for k in ckpt['state_dict'])
    # ... and evaluates: the validation after each epoch logged metrics
    log = next(trained_tiny.glob('*/*.log')).read_text()
    assert len(re.findall(r'Epoch\(val\) \[\d+\]\[\d+/\d+\]\s+'
                          r'pascal_voc/mAP: [0-9.]+', log)) == 2, log[-2000:]
    assert 'coco/bbox_mAP_s: ' in log


def test_num_classes_that_disagree_with_the_data_stop_training(data_cwd,
                                                               tmp_path):
    """MMDetection's NumClassCheckHook (kept in our runtime) names both
    sides before the first iteration."""
    proc = run_status(
        [PYTHON, osp.join(TOOLS, 'train.py'), TINY, '--work-dir', tmp_path,
         '--cfg-options', 'model.bbox_head.num_classes=4'],
        cwd=data_cwd, timeout=300)
    assert proc.returncode != 0
    assert re.search(r'num_classes` \(4\) in DSSDHead.*does not match.*'
                     r'length of `classes` 5\) in VOCDataset', proc.stderr,
                     re.S), \
        proc.stderr[-2000:]
    assert not list(tmp_path.glob('epoch_*.pth'))


def test_resume_continues_from_checkpoint(trained_tiny, data_cwd, tmp_path):
    shutil.copy(trained_tiny / 'epoch_2.pth', tmp_path)  # others read it
    before = torch.load(tmp_path / 'epoch_2.pth', map_location='cpu',
                        weights_only=True)
    out = run([
        PYTHON, osp.join(TOOLS, 'train.py'), TINY, '--work-dir', tmp_path,
        '--resume', tmp_path / 'epoch_2.pth', '--cfg-options',
        'train_cfg.max_epochs=3', 'train_cfg.val_interval=10',
        'default_hooks.checkpoint.interval=1',
        'default_hooks.checkpoint.max_keep_ckpts=5'
    ], cwd=data_cwd)
    assert 'resumed epoch: 2' in out
    after = torch.load(tmp_path / 'epoch_3.pth', map_location='cpu',
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


def _metrics(out):
    return {k: float(v) for k, v in re.findall(
        r'(pascal_voc/mAP|coco/bbox_mAP): ([0-9.]+)', out)}


def test_fuse_conv_bn_and_show_dir(trained_tiny, data_cwd, tmp_path):
    """tools/test.py --fuse-conv-bn (FuseConvBNHook) gives the unfolded
    model's metrics; --show-dir draws every test image."""
    ckpt = trained_tiny / 'epoch_2.pth'
    plain = _metrics(run([PYTHON, osp.join(TOOLS, 'test.py'), TINY, ckpt,
                          '--work-dir', tmp_path / 'plain'], cwd=data_cwd))
    out = run([PYTHON, osp.join(TOOLS, 'test.py'), TINY, ckpt, '--work-dir',
               tmp_path / 'fused', '--fuse-conv-bn', '--show-dir', 'shown'],
              cwd=data_cwd)
    fused = _metrics(out)
    assert set(plain) == set(fused) == {'pascal_voc/mAP', 'coco/bbox_mAP'}
    for key in plain:
        assert abs(plain[key] - fused[key]) <= 1e-3, (key, plain, fused)
    drawn = list((tmp_path / 'fused').glob('*/shown/*.jpg'))
    assert len(drawn) == 8  # the 8 test images


def test_dist_test_two_processes(trained_tiny, data_cwd, tmp_path):
    out = run(['bash', osp.join(TOOLS, 'dist_test.sh'), TINY,
               trained_tiny / 'epoch_2.pth', '2', '--work-dir', tmp_path],
              cwd=data_cwd,
              env=dict(PORT=str(free_port()), PYTHON=shell_python(),
                       CUDA_VISIBLE_DEVICES=''))
    log = next(tmp_path.glob('*/*.log')).read_text()
    assert 'Distributed launcher: pytorch' in log
    assert re.search(r'pascal_voc/mAP: [0-9.]+', out + log)


def test_auto_scale_lr_and_amp_flags(data_cwd, tmp_path):
    """--auto-scale-lr scales the lr by the real batch (2 images against a
    base of 1: x2, the log says so); --amp on a machine without a GPU is
    bf16 autocast (CPUAmpOptimWrapper), refused with a clear message on a
    CPU without native bf16, and trained (emulated) when told to. One run
    with both flags, one iteration of two images: emulated bf16 is
    slow, so the images are resized to 128 (the pipeline's Resize)."""
    base = [PYTHON, osp.join(TOOLS, 'train.py'), TINY,
            '--work-dir', str(tmp_path / 'amp'), '--cfg-options',
            'train_cfg.max_epochs=1', 'train_cfg.val_interval=10',
            'train_dataloader.batch_size=2',
            'train_dataloader.dataset.indices=2',
            'train_dataloader.dataset.pipeline.3.scale=(128,128)',
            'auto_scale_lr.base_batch_size=1']
    from mmdssd.engine import cpu_bf16_support
    if not cpu_bf16_support()[0]:
        proc = run_status(base + ['--amp'], cwd=data_cwd, timeout=300,
                          env=dict(CUDA_VISIBLE_DEVICES=''))
        assert proc.returncode != 0
        assert ('UnsupportedCPUPrecisionError: --amp / CPUAmpOptimWrapper: '
                in proc.stderr and 'has neither AVX-512 BF16 nor AMX'
                in proc.stderr), proc.stderr[-2000:]
        assert not (tmp_path / 'amp' / 'epoch_1.pth').exists()
        base.append('optim_wrapper.check_hardware=False')
    out = run(base + ['--auto-scale-lr', '--amp'], cwd=data_cwd,
              env=dict(CUDA_VISIBLE_DEVICES=''))
    assert re.search(r'LR is set based on batch size of 1 and the current '
                     r'batch size is 2\. Scaling the original LR by 2\.0',
                     out), out[-3000:]
    dumped = Config.fromfile(next((tmp_path / 'amp').glob('*.py')))
    assert dumped.optim_wrapper.type == 'CPUAmpOptimWrapper'
    resize = dumped.train_dataloader.dataset.pipeline[3]
    assert resize.type == 'Resize' and tuple(resize.scale) == (128, 128)
    state = torch.load(tmp_path / 'amp' / 'epoch_1.pth', weights_only=True)
    assert 'loss_scaler' not in state['optimizer']


def _refused(cmd, cwd):
    proc = run_status(cmd, cwd=cwd, timeout=300)
    assert proc.returncode != 0
    return proc.stderr


def test_test_tool_names_a_broken_checkpoint(trained_tiny, data_cwd,
                                             tmp_path):
    broken = tmp_path / 'epoch_2.pth'
    data = (trained_tiny / 'epoch_2.pth').read_bytes()
    broken.write_bytes(data[:len(data) // 2])
    err = _refused([PYTHON, osp.join(TOOLS, 'test.py'), TINY, broken,
                    '--work-dir', tmp_path], data_cwd)
    assert f'CheckpointError: {broken}: incomplete' in err, err[-2000:]


def test_test_tool_refuses_a_checkpoint_of_other_classes_and_boxes(
        trained_tiny, data_cwd, tmp_path):
    """One error naming both sides, not a size-mismatch warning and an
    evaluation of layers that were never loaded."""
    ckpt = trained_tiny / 'epoch_2.pth'
    err = _refused([
        PYTHON, osp.join(TOOLS, 'test.py'), TINY, ckpt, '--work-dir',
        tmp_path, '--cfg-options',
        'test_dataloader.dataset.metainfo.classes=(a,b,c,d,e)',
        'model.bbox_head.anchor_generator.ratios=[2]'
    ], data_cwd)
    assert f'CheckpointError: {ckpt} was not trained for' in err, err[-2000:]
    assert ("classes: checkpoint ('circle', 'square', 'triangle', 'cross', "
            "'ring'), config ('a', 'b', 'c', 'd', 'e')") in err
    assert 'default boxes, ratios: checkpoint [1.6, 2, 3], config [2]' in err
    assert 'tensors differ in shape' in err
    assert 'pascal_voc/mAP' not in err
