import pytest
import torch
from mmdet.models.dense_heads import SSDHead
from mmengine.config import ConfigDict
from mmengine.structures import InstanceData

from mmdssd.models.dense_heads import DSSDHead

TRAIN_CFG = ConfigDict(
    assigner=dict(
        type='BatchMaxIoUAssigner',
        pos_iou_thr=0.5,
        neg_iou_thr=0.5,
        min_pos_iou=0.,
        ignore_iof_thr=-1,
        gt_max_assign_all=False),
    sampler=dict(type='PseudoSampler'),
    smoothl1_beta=1.,
    allowed_border=-1,
    pos_weight=-1,
    neg_pos_ratio=3,
    debug=False)
SIZE = 128
ANCHORS = dict(
    type='SkAnchorGenerator',
    input_size=SIZE,
    strides=[8, 16, 32, 64, SIZE, SIZE],
    ratios=[1.6, 2, 3],
    s_min=0.2,
    s_max=0.95,
    first_level=(0.1, 0.2))
FEATS = [16, 8, 4, 2, 1, 1]  # what the 321-style neck gives for 128


def make_head(**kwargs):
    cfg = dict(
        num_classes=4,
        in_channels=(8, 8, 8, 8, 8, 12),
        prediction_module='c',
        pm_mid_channels=4,
        pm_out_channels=16,
        anchor_generator=ANCHORS,
        train_cfg=TRAIN_CFG,
        test_cfg=ConfigDict(
            nms_pre=100,
            nms=dict(type='nms', iou_threshold=0.45),
            min_bbox_size=0,
            score_thr=0.02,
            max_per_img=20))
    cfg.update(kwargs)
    return DSSDHead(**cfg)


def feats(head, batch=2, seed=0):
    g = torch.Generator().manual_seed(seed)
    return [
        torch.rand(batch, c, s, s, generator=g)
        for c, s in zip(head.in_channels, FEATS)
    ]


def random_gts(counts, seed=0, num_classes=4):
    g = torch.Generator().manual_seed(seed)
    out = []
    for n in counts:
        xy = torch.rand(n, 2, generator=g) * SIZE * 0.7
        wh = torch.rand(n, 2, generator=g) * SIZE * 0.5 + 6
        boxes = torch.cat([xy, (xy + wh).clamp(max=SIZE)], 1)
        out.append(
            InstanceData(
                bboxes=boxes,
                labels=torch.randint(num_classes, (n, ), generator=g)))
    return out


def mmdet_loss(head, *args):
    """MMDetection's SSDHead loss as MMDetection runs it: its own
    MaxIoUAssigner and BboxOverlaps2D."""
    import copy

    from mmdet.registry import TASK_UTILS
    stock = copy.copy(head)
    stock.assigner = TASK_UTILS.build(dict(
        head.train_cfg.assigner, type='MaxIoUAssigner',
        iou_calculator=dict(type='BboxOverlaps2D')))
    return SSDHead.loss_by_feat(stock, *args)


def metas(batch, shape=(SIZE, SIZE)):
    return [dict(img_shape=shape, pad_shape=shape, scale_factor=(1., 1.))
            for _ in range(batch)]


@pytest.mark.parametrize('counts,shape', [([3, 0, 7, 1], (SIZE, SIZE)),
                                          ([1], (SIZE, SIZE)),
                                          ([12, 12], (SIZE, SIZE)),
                                          ([0, 5], (SIZE, SIZE)),
                                          ([4, 9, 2], (72, SIZE))])
def test_batched_loss_equals_mmdet(counts, shape):
    """Also with a pad shape that leaves part of the boxes invalid."""
    head = make_head(prediction_module='a')
    batch = len(counts)
    g = torch.Generator().manual_seed(len(counts))
    cls = [
        torch.randn(batch, n * 5, s, s, generator=g).requires_grad_()
        for n, s in zip(head.num_base_priors, FEATS)
    ]
    reg = [
        torch.randn(batch, n * 4, s, s, generator=g).requires_grad_()
        for n, s in zip(head.num_base_priors, FEATS)
    ]
    gts, img_metas = random_gts(counts, seed=batch), metas(batch, shape)
    if shape != (SIZE, SIZE):
        _, valid = head._anchors_and_flags([c.shape[-2:] for c in cls],
                                           img_metas, 'cpu')
        assert not valid.all()

    ours = head.loss_by_feat(cls, reg, gts, img_metas)
    theirs = mmdet_loss(head, cls, reg, gts, img_metas)
    theirs = {k: sum(v) for k, v in theirs.items()}
    for key in ('loss_cls', 'loss_bbox'):
        assert torch.allclose(ours[key], theirs[key], atol=1e-5), key
    grads_ours = torch.autograd.grad(sum(ours.values()), cls + reg)
    grads_theirs = torch.autograd.grad(sum(theirs.values()), cls + reg)
    for a, b in zip(grads_ours, grads_theirs):
        assert torch.allclose(a, b, atol=1e-6)


