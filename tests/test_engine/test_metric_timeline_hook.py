import time
import types

from mmdssd.engine import MetricTimelineHook


def test_records_metrics_against_seconds_since_the_start():
    start = time.time() - 5
    hook = MetricTimelineHook(start)
    runner = types.SimpleNamespace(iter=40)
    hook.before_train(runner)
    hook.after_val_epoch(runner, {'pascal_voc/mAP': 0.5})
    runner.iter = 80
    hook.after_val_epoch(runner, None)
    first, second = hook.points
    assert first['iter'] == 40 and first['pascal_voc/mAP'] == 0.5
    assert 5 <= first['seconds'] < 60
    assert second['iter'] == 80 and set(second) == {'seconds', 'iter'}


def test_counts_from_the_start_of_training_by_default():
    hook = MetricTimelineHook()
    runner = types.SimpleNamespace(iter=1)
    hook.before_train(runner)
    hook.after_val_epoch(runner, {'coco/bbox_mAP': 0.25})
    assert hook.points[0]['seconds'] < 5
