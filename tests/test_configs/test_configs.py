"""Every config builds; the real ones give the paper's box counts."""
import glob
import os.path as osp

import pytest
import torch
from mmdet.registry import MODELS
from mmdet.structures import DetDataSample
from mmengine.config import Config
from mmengine.structures import InstanceData

from ..conftest import CONFIGS, load_cfg

ALL = sorted(
    p for p in glob.glob(osp.join(CONFIGS, '**', '*.py'), recursive=True)
    if '_base_' not in p)


def build(cfg: Config):
    cfg.model.backbone.init_cfg = None  # no download
    return MODELS.build(cfg.model)


def test_basenames_are_unique():
    names = [osp.basename(p) for p in ALL]
    assert len(names) == len(set(names))


@pytest.mark.parametrize('path', ALL, ids=lambda p: osp.relpath(p, CONFIGS))
def test_config_builds(path):
    cfg = Config.fromfile(path)
    model = build(cfg)
    # the head predicts the classes of the data the config reads
    classes = ((cfg.get('train_dataloader') or {}).get('dataset', {})
               .get('metainfo', {}).get('classes'))
    expected = len(classes) if classes else (80 if 'coco' in path else 20)
    assert model.bbox_head.num_classes == expected
    assert all(conv.out_channels == n * (expected + 1)
               for conv, n in zip(model.bbox_head.cls_convs,
                                  model.bbox_head.num_base_priors))
    # the neck's outputs are what the head reads
    assert tuple(model.neck.out_channels) == tuple(
        model.bbox_head.in_channels)
    # validation measures what the test (and the ONNX export) will see: a
    # child config that changes one pipeline changes both
    if 'val_dataloader' in cfg and 'test_dataloader' in cfg:
        assert (cfg.val_dataloader.dataset.pipeline ==
                cfg.test_dataloader.dataset.pipeline)


def num_boxes(model, size):
    model.eval()
    with torch.no_grad():
        feats = model.extract_feat(torch.rand(1, 3, *size))
    sizes = [f.shape[-2:] for f in feats]
    priors = model.bbox_head.prior_generator.grid_priors(sizes, device='cpu')
    return sum(len(p) for p in priors), [s[-1] for s in sizes]


@pytest.mark.parametrize('name, size, count, maps', [
    ('dssd_r101_voc.py', 320, 17080, [40, 20, 10, 5, 3, 1]),
    ('ssd321_r101_voc.py', 320, 17080, [40, 20, 10, 5, 3, 1]),
    ('dssd513_r101_voc.py', 512, 43688, [64, 32, 16, 8, 4, 2, 1]),
    ('ssd513_r101_voc.py', 512, 43688, [64, 32, 16, 8, 4, 2, 1]),
    ('dssd_r101_coco.py', 320, 17080, [40, 20, 10, 5, 3, 1]),
    ('dssd513_r101_coco.py', 512, 43688, [64, 32, 16, 8, 4, 2, 1]),
])
def test_paper_box_counts(name, size, count, maps):
    model = build(load_cfg(name))
    assert num_boxes(model, (size, size)) == (count, maps)


@pytest.mark.parametrize('name, count', [('ssd300_coco.py', 8732),
                                         ('ssd512_coco.py', 24564)])
def test_stock_ssd_box_counts_with_sk_generator(name, count):
    from mmdet.registry import TASK_UTILS
    cfg = Config.fromfile(
        osp.join(
            osp.dirname(__import__('mmdet').__file__), '.mim', 'configs',
            'ssd', name))
    model = build(cfg)
    _, maps = num_boxes(model, (cfg.input_size, cfg.input_size))
    ag = cfg.model.bbox_head.anchor_generator
    first = dict(ssd300_coco=(0.07, 0.15), ssd512_coco=(0.04, 0.1))
    ours = TASK_UTILS.build(
        dict(
            type='SkAnchorGenerator',
            strides=ag.strides,
            ratios=ag.ratios,
            input_size=ag.input_size,
            s_min=ag.basesize_ratio_range[0],
            s_max=ag.basesize_ratio_range[1],
            first_level=first[name[:-3]],
            integer_percent=True,
            int_sizes=True))
    total = sum(
        len(p) for p in ours.grid_priors([(m, m) for m in maps], device='cpu'))
    assert total == count


@pytest.mark.parametrize('size', [321, 513, (300, 420)])
def test_real_dssd321_runs_at_other_sizes(size):
    model = build(load_cfg('dssd_r101_voc.py')).eval()
    size = (size, size) if isinstance(size, int) else size
    with torch.no_grad():
        cls, reg = model._forward(torch.rand(1, 3, *size))
    assert len(cls) == 6
    assert all(c.shape[1] == 8 * 21 for c in cls)


def tiny_batch(num_images=2, size=256, seed=0, empty_first=True):
    """Random images at the tiny configs' input size; objects of 10 to
    220 px so that every level has matches."""
    g = torch.Generator().manual_seed(seed)
    inputs = torch.rand(num_images, 3, size, size, generator=g) * 255
    sides = torch.tensor([10., 24., 50., 100., 160., 220.])
    samples = []
    for i in range(num_images):
        s = DetDataSample(
            metainfo=dict(img_shape=(size, size), ori_shape=(size, size),
                          pad_shape=(size, size), scale_factor=(1., 1.)))
        n = 0 if (i == 0 and empty_first) else len(sides)
        xy = torch.rand(n, 2, generator=g) * (size - sides[:n, None])
        s.gt_instances = InstanceData(
            bboxes=torch.cat([xy, xy + sides[:n, None]], 1),
            labels=torch.randint(5, (n, ), generator=g))
        samples.append(s)
    return inputs, samples