def test_batch_without_any_gt_is_finite():
    head = make_head()
    cls, reg = head(feats(head))
    losses = head.loss_by_feat(cls, reg, random_gts([0, 0]), metas(2))
    assert all(torch.isfinite(v) for v in losses.values())
    sum(losses.values()).backward()
    assert all(p.grad is not None for p in head.parameters())


@pytest.mark.parametrize('variant', ['a', 'b', 'c', 'd'])
def test_prediction_module_parameter_counts(variant):
    c, m, o = 8, 4, 16
    head = make_head(
        in_channels=(c, ) * 6, prediction_module=variant, pm_mid_channels=m,
        pm_out_channels=o)
    pm = head.pred_modules[0]
    bn = lambda n: 2 * n  # noqa: E731  weight + bias

    def unit(i, out, projection):
        convs = i * m + 9 * m * m + m * out + bn(m) * 2 + bn(out)
        return convs + (i * out + bn(out) if projection else 0)

    expected = dict(
        a=0,
        b=unit(c, c, False),
        c=unit(c, o, True),
        d=unit(c, o, True) + unit(o, o, True))[variant]
    assert sum(p.numel() for p in pm.parameters()) == expected
    assert head.cls_convs[0].in_channels == (c if variant in 'ab' else o)


def test_predictor_kernels_and_no_bn_in_predictors():
    head = make_head(pred_kernel_size=(5, 5, 3, 3, 3, 3))
    assert [c.kernel_size[0] for c in head.cls_convs] == [5, 5, 3, 3, 3, 3]
    assert all(isinstance(c, torch.nn.Conv2d) for c in head.reg_convs)


def test_every_parameter_gets_a_gradient():
    head = make_head(prediction_module='d')
    cls, reg = head(feats(head))
    losses = head.loss_by_feat(cls, reg, random_gts([4, 2]), metas(2))
    sum(losses.values()).backward()
    missing = [n for n, p in head.named_parameters() if p.grad is None]
    assert not missing


def test_predict_returns_boxes():
    head = make_head().eval()
    cls, reg = head(feats(head, batch=1))
    results = head.predict_by_feat(cls, reg, batch_img_metas=metas(1),
                                   rescale=False)
    assert results[0].bboxes.shape[1] == 4
    # random scores clear score_thr (0.02) everywhere: max_per_img caps
    assert len(results[0].bboxes) == 20


def test_cross_class_decay_lowers_covered_boxes_and_reranks():
    """Same weights and inputs: with the decay, each detection keeps its
    box and label, its score is halved exactly where a better detection
    of another class overlaps it by more than 0.3, and the list is best
    first again; without, it is MMDetection's post-processing."""
    from mmdet.structures.bbox import bbox_overlaps
    torch.manual_seed(0)
    head = make_head().eval()
    head.test_cfg.max_per_img = 100
    cls, reg = head(feats(head, batch=1))
    plain = head.predict_by_feat(cls, reg, batch_img_metas=metas(1))[0]
    head.test_cfg.cross_class_decay = dict(iou_threshold=0.3, factor=0.5)
    decayed = head.predict_by_feat(cls, reg, batch_img_metas=metas(1))[0]
    iou = bbox_overlaps(plain.bboxes, plain.bboxes)
    covered = ((iou > 0.3) & (plain.labels[:, None] != plain.labels) &
               (plain.scores > plain.scores[:, None])).any(1)
    assert 0 < covered.sum() < len(plain)  # the test sees both cases
    expected = torch.where(covered, plain.scores / 2, plain.scores)
    order = expected.argsort(descending=True, stable=True)
    torch.testing.assert_close(decayed.scores, expected[order])
    assert torch.equal(decayed.bboxes, plain.bboxes[order])
    assert torch.equal(decayed.labels, plain.labels[order])
    with pytest.raises(ValueError, match='cross_class_decay.factor'):
        make_head(test_cfg=dict(cross_class_decay=dict(iou_threshold=0.3,
                                                       factor=2)))


