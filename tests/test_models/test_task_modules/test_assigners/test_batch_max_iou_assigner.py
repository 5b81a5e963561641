"""BatchMaxIoUAssigner: MMDetection's MaxIoUAssigner for a whole batch,
and a refusal, when built, of every option the batch path lacks."""
import pytest
import torch
from mmdet.models.task_modules.assigners import MaxIoUAssigner
from mmdet.registry import TASK_UTILS
from mmengine.structures import InstanceData

from mmdssd.models.task_modules.assigners import BatchMaxIoUAssigner

from ...test_dense_heads.test_dssd_head import (FEATS, SIZE, TRAIN_CFG,
                                                make_head, metas, random_gts)


def _assigner(**kwargs):
    cfg = dict(TRAIN_CFG.assigner)
    cfg.update(kwargs)
    return TASK_UTILS.build(cfg)


@pytest.mark.parametrize('neg,pos,min_pos,low_quality', [
    (0.5, 0.5, 0., True),
    (0.4, 0.5, 0.3, True),
    (0.5, 0.4, 0., False),
    (0.3, 0.3, 0., True),  # the main job's: many positives per gt
])
def test_batch_assignment_equals_max_iou_assigner(neg, pos, min_pos,
                                                  low_quality):
    """Per image, against MMDetection's MaxIoUAssigner on the valid boxes:
    an ignore band, positives below the negative threshold, gts that tie
    (a duplicated box), images without gts and invalid boxes."""
    settings = dict(pos_iou_thr=pos, neg_iou_thr=neg, min_pos_iou=min_pos,
                    match_low_quality=low_quality, ignore_iof_thr=-1,
                    gt_max_assign_all=False)
    assigner = _assigner(**settings)
    assert type(assigner) is BatchMaxIoUAssigner
    gts = random_gts([5, 0, 3], seed=3)
    gts[0] = InstanceData(  # gt 1 repeats gt 0: ties go to gt 0
        bboxes=torch.cat([gts[0].bboxes[:1], gts[0].bboxes]),
        labels=torch.cat([gts[0].labels[:1], gts[0].labels]))
    head = make_head()
    anchors, valid = head._anchors_and_flags(
        [(s, s) for s in FEATS], metas(3, (72, SIZE)), 'cpu')
    assert not valid.all()
    assigned, gt_boxes, gt_labels = assigner.batch_assign(
        anchors, valid, gts, num_classes=4)
    assert gt_boxes.shape == (3, 6, 4) and gt_labels.shape == (3, 6)
    assert (gt_labels[1] == 4).all()  # padding is background
    reference = MaxIoUAssigner(**settings)
    for i, gt in enumerate(gts):
        theirs = reference.assign(
            InstanceData(priors=anchors[valid[i]]), gt).gt_inds
        assert torch.equal(assigned[i][valid[i]], theirs), i
        assert (assigned[i][~valid[i]] == -1).all()
    # ...except the shared best box of low-quality matching: the later gt
    assert (assigned[0] == 2).sum() == int(low_quality)
    assert (assigned[0] == 1).sum() > 1
    if neg < pos:
        assert (assigned[0] == -1).any()  # the ignore band is used


def test_per_image_assign_is_max_iou_assigners():
    """Heads that assign image by image get MaxIoUAssigner's result."""
    gts = random_gts([4], seed=1)[0]
    priors = InstanceData(priors=make_head().prior_generator.grid_priors(
        [(s, s) for s in FEATS], device='cpu')[0])
    ours = _assigner().assign(priors, gts)
    theirs = MaxIoUAssigner(**{k: v for k, v in TRAIN_CFG.assigner.items()
                               if k != 'type'}).assign(priors, gts)
    assert torch.equal(ours.gt_inds, theirs.gt_inds)
    assert torch.equal(ours.max_overlaps, theirs.max_overlaps)


@pytest.mark.parametrize('setting, named', [
    (dict(perm_repeat_gt_cfg=dict(iou_thr=0.7, perm_range=0.01)),
     'perm_repeat_gt_cfg='),
    (dict(neg_iou_thr=(0.1, 0.4)), 'neg_iou_thr=(0.1, 0.4) (a range)'),
    (dict(gt_max_assign_all=True), 'gt_max_assign_all=True'),
    (dict(ignore_iof_thr=0.5), 'ignore_iof_thr=0.5 (ignored boxes)'),
    (dict(iou_calculator=dict(type='BboxOverlaps2D', scale=8.)),
     'iou_calculator=BboxOverlaps2D with scale/dtype'),
])
def test_refuses_what_the_batch_path_does_not_implement(setting, named):
    with pytest.raises(ValueError) as info:
        _assigner(**setting)
    assert str(info.value).startswith(
        'BatchMaxIoUAssigner does not implement ')
    assert named in str(info.value)
    assert 'use MaxIoUAssigner' in str(info.value)