@pytest.mark.parametrize('name', ['synthetic/dssd_tiny_synthetic.py',
                                  'synthetic/ssd_tiny_synthetic.py'])
def test_overfit_one_batch(name):
    torch.manual_seed(0)
    model = build(load_cfg(name))
    model.train()
    inputs, samples = tiny_batch()
    data = model.data_preprocessor(
        dict(inputs=list(inputs), data_samples=samples), True)
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    losses = []
    for _ in range(12):
        loss = sum(model.loss(data['inputs'], data['data_samples']).values())
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert all(torch.isfinite(torch.tensor(losses)))
    assert losses[-1] < 0.5 * losses[0], losses


def test_detector_loss_predict_and_gradients():
    model = build(load_cfg('synthetic/dssd_tiny_synthetic.py'))
    model.train()
    inputs, samples = tiny_batch(num_images=4, empty_first=False)
    data = model.data_preprocessor(
        dict(inputs=list(inputs), data_samples=samples), True)
    losses = model.loss(data['inputs'], data['data_samples'])
    assert set(losses) == {'loss_cls', 'loss_bbox'}
    sum(losses.values()).backward()
    missing = [
        n for n, p in model.named_parameters()
        if p.requires_grad and (p.grad is None or not p.grad.abs().sum())
    ]
    assert not missing
    model.eval()
    with torch.no_grad():
        preds = model.predict(data['inputs'], data['data_samples'])
    assert len(preds) == 4
    assert preds[0].pred_instances.bboxes.shape[-1] == 4


def _overfit_losses(name, steps=20, **neck):
    """Training losses of a freshly initialised model on one batch."""
    torch.manual_seed(0)
    cfg = load_cfg(name)
    cfg.model.neck.update(neck)
    model = build(cfg)
    model.init_weights()
    model.train()
    inputs, samples = tiny_batch(num_images=4, empty_first=False)
    data = model.data_preprocessor(
        dict(inputs=list(inputs), data_samples=samples), True)
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    losses = []
    for _ in range(steps):
        loss = sum(model.loss(data['inputs'], data['data_samples']).values())
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    return torch.tensor(losses)


def test_product_dm_learns_as_fast_as_ssd():
    """Issue 10: with the neutral start, DSSD with the paper's product
    fusion brings its loss down as fast as SSD + PM(c) does; with plain BN
    init (the first release) it does not (measured: final losses 0.46 SSD,
    0.56 product-neutral, 2.38 product-BN, 20 steps)."""
    ssd = _overfit_losses('synthetic/ssd_tiny_synthetic.py')
    prod = _overfit_losses('synthetic/dssd_tiny_synthetic.py', fusion='prod')
    plain = _overfit_losses('synthetic/dssd_tiny_synthetic.py',
                            fusion='prod', fusion_init='bn')
    for losses in (ssd, prod, plain):
        assert torch.isfinite(losses).all()
    end = dict(ssd=ssd[-3:].mean(), prod=prod[-3:].mean(),
               plain=plain[-3:].mean())
    assert end['prod'] < 1.5 * end['ssd'], end
    assert end['plain'] > 2 * end['ssd'], end  # the test can tell them apart


def test_small_stage1_starts_from_the_checkpoint_the_baseline_keeps():
    """dssd_tiny_stage1_synthetic.py loads the last checkpoint of
    ssd_tiny_synthetic.py (the only one it keeps) and trains the paper's
    product fusion with the trunk frozen."""
    ssd = load_cfg('synthetic/ssd_tiny_synthetic.py')
    stage1 = load_cfg('synthetic/dssd_tiny_stage1_synthetic.py')
    last = ssd.train_cfg.max_epochs
    assert ssd.default_hooks.checkpoint.interval == last
    assert stage1.load_from == f'work_dirs/ssd_tiny_synthetic/epoch_{last}.pth'
    assert stage1.model.neck.fusion == 'prod'
    assert stage1.model.neck.freeze_extra_layers
    assert stage1.model.backbone.frozen_stages == 4
    assert not ssd.model.neck.use_deconv


@pytest.mark.parametrize('change, message', [
    (dict(in_channels=(128, 128, 64, 128, 128, 256)),
     r'level 2: the neck gives 128 channels but '
     r'DSSDHead.in_channels\[2\] is 64'),
])
def test_neck_head_mismatch_is_one_clear_error(change, message):
    cfg = load_cfg('synthetic/dssd_tiny_synthetic.py')
    cfg.model.bbox_head.update(change)
    model = build(cfg).eval()
    with pytest.raises(ValueError, match=message):
        model._forward(torch.rand(1, 3, 256, 256))


def test_neck_levels_mismatch_is_one_clear_error():
    cfg = load_cfg('synthetic/dssd_tiny_synthetic.py')
    cfg.model.neck.extra_blocks = ((2, 2), (2, 2), (3, 1))  # 5 levels
    cfg.model.neck.deconv_kernel_strides = None
    model = build(cfg).eval()
    with pytest.raises(ValueError, match='the neck gives 5 levels but '
                       'DSSDHead.in_channels has 6'):
        model._forward(torch.rand(1, 3, 256, 256))