def test_bad_settings():
    with pytest.raises(ValueError, match='prediction module variant'):
        make_head(prediction_module='e')
    with pytest.raises(ValueError, match='pred_kernel_size must be odd'):
        make_head(pred_kernel_size=4)
    with pytest.raises(ValueError, match='prediction_module has 2 entries'):
        make_head(prediction_module=['a', 'c'])
    with pytest.raises(ValueError, match='use_sigmoid'):
        make_head(loss_cls=dict(type='CrossEntropyLoss', use_sigmoid=True))


def test_configured_loss_cls_is_used():
    cfg = dict(type='CrossEntropyLoss', use_sigmoid=False, loss_weight=2.0)
    one, two = make_head(), make_head(loss_cls=cfg)
    two.load_state_dict(one.state_dict())
    cls, reg = one(feats(one))
    gts, img_metas = random_gts([3, 2]), metas(2)
    l1 = one.loss_by_feat(cls, reg, gts, img_metas)['loss_cls']
    l2 = two.loss_by_feat(cls, reg, gts, img_metas)['loss_cls']
    assert torch.allclose(l2, 2 * l1)


def test_general_cls_loss_path_agrees_with_the_fast_one():
    """Class weights go through ``loss_cls`` on flattened scores; with unit
    weights that must give the fast path's loss and gradients."""
    weighted = dict(type='CrossEntropyLoss', class_weight=[1.] * 5)
    fast, general = make_head(), make_head(loss_cls=weighted)
    general.load_state_dict(fast.state_dict())
    assert fast._is_plain_softmax_ce()
    assert not general._is_plain_softmax_ce()
    gts, img_metas = random_gts([3, 0, 6]), metas(3)
    cls, reg = fast(feats(fast, batch=3))
    cls = [c.detach().requires_grad_() for c in cls]
    a = fast.loss_by_feat(cls, reg, gts, img_metas)['loss_cls']
    b = general.loss_by_feat(cls, reg, gts, img_metas)['loss_cls']
    assert torch.allclose(a, b, atol=1e-6)
    for ga, gb in zip(torch.autograd.grad(a, cls),
                      torch.autograd.grad(b, cls)):
        assert torch.allclose(ga, gb, atol=1e-7)
    heavy = make_head(loss_cls=dict(
        type='CrossEntropyLoss', class_weight=[1.] * 4 + [3.]))
    heavy.load_state_dict(fast.state_dict())
    c = heavy.loss_by_feat(cls, reg, gts, img_metas)['loss_cls']
    assert c > a * 1.5  # background (last class) weighted 3x


def test_loss_under_autocast_matches_float32():
    """AMP path (CPU autocast with bfloat16 here; float16 on GPUs): the
    loss is computed in float32 and stays close to the float32 loss."""
    head = make_head()
    x = feats(head, batch=2)
    gts, img_metas = random_gts([3, 2]), metas(2)
    full = head.loss_by_feat(*head(x), gts, img_metas)
    with torch.autocast('cpu', dtype=torch.bfloat16):
        cls, reg = head(x)
        assert cls[0].dtype == torch.bfloat16
        half = head.loss_by_feat(cls, reg, gts, img_metas)
    for key in ('loss_cls', 'loss_bbox'):
        assert half[key].dtype == torch.float32
        assert torch.allclose(half[key], full[key], rtol=0.05), key
    sum(half.values()).backward()
    assert all(p.grad is not None and torch.isfinite(p.grad).all()
               for p in head.parameters())


def test_batched_loss_on_channels_last_maps():
    """A channels-last model gives non-contiguous (B, C, H, W) maps."""
    head = make_head(prediction_module='a')
    cls, reg = head(feats(head, batch=3))
    gts, img_metas = random_gts([2, 0, 4]), metas(3)
    dense = head.loss_by_feat(cls, reg, gts, img_metas)
    strided = head.loss_by_feat(
        [c.contiguous(memory_format=torch.channels_last) for c in cls],
        [r.contiguous(memory_format=torch.channels_last) for r in reg], gts,
        img_metas)
    assert not reg[0].contiguous(
        memory_format=torch.channels_last).is_contiguous()
    for key in ('loss_cls', 'loss_bbox'):
        assert torch.allclose(dense[key], strided[key], atol=1e-6), key


