import pytest
import torch
import torch.nn.functional as F

from mmdssd.models.losses import map_cross_entropy


def flat_reference(score, labels):
    """MMDetection's way: flatten to (B * A, C), then cross-entropy."""
    num_imgs, channels = score.shape[0], score.shape[1] // (
        labels.shape[1] // (score.shape[2] * score.shape[3]))
    flat = score.permute(0, 2, 3, 1).reshape(-1, channels)
    return F.cross_entropy(
        flat, labels.reshape(-1), reduction='none').view(num_imgs, -1)


@pytest.mark.parametrize('num_base,classes,h,w', [(8, 21, 5, 7), (1, 3, 1, 1),
                                                  (4, 81, 3, 2)])
def test_equals_flattened_cross_entropy_and_gradient(num_base, classes, h, w):
    """Against MMDetection's flattened cross-entropy in float64: as close
    as PyTorch's own float32 cross-entropy is, with logits up to ~100."""
    g = torch.Generator().manual_seed(num_base)
    score = (torch.randn(3, num_base * classes, h, w, generator=g) *
             30).requires_grad_()
    exact = score.detach().double().requires_grad_()
    labels = torch.randint(classes, (3, h * w * num_base), generator=g)
    weight = torch.rand(3, h * w * num_base, generator=g)
    ours = map_cross_entropy(score, labels)
    ref = flat_reference(exact, labels)
    assert ours.shape == ref.shape == (3, h * w * num_base)
    # float32 rounding of the logits themselves: a couple of ulps of ~100
    ulps = 2 * torch.finfo(torch.float32).eps * float(score.abs().max())
    assert torch.allclose(ours.double(), ref, rtol=0, atol=ulps)
    grad, = torch.autograd.grad((ours * weight).sum(), score)
    grad_ref, = torch.autograd.grad((ref * weight).sum(), exact)
    assert torch.allclose(grad.double(), grad_ref, atol=1e-6)
    # and as close as float32 F.cross_entropy gets
    theirs = flat_reference(score, labels)
    grad_theirs, = torch.autograd.grad((theirs * weight).sum(), score)
    assert torch.allclose(grad, grad_theirs, atol=1e-6)


def test_gradcheck_in_double():
    g = torch.Generator().manual_seed(0)
    score = torch.randn(2, 2 * 4, 3, 2, dtype=torch.double,
                        generator=g).requires_grad_()
    labels = torch.randint(4, (2, 3 * 2 * 2), generator=g)
    assert torch.autograd.gradcheck(lambda s: map_cross_entropy(s, labels),
                                    (score, ))


def test_non_contiguous_scores():
    g = torch.Generator().manual_seed(1)
    score = torch.randn(2, 6, 4, 3, generator=g).transpose(2, 3)  # 2 x 3 cls
    labels = torch.randint(3, (2, 12 * 2), generator=g)
    assert torch.allclose(
        map_cross_entropy(score, labels), flat_reference(score, labels))


def test_mismatched_labels_are_refused():
    with pytest.raises(ValueError, match=r'labels of shape \(2, 7\)'):
        map_cross_entropy(torch.zeros(2, 6, 2, 2), torch.zeros(2, 7).long())


def test_tiles_of_rows_give_the_whole_map_result(monkeypatch):
    from mmdssd.models.losses import map_cross_entropy_loss as module
    g = torch.Generator().manual_seed(2)
    score = torch.randn(5, 3 * 4, 3, 3, generator=g).requires_grad_()
    labels = torch.randint(4, (5, 9 * 3), generator=g)
    whole = map_cross_entropy(score, labels)
    grad_whole, = torch.autograd.grad(whole.sum(), score)
    # 15 (image, base box) rows of 4 x 9 scores; tiles of 4 rows cross
    # image boundaries (3 rows per image)
    monkeypatch.setattr(module, 'TILE_NUMEL', 4 * 4 * 9)
    tiles = list(module._row_tiles(score.reshape(15, 4, 9)))
    assert [len(t[0]) for t in tiles] == [4, 4, 4, 3]
    tiled = map_cross_entropy(score, labels)
    grad_tiled, = torch.autograd.grad(tiled.sum(), score)
    assert torch.equal(whole, tiled)
    assert torch.equal(grad_whole, grad_tiled)


def test_half_precision_scores_give_a_float32_loss():
    g = torch.Generator().manual_seed(3)
    score = torch.randn(2, 2 * 5, 3, 3, generator=g).bfloat16()
    score.requires_grad_()
    labels = torch.randint(5, (2, 9 * 2), generator=g)
    loss = map_cross_entropy(score, labels)
    assert loss.dtype == torch.float32
    assert torch.allclose(loss, flat_reference(score.float(), labels))
    grad, = torch.autograd.grad(loss.sum(), score)
    assert grad.dtype == torch.bfloat16 and torch.isfinite(grad).all()
