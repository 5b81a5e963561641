import math
import os.path as osp
import subprocess
import sys

import numpy as np
import pytest
import torch

from mmdssd.utils.anchor_ratios import (anchor_coverage, kmeans_ratios,
                                        positives_per_box, resize_factors,
                                        training_boxes)

from ..conftest import CONFIGS, ROOT, TOOLS


def test_kmeans_recovers_known_clusters():
    rng = np.random.default_rng(0)
    truth = [1.0, 1.6, 3.0]
    ratios = np.concatenate(
        [np.full(200, r) * np.exp(rng.normal(0, 0.02, 200)) for r in truth])
    flip = rng.random(len(ratios)) < 0.5  # both orientations
    w = np.where(flip, ratios, 1.0) * 20
    h = np.where(flip, 1.0, ratios) * 20
    assert kmeans_ratios(w, h, 3) == pytest.approx(truth, rel=0.02)
    with pytest.raises(ValueError, match='cannot make 3 clusters'):
        kmeans_ratios(w[:2], h[:2], 3)
    with pytest.raises(ValueError, match='positive'):
        kmeans_ratios(np.array([1., 0., 2.]), np.ones(3), 2)


def test_coverage_counts_matches_by_size():
    gts = [torch.tensor([[0., 0., 10., 10.], [0., 0., 100., 100.]])]
    priors = torch.tensor([[0., 0., 10., 10.], [0., 0., 100., 40.]])
    cov = anchor_coverage(priors, gts)
    assert cov['all']['count'] == 2 and cov['all']['matched'] == 0.5
    assert cov['small'] == dict(count=1, matched=1.0, mean_best_iou=1.0)
    assert cov['large'] == dict(count=1, matched=0.0,
                                mean_best_iou=pytest.approx(0.4))
    assert cov['medium']['count'] == 0


@pytest.mark.parametrize('thr, per_box', [(0.5, [2., 1.]), (0.3, [3., 1.])])
def test_positives_per_box_follow_the_assigner(thr, per_box):
    """IoUs with the first box 1, 0.83, 0.33 and 0; the second box's best
    default box (IoU 0.25) is positive by low-quality matching alone; an
    image without boxes counts nothing."""
    from mmdet.models.task_modules.assigners import MaxIoUAssigner
    priors = torch.tensor([[0., 0., 10., 10.], [0., 0., 10., 12.],
                           [0., 0., 10., 30.], [50., 50., 60., 60.]])
    gts = [torch.tensor([[0., 0., 10., 10.]]),
           torch.tensor([[50., 50., 70., 70.]]), torch.zeros(0, 4)]
    assigner = MaxIoUAssigner(pos_iou_thr=thr, neg_iou_thr=thr,
                              min_pos_iou=0.)
    got = positives_per_box(priors, gts, assigner)
    assert got == dict(count=2, mean=sum(per_box) / 2, median=min(per_box),
                       single=0.5)
    assert positives_per_box(priors, gts[2:], assigner)['count'] == 0


def test_resize_factors():
    assert resize_factors([dict(type='Resize', scale=(256, 256),
                                keep_ratio=False)], (320, 160)) == (0.8, 1.6)
    assert resize_factors([dict(type='Resize', scale=(1000, 600),
                                keep_ratio=True)], (500, 300)) == (2.0, 2.0)
    assert resize_factors([], (5, 5)) == (1.0, 1.0)


def test_tool_finds_the_synthetic_sets_ratios(tmp_path):
    """The synthetic generator draws w = s*a, h = s/a with log a uniform
    in [-0.4, 0.4], so |log(w/h)| is uniform on [0, 0.8] and 3-means puts
    the ratios at exp(0.8 * (2j + 1) / 6) = 1.14, 1.49, 1.95. Boxes are
    kept at their shape (keep_ratio=True) for this check."""
    from mmdssd.datasets import SyntheticSpec, generate_synthetic_dataset
    generate_synthetic_dataset(str(tmp_path), SyntheticSpec(
        num_trainval=150, num_test=1, seed=2, min_obj=16))
    out = tmp_path / 'report.json'
    proc = subprocess.run(
        [sys.executable, osp.join(TOOLS, 'analysis_tools',
                                  'anchor_ratios.py'),
         osp.join(CONFIGS, 'synthetic', 'dssd_tiny_synthetic.py'),
         '--out', str(out), '--cfg-options',
         f'train_dataloader.dataset.data_root={tmp_path}/VOCdevkit/',
         'train_dataloader.dataset.pipeline.3.keep_ratio=True'],
        capture_output=True, text=True, timeout=300,
        env={'PYTHONPATH': ROOT, 'PATH': '/usr/bin:/bin'})
    assert proc.returncode == 0, proc.stderr[-3000:]
    import json
    rep = json.loads(out.read_text())
    expected = [math.exp(0.8 * (2 * j + 1) / 6) for j in range(3)]
    assert rep['suggested']['ratios'] == pytest.approx(expected, abs=0.08)
    assert rep['current']['ratios'] == [1.6, 2, 3]
    for key in ('current', 'suggested'):
        cov = rep[key]['coverage']
        assert cov['all']['count'] == rep['boxes'] > 300
        assert 0 < cov['all']['matched'] <= 1
    # every box gets at least its best default box
    assert rep['current']['positives']['count'] == rep['boxes']
    assert rep['current']['positives']['mean'] >= 1
    assert 'positives per box' in proc.stdout
    assert 'model = dict(bbox_head=dict(anchor_generator=dict(ratios=' in \
        proc.stdout


def test_tool_reads_coco_layouts_too(tmp_path):
    """The same boxes through the COCO layout of the synthetic set."""
    from mmengine.config import Config

    from mmdssd.datasets import (SYNTHETIC_CLASSES, SyntheticSpec,
                                 generate_synthetic_dataset)
    generate_synthetic_dataset(str(tmp_path), SyntheticSpec(
        num_trainval=12, num_test=1, seed=4))
    cfg = Config.fromfile(osp.join(CONFIGS, 'synthetic',
                                   'dssd_tiny_synthetic.py'))
    voc_cfg = cfg.copy()
    voc_cfg.train_dataloader.dataset.data_root = f'{tmp_path}/VOCdevkit/'
    pipeline = cfg.train_dataloader.dataset.pipeline
    cfg.train_dataloader.dataset = dict(
        type='CocoDataset', data_root=f'{tmp_path}/',
        ann_file='annotations/instances_trainval.json',
        data_prefix=dict(img='VOCdevkit/VOC2007/JPEGImages/'),
        metainfo=dict(classes=SYNTHETIC_CLASSES),
        filter_cfg=dict(filter_empty_gt=False), pipeline=pipeline)
    coco, _ = training_boxes(cfg)
    voc, _ = training_boxes(voc_cfg)
    # VOCDataset subtracts 1 from the 1-based VOC values: the same boxes
    assert sum(len(b) for b in coco) == sum(len(b) for b in voc) > 0
    assert torch.allclose(torch.cat(coco), torch.cat(voc), atol=1e-4)
