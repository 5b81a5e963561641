import io
import os.path as osp
import types

import pytest
import torch
import torch.nn as nn

from mmdssd.engine import FreezeNormHook, ProgressHook
from mmdssd.engine.hooks.progress_hook import format_seconds

from ..conftest import PYTHON, TINY, TOOLS, run_status


def _runner(model, **kw):
    return types.SimpleNamespace(model=model, **kw)


def test_freeze_norm_hook_trains_all_but_bn():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4), nn.ReLU(),
                          nn.Conv2d(4, 2, 1), nn.BatchNorm2d(2))
    runner = _runner(model)
    hook = FreezeNormHook()
    bn_before = [p.clone() for p in model[1].parameters()]
    stats_before = model[1].running_mean.clone()
    conv_before = model[0].weight.clone()
    hook.before_train(runner)
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    for _ in range(3):
        model.train()  # what MMEngine's loops do at each epoch
        hook.before_train_iter(runner, 0)
        assert not model[1].training and not model[4].training
        assert model[0].training
        model(torch.randn(4, 3, 8, 8)).square().mean().backward()
        opt.step()
        opt.zero_grad()
    for before, after in zip(bn_before, model[1].parameters()):
        assert torch.equal(before, after) and not after.requires_grad
    assert torch.equal(stats_before, model[1].running_mean)
    assert not torch.equal(conv_before, model[0].weight)


def test_stage2_config_freezes_bn():
    from ..conftest import load_cfg
    cfg = load_cfg('dssd_r101_voc_stage2.py')
    assert any(h['type'] == 'FreezeNormHook' for h in cfg.custom_hooks)
    assert cfg.model.backbone.norm_eval


def test_progress_line_and_eta():
    out = io.StringIO()
    hook = ProgressHook(interval=5, width=10, stream=out)
    runner = types.SimpleNamespace(iter=0, max_iters=20, epoch=0,
                                   max_epochs=2)
    hook.before_train(runner)
    hook._start -= 10  # pretend 10 s have passed when 5 iterations are done
    for i in range(5):
        runner.iter = i
        hook.after_train_iter(runner, i, outputs=dict(loss=torch.tensor(2.)))
    lines = out.getvalue().splitlines()
    assert len(lines) == 1  # every 5 iterations
    assert lines[0].startswith('[##........]  25% iter 5/20 epoch 1/2')
    assert 'loss 2.000' in lines[0]
    assert lines[0].endswith('ETA 0:30')  # 15 iterations at 2 s
    with pytest.raises(ValueError, match='interval'):
        ProgressHook(interval=0)


def test_format_seconds():
    assert format_seconds(83) == '1:23'
    assert format_seconds(3700) == '1:01:40'
    assert format_seconds(-1) == '0:00'


def test_invalid_loss_names_iteration_and_last_checkpoint(tmp_path):
    from mmdssd.engine import InvalidLossError, StopOnInvalidLossHook
    hook = StopOnInvalidLossHook()
    runner = types.SimpleNamespace(iter=41, epoch=2, work_dir=str(tmp_path))
    good = dict(loss=torch.tensor(1.5), loss_cls=torch.tensor(1.0))
    hook.after_train_iter(runner, 0, outputs=good)  # finite: nothing
    bad = dict(loss=torch.tensor(float('nan')),
               loss_cls=torch.tensor(float('inf')),
               loss_bbox=torch.tensor(0.5))
    with pytest.raises(InvalidLossError,
                       match=r'iteration 42 \(epoch 3\).*loss_cls=inf.*'
                       r'loss_bbox=0.5.*none written yet'):
        hook.after_train_iter(runner, 0, outputs=bad)
    (tmp_path / 'last_checkpoint').write_text(str(tmp_path / 'epoch_2.pth'))
    with pytest.raises(InvalidLossError, match='epoch_2.pth'):
        hook.after_train_iter(runner, 0, outputs=bad)


def test_invalid_loss_stops_a_real_run(data_cwd, tmp_path):
    """tools/train.py with an absurd learning rate: the run stops at the
    first non-finite loss with the hook's message, not hours later."""
    proc = run_status(
        [PYTHON, osp.join(TOOLS, 'train.py'), TINY, '--work-dir',
         tmp_path / 'nan', '--cfg-options',
         'optim_wrapper.optimizer.lr=1e30', 'optim_wrapper.clip_grad=None',
         'train_cfg.max_epochs=5', 'train_cfg.val_interval=10'],
        cwd=data_cwd, timeout=600)
    assert proc.returncode != 0
    assert 'InvalidLossError: training loss is not finite at iteration' in \
        proc.stderr, proc.stderr[-3000:]


def test_channels_last_hook_keeps_the_numbers():
    from mmdssd.engine import ChannelsLastHook
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4)).eval()
    x = torch.randn(2, 3, 9, 9)
    before = model(x)
    ChannelsLastHook().before_train(_runner(model))
    assert model[0].weight.is_contiguous(memory_format=torch.channels_last)
    assert torch.allclose(model(x), before, atol=1e-5)
