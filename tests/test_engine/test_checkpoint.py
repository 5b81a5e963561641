import os
import shutil

import pytest
import torch
import torch.nn as nn

from mmdssd.engine import (CheckpointError, check_checkpoint_fits,
                           find_resumable_checkpoint, load_checked_checkpoint)

from ..conftest import load_cfg


MARK = 1.2345


def _save(path, **extra):
    weights = dict(weight=torch.full((64, ), MARK))
    torch.save(dict(state_dict=weights, **extra), path)
    return str(path)


def _truncate(path, fraction=0.5):
    with open(path, 'r+b') as f:
        f.truncate(int(os.path.getsize(path) * fraction))


def test_load_checked_names_what_is_wrong(tmp_path):
    good = _save(tmp_path / 'good.pth')
    assert set(load_checked_checkpoint(good)) == {'state_dict'}
    truncated = str(tmp_path / 'truncated.pth')
    shutil.copy(good, truncated)
    _truncate(truncated)
    with pytest.raises(CheckpointError, match=f'{truncated}: incomplete'):
        load_checked_checkpoint(truncated)
    damaged = str(tmp_path / 'damaged.pth')
    data = bytearray(open(good, 'rb').read())
    middle = data.index(torch.tensor([MARK]).numpy().tobytes()) + 1
    data[middle] ^= 0xFF  # one bit pattern inside the tensor's bytes
    open(damaged, 'wb').write(bytes(data))
    with pytest.raises(CheckpointError, match='damaged'):
        load_checked_checkpoint(damaged)
    weights = str(tmp_path / 'weights.pth')
    torch.save(nn.Linear(2, 2).state_dict(), weights)
    with pytest.raises(CheckpointError, match='no state_dict'):
        load_checked_checkpoint(weights)
    with pytest.raises(CheckpointError, match='no such checkpoint'):
        load_checked_checkpoint(str(tmp_path / 'missing.pth'))


def test_resume_takes_the_newest_complete_checkpoint(tmp_path):
    older = _save(tmp_path / 'epoch_1.pth')
    newest = _save(tmp_path / 'epoch_2.pth')
    os.utime(older, (1, 1))
    _save(tmp_path / 'best_coco_bbox_mAP_epoch_2.pth')
    _truncate(newest)
    (tmp_path / 'last_checkpoint').write_text(newest)
    path, skipped = find_resumable_checkpoint(str(tmp_path))
    assert path == older
    reasons = [(f, why.split(' ')[0]) for f, why in skipped]
    assert reasons == [(newest, 'incomplete')]
    # last_checkpoint naming a deleted file (MMEngine's max_keep_ckpts=1)
    os.remove(newest)
    path, skipped = find_resumable_checkpoint(str(tmp_path))
    assert path == older and 'missing' in skipped[0][1]
    os.remove(older)
    assert find_resumable_checkpoint(str(tmp_path))[0] is None


def test_checkpoint_for_other_classes_or_boxes_is_refused(tmp_path):
    cfg = load_cfg('synthetic/dssd_tiny_synthetic.py')
    model = nn.Linear(2, 3)
    other = load_cfg('synthetic/dssd_tiny_synthetic.py')
    other.model.bbox_head.anchor_generator.ratios = [2]
    ckpt = dict(state_dict=nn.Linear(2, 2).state_dict(),
                meta=dict(dataset_meta=dict(classes=('a', 'b')),
                          cfg=other.pretty_text))
    with pytest.raises(CheckpointError) as info:
        check_checkpoint_fits(ckpt, 'x.pth', model, cfg, ('a', 'b', 'c'))
    message = str(info.value)
    assert message.startswith(f'x.pth was not trained for {cfg.filename}')
    assert "classes: checkpoint ('a', 'b'), config ('a', 'b', 'c')" in message
    assert 'default boxes, ratios: checkpoint [2], config [1.6, 2, 3]' in \
        message
    assert 'weight (2, 2) vs (3, 2)' in message
    # the same model, classes and boxes pass
    ckpt = dict(state_dict=model.state_dict(),
                meta=dict(dataset_meta=dict(classes=('a', 'b', 'c')),
                          cfg=cfg.pretty_text))
    check_checkpoint_fits(ckpt, 'x.pth', model, cfg, ('a', 'b', 'c'))
    with pytest.raises(CheckpointError, match='not in the checkpoint, e.g. '
                       'bias'):
        del ckpt['state_dict']['bias']
        check_checkpoint_fits(ckpt, 'x.pth', model, cfg, None)
