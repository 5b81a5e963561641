"""The export check: tied swaps pass, every real difference is caught."""
import torch
from mmengine.structures import InstanceData

from mmdssd.deployment.verify import compare_results

# two overlapping boxes of one class that NMS reduces to one, a third
# box apart, and a lower-scoring fourth the cap cuts off
BOXES = torch.tensor([[10., 10., 50., 50.], [12., 12., 52., 52.],
                      [100., 100., 140., 140.], [150., 10., 190., 50.]])


def _dets(rows, scores, labels=None):
    return InstanceData(
        bboxes=BOXES[rows].clone(),
        scores=torch.tensor(scores),
        labels=torch.tensor(labels or [0] * len(rows)))


def _pool(scores):
    return _dets([0, 1, 2, 3], scores)


def test_tied_swap_is_not_a_difference():
    """Boxes 0 and 1 tie to 1e-6, and the sides' scores differ by up to
    4e-7: the reference kept box 0, the export box 1."""
    pool = _pool([.9, .9 + 1e-6, .5, .4])
    ref = _dets([0, 2], [.9, .5])
    out = _dets([1, 2], [.9 + 1e-6, .5 + 4e-7])
    report = compare_results([out], [ref], candidates=[pool])
    assert report.equal, str(report)
    assert report.tie_swaps == 2 and report.set_mismatches == 0
    # matched to the reference alone, the swap reads as a box difference
    assert not compare_results([out], [ref]).equal


def test_tie_at_the_cap_is_not_a_difference():
    """Boxes 2 and 3 tie at the last place: either may be kept."""
    pool = _pool([.9, .3, .5, .5 - 1e-6])
    ref = _dets([0, 2], [.9, .5])
    out = _dets([0, 3], [.9 + 4e-7, .5 - 1e-6])
    report = compare_results([out], [ref], candidates=[pool])
    assert report.equal and report.tie_swaps == 2, str(report)


def test_a_tie_is_measured_not_assumed():
    """A gap of 5e-5 is within score_atol, but the two sides' scores
    differ by 1e-7 at most, so it cannot have swapped two boxes."""
    pool = _pool([.9, .9 - 5e-5, .5, .4])
    ref = _dets([0, 2], [.9, .5])
    out = _dets([1, 2], [.9 - 5e-5, .5 + 1e-7])
    report = compare_results([out], [ref], candidates=[pool])
    assert not report.equal and report.set_mismatches == 2, str(report)
    assert report.tie_atol < 5e-5


def test_untied_swap_is_a_difference():
    """Box 1 scores 0.1 under box 0, so keeping it instead is wrong (an
    NMS that broke the order, a threshold that differs)."""
    pool = _pool([.9, .8, .5, .4])
    ref, out = _dets([0, 2], [.9, .5]), _dets([1, 2], [.8, .5])
    report = compare_results([out], [ref], candidates=[pool])
    assert not report.equal and report.set_mismatches == 2, str(report)
    assert report.tie_swaps == 0


def test_box_off_its_candidate_is_a_difference():
    pool = _pool([.9, .3, .5, .4])
    ref = _dets([0, 2], [.9, .5])
    out = _dets([0, 2], [.9, .5])
    out.bboxes[1] += 2.0  # 2 px off at ~120 px: 1.7e-2 relative
    report = compare_results([out], [ref], candidates=[pool])
    assert not report.equal and report.max_box_rel_diff > 1e-2, str(report)


def test_score_label_and_count_differences():
    pool = _pool([.9, .3, .5, .4])
    ref = _dets([0, 2], [.9, .5])
    scores = compare_results([_dets([0, 2], [.9, .5 + 1e-3])], [ref],
                             candidates=[pool])
    assert not scores.equal and scores.max_score_diff > 1e-4
    labels = compare_results([_dets([0, 2], [.9, .5], [0, 1])], [ref],
                             candidates=[pool])
    assert not labels.equal and labels.label_mismatches == 1
    counts = compare_results([_dets([0], [.9])], [ref], candidates=[pool])
    assert not counts.equal and counts.count_mismatches == 1


def _nested(height, scores, rows, noise=0.0):
    """Box 0 is 100x100; box 1 sits inside it, 100 wide and ``height``
    high (IoU height / 100); boxes 2 and 3 lie apart. NMS IoU 0.45."""
    boxes = torch.tensor([[0., 0., 100., 100.], [0., 0., 100., height],
                          [200., 0., 240., 40.], [300., 0., 340., 40.]])
    dets = InstanceData(bboxes=boxes[rows] + noise,
                        scores=torch.tensor(scores)[rows],
                        labels=torch.zeros(len(rows), dtype=torch.long))
    dets.set_metainfo(dict(nms_iou=0.45))
    return dets


def test_iou_tie_with_the_nms_threshold_is_not_a_difference():
    """Box 1 overlaps box 0 by exactly the threshold: the reference
    suppressed it, the export kept it, and its extra place pushed box 2
    out at a cap of 3."""
    scores = [.9, .6, .5, .4]
    pool = _nested(45., scores, [0, 1, 2, 3])
    ref = _nested(45., scores, [0, 2, 3])
    out = _nested(45., scores, [0, 1, 2], noise=1e-4)
    report = compare_results([out], [ref], candidates=[pool])
    assert report.equal and report.tie_swaps == 2, str(report)
    # box 1 overlapping by 0.6 could not have survived: no tie
    pool, ref = _nested(60., scores, [0, 1, 2, 3]), _nested(60., scores,
                                                            [0, 2, 3])
    out = _nested(60., scores, [0, 1, 2], noise=1e-4)
    report = compare_results([out], [ref], candidates=[pool])
    assert not report.equal and report.set_mismatches == 2, str(report)
