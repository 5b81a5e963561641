import pytest
import torch
from mmdet.models.task_modules.prior_generators import SSDAnchorGenerator
from mmdet.registry import TASK_UTILS

import mmdssd  # noqa: F401
from mmdssd.models.task_modules.prior_generators import (SkAnchorGenerator,
                                                         ssd_scale_rule)

# (MMDetection's SSDAnchorGenerator settings, the same boxes by the s_k rule)
MMDET_SETTINGS = {
    'ssd300_voc': (dict(input_size=300, basesize_ratio_range=(0.2, 0.9),
                        strides=[8, 16, 32, 64, 100, 300],
                        ratios=[[2], [2, 3], [2, 3], [2, 3], [2], [2]]),
                   dict(s_min=0.2, s_max=0.9, first_level=(0.1, 0.2))),
    'ssd300_coco': (dict(input_size=300, basesize_ratio_range=(0.15, 0.9),
                         strides=[8, 16, 32, 64, 100, 300],
                         ratios=[[2], [2, 3], [2, 3], [2, 3], [2], [2]]),
                    dict(s_min=0.15, s_max=0.9, first_level=(0.07, 0.15))),
    'ssd512_voc': (dict(input_size=512, basesize_ratio_range=(0.15, 0.9),
                        strides=[8, 16, 32, 64, 128, 256, 512],
                        ratios=[[2], [2, 3], [2, 3], [2, 3], [2, 3], [2],
                                [2]]),
                   dict(s_min=0.15, s_max=0.9, first_level=(0.07, 0.15))),
    'ssd512_coco': (dict(input_size=512, basesize_ratio_range=(0.1, 0.9),
                         strides=[8, 16, 32, 64, 128, 256, 512],
                         ratios=[[2], [2, 3], [2, 3], [2, 3], [2, 3], [2],
                                 [2]]),
                    dict(s_min=0.1, s_max=0.9, first_level=(0.04, 0.1))),
}


@pytest.mark.parametrize('name', sorted(MMDET_SETTINGS))
def test_reproduces_mmdet_ssd_anchors(name):
    theirs_cfg, rule = MMDET_SETTINGS[name]
    theirs = SSDAnchorGenerator(scale_major=False, **theirs_cfg)
    ours = SkAnchorGenerator(
        strides=theirs_cfg['strides'],
        ratios=theirs_cfg['ratios'],
        input_size=theirs_cfg['input_size'],
        integer_percent=True,
        int_sizes=True,
        **rule)
    assert len(ours.base_anchors) == len(theirs.base_anchors)
    for a, b in zip(ours.base_anchors, theirs.base_anchors):
        assert torch.equal(a, b)
    sizes = [(38, 38), (19, 19), (10, 10), (5, 5), (3, 3), (1, 1)]
    if theirs_cfg['input_size'] == 512:
        sizes = [(64, 64), (32, 32), (16, 16), (8, 8), (4, 4), (2, 2), (1, 1)]
    total = sum(len(a) for a in ours.grid_priors(sizes, device='cpu'))
    assert total == {300: 8732, 512: 24564}[theirs_cfg['input_size']]


def test_dssd321_voc_sizes_match_authors():
    gen = SkAnchorGenerator(
        strides=[8, 16, 32, 64, 107, 321],
        ratios=[1.6, 2, 3],
        input_size=321,
        s_min=0.2,
        s_max=0.95,
        first_level=(0.1, 0.2),
        integer_percent=True)
    assert gen.min_sizes == [32.1, 64.2, 121.98, 179.76, 237.54, 295.32]
    assert gen.max_sizes == [64.2, 121.98, 179.76, 237.54, 295.32, 353.1]
    assert gen.num_base_priors == [8] * 6


def test_dssd513_coco_sizes_match_authors():
    gen = SkAnchorGenerator(
        strides=[8, 16, 32, 64, 128, 256, 512],
        ratios=[1.6, 2, 3],
        input_size=513,
        s_min=0.1,
        s_max=0.95,
        first_level=(0.04, 0.1),
        integer_percent=True)
    # min_ratio 10, max_ratio 95, step floor(85 / 5) = 17
    assert gen.min_sizes == [20.52, 51.3, 138.51, 225.72, 312.93, 400.14,
                             487.35]
    assert gen.max_sizes == [51.3, 138.51, 225.72, 312.93, 400.14, 487.35,
                             574.56]
    assert gen.num_base_priors == [8] * 7


def test_exact_rule_without_caffe_rounding():
    mins, maxs = ssd_scale_rule(6, 0.2, 0.9)
    expected = [0.2 + 0.7 / 5 * k for k in range(7)]
    assert mins == pytest.approx(expected[:-1])
    assert maxs == pytest.approx(expected[1:])


def test_box_shapes_and_centres():
    gen = SkAnchorGenerator(
        strides=[8, 16], ratios=[[2], [2, 3]], input_size=32, s_min=0.25,
        s_max=0.5)
    base = gen.base_anchors[0]  # 1 + 1 + 2 boxes
    wh = base[:, 2:] - base[:, :2]
    s1, s2 = 0.25 * 32, 0.5 * 32
    assert torch.allclose(wh[0], torch.tensor([s1, s1]))
    side = (s1 * s2) ** 0.5
    assert torch.allclose(wh[1], torch.tensor([side, side]))
    r = 2 ** 0.5
    # width s_k * sqrt(a), height s_k / sqrt(a), then the transpose
    assert torch.allclose(wh[2], torch.tensor([s1 * r, s1 / r]))
    assert torch.allclose(wh[3], torch.tensor([s1 / r, s1 * r]))
    # centres half a stride in: (i + 0.5) / |f_k| of the input
    priors = gen.grid_priors([(4, 4), (2, 2)], device='cpu')
    centres = (priors[1][:, :2] + priors[1][:, 2:]) / 2
    xs = sorted(set(round(x, 3) for x in centres[:, 0].tolist()))
    assert xs == [8.0, 24.0]


def test_non_square_input_and_registry():
    gen = TASK_UTILS.build(
        dict(
            type='SkAnchorGenerator',
            strides=[(8, 16), (16, 32)],
            ratios=[2],
            input_size=(128, 256)))
    assert gen.min_sizes[0] == pytest.approx(0.2 * 128)
    priors = gen.grid_priors([(8, 16), (4, 8)], device='cpu')
    assert priors[0].shape == (8 * 16 * 4, 4)


@pytest.mark.parametrize('kwargs, message', [
    (dict(s_min=0.9, s_max=0.2), 's_min=0.9'),
    (dict(s_min=0.5, s_max=0.5), 's_min=0.5'),
    (dict(ratios=[]), 'ratios must not be empty'),
    (dict(ratios=[[2], []]), r'ratios\[1\] is empty'),
    (dict(ratios=[[2], [2], [3]]), 'ratios has 3 levels but strides has 2'),
    (dict(ratios=[-1]), 'ratios must be > 0'),
    (dict(first_level=(0.3, 0.1)), 'first_level'),
    (dict(input_size=0), 'input_size'),
])
def test_bad_settings_name_the_value(kwargs, message):
    cfg = dict(strides=[8, 16], ratios=[2], input_size=64)
    cfg.update(kwargs)
    with pytest.raises(ValueError, match=message):
        SkAnchorGenerator(**cfg)
