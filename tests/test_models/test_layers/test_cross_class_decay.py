import pytest
import torch

from mmdssd.models.layers import check_decay_cfg, cross_class_decay


def _boxes():
    """Box 0 (class 0, 0.9); box 1 over it, IoU 0.5 (class 1, 0.6); box 2
    over it, IoU 0.5, same class (0.5); box 3 apart (class 1, 0.95)."""
    bboxes = torch.tensor([[0., 0., 30., 10.], [10., 0., 40., 10.],
                           [-10., 0., 20., 10.], [100., 100., 110., 110.]])
    scores = torch.tensor([0.9, 0.6, 0.5, 0.95])
    labels = torch.tensor([0, 1, 0, 1])
    return bboxes, scores, labels


def test_only_a_better_box_of_another_class_decays():
    bboxes, scores, labels = _boxes()
    out = cross_class_decay(bboxes, scores, labels, 0.3, 0.5)
    # box 1 is covered by the better box 0 of class 0; box 2 only by its
    # own class; box 0 by a worse box; box 3 by nothing
    torch.testing.assert_close(out, torch.tensor([0.9, 0.3, 0.5, 0.95]))
    # the overlap must exceed the threshold
    assert torch.equal(cross_class_decay(bboxes, scores, labels, 0.5, 0.5),
                       scores)


def test_decays_once_against_references_and_ignores_padding():
    bboxes, scores, labels = _boxes()
    # two better boxes of other classes still decay box 2 once
    ref_boxes = torch.stack([bboxes[0], bboxes[0]])
    out = cross_class_decay(bboxes[2:3], scores[2:3], torch.tensor([2]),
                            0.3, 0.5, ref_boxes, torch.tensor([0.9, 0.8]),
                            torch.tensor([0, 1]))
    torch.testing.assert_close(out, torch.tensor([0.25]))
    # batched, a reference of score 0 (padding) decays nothing
    out = cross_class_decay(bboxes[None], scores[None], labels[None], 0.3,
                            0.5, bboxes[None], torch.zeros(1, 4),
                            labels[None])
    assert torch.equal(out, scores[None])


@pytest.mark.parametrize('bad, field', [
    (dict(iou_threshold=0.3), 'factor'),
    (dict(iou_threshold=1.0, factor=0.5), 'iou_threshold'),
    (dict(iou_threshold=0.3, factor=1.5), 'factor'),
])
def test_bad_config_names_the_field(bad, field):
    with pytest.raises(ValueError, match=f'cross_class_decay.*{field}'):
        check_decay_cfg(bad)
    check_decay_cfg(None)
    check_decay_cfg(dict(iou_threshold=0.3, factor=0.5))