def _fail_if_called(*args, **kwargs):
    raise AssertionError("MMDetection's SSDHead loss was called")


def test_default_batch_takes_the_batched_path(monkeypatch):
    """The equality tests above would pass trivially if the head silently
    fell back to MMDetection's loss: make that fallback fail loudly."""
    head = make_head()
    cls, reg = head(feats(head))
    gts, img_metas = random_gts([3, 2]), metas(2)
    assert head.fallback_reason() == ''
    monkeypatch.setattr(SSDHead, 'loss_by_feat', _fail_if_called)
    losses = head.loss_by_feat(cls, reg, gts, img_metas)
    assert all(torch.isfinite(v) for v in losses.values())


@pytest.mark.parametrize('setting, reason', [
    (dict(batched_loss=False), 'batched_loss=False'),
    (dict(reg_decoded_bbox=True), 'reg_decoded_bbox=True'),
    ('ignore', 'assigner MaxIoUAssigner (BatchMaxIoUAssigner assigns the '
     'batch at once)'),
])
def test_fallback_is_mmdetections_loss(setting, reason):
    """Where the batched loss would differ (here: MMDetection's own
    assigner with ignored boxes), MMDetection's loss is used, and the head
    says why."""
    ignore = None
    if setting == 'ignore':
        train_cfg = ConfigDict(TRAIN_CFG.to_dict())
        train_cfg.assigner.type = 'MaxIoUAssigner'
        train_cfg.assigner.ignore_iof_thr = 0.5
        head = make_head(train_cfg=train_cfg)
        ignore = random_gts([1, 1], seed=3)
    else:
        head = make_head(**setting)
    assert head.fallback_reason() == reason
    cls, reg = head(feats(head))
    gts, img_metas = random_gts([3, 2]), metas(2)
    ours = head.loss_by_feat(cls, reg, gts, img_metas, ignore)
    theirs = SSDHead.loss_by_feat(head, cls, reg, gts, img_metas, ignore)
    for key in ('loss_cls', 'loss_bbox'):
        assert torch.equal(sum(ours[key]), sum(theirs[key])), key


def test_anchor_generator_is_required():
    with pytest.raises(ValueError, match='DSSDHead needs anchor_generator'):
        make_head(anchor_generator=None)


@pytest.mark.parametrize('loss_cls', [
    dict(type='CrossEntropyLoss', loss_weight=2.0),
    dict(type='CrossEntropyLoss', class_weight=[1., 2., 1., 1., 1.]),
])
def test_fallback_refuses_a_loss_cls_it_would_ignore(loss_cls):
    head = make_head(batched_loss=False, loss_cls=loss_cls)
    cls, reg = head(feats(head))
    with pytest.raises(ValueError, match='needs the batched loss.*'
                       'batched_loss=False.*ignores loss_cls'):
        head.loss_by_feat(cls, reg, random_gts([3, 2]), metas(2))
    # the batched loss applies it
    head.batched_loss = True
    losses = head.loss_by_feat(cls, reg, random_gts([3, 2]), metas(2))
    assert torch.isfinite(losses['loss_cls'])


def test_bg_prior_prob_sets_every_box_background_probability():
    head = make_head(bg_prior_prob=0.99)
    head.init_weights()
    # on zero features a box's scores are the predictor's biases alone
    probs = torch.cat([
        conv(torch.zeros(1, conv.in_channels, 2, 2)).permute(
            0, 2, 3, 1).reshape(-1, head.cls_out_channels)
        for conv in head.cls_convs
    ]).softmax(-1)
    assert torch.allclose(probs[:, -1], torch.full_like(probs[:, -1], 0.99))
    # the object classes share the rest equally
    assert torch.allclose(probs[:, :-1], torch.full_like(probs[:, :-1],
                                                         0.01 / 4))
    plain = make_head()
    plain.init_weights()
    assert all((c.bias == 0).all() for c in plain.cls_convs)
    with pytest.raises(ValueError, match='bg_prior_prob must be in'):
        make_head(bg_prior_prob=1.0)
