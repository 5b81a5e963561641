"""Record the validation metrics against wall time."""
import time
from typing import Dict, List, Optional

from mmdet.registry import HOOKS
from mmengine.hooks import Hook


@HOOKS.register_module()
class MetricTimelineHook(Hook):
    """After every validation, record the seconds since ``start``, the
    iteration and the metrics: the record behind a metric-vs-wall-time
    curve, which MMEngine's scalars (by iteration) cannot give.

    Args:
        start (float, optional): ``time.time()`` the seconds count from
            (e.g. when a job started, before its data was made). Defaults
            to when training starts.
    """

    priority = 'LOW'

    def __init__(self, start: Optional[float] = None) -> None:
        self.start = start
        self.points: List[Dict] = []

    def before_train(self, runner) -> None:
        if self.start is None:
            self.start = time.time()

    def after_val_epoch(self, runner, metrics=None) -> None:
        start = time.time() if self.start is None else self.start
        self.points.append(
            dict(seconds=round(time.time() - start, 1),
                 iter=runner.iter,
                 **{k: float(v) for k, v in (metrics or {}).items()}))
