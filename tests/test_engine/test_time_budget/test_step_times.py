"""Step times measured before training, and the schedule fitted to them."""
import os.path as osp

import pytest
from mmengine.config import Config

from mmdssd.engine.time_budget import (fit_iterations, measure_step_times,
                                      measure_step_times_in_turns)

from ...conftest import ROOT


def test_fit_iterations():
    assert fit_iterations(590, 0.5, fixed_s=90) == 1000
    assert fit_iterations(590, 0.3, fixed_s=90) == 1666  # rounded down
    with pytest.raises(ValueError, match='holds no iteration'):
        fit_iterations(60, 0.5, fixed_s=60)


def test_step_times_per_input_size_phase(synthetic_root):
    """The main job's progressive resizing is timed phase by phase, and
    the model trains at every one of its input sizes."""
    from mmdssd.datasets import point_cfg_at_synthetic
    cfg = Config.fromfile(
        osp.join(ROOT, 'configs', 'synthetic', 'dssd_main_job_synthetic.py'))
    point_cfg_at_synthetic(cfg, synthetic_root)
    times = measure_step_times(cfg, train_iters=1, warmup=0)
    phases = times['phase_train_iters']
    assert len(phases) == 3 and all(t > 0 for t in phases)
    # the mean over the run, each phase by its length (1/2, 1/4, 1/4)
    assert times['train_iter'] == pytest.approx(
        0.5 * phases[0] + 0.25 * phases[1] + 0.25 * phases[2])


def test_only_the_first_phase_timed(synthetic_root):
    """``all_phases=False``: the later input sizes are scaled from the
    first by their pixels, not timed."""
    from mmdssd.datasets import point_cfg_at_synthetic
    cfg = Config.fromfile(
        osp.join(ROOT, 'configs', 'synthetic', 'dssd_main_job_synthetic.py'))
    point_cfg_at_synthetic(cfg, synthetic_root)
    times = measure_step_times(cfg, train_iters=1, warmup=0,
                               all_phases=False)
    first, *later = times['phase_train_iters']
    assert first > 0
    assert later == pytest.approx([first * (224 / 192)**2,
                                   first * (256 / 192)**2])


def test_steps_timed_in_the_runners_environment(synthetic_root):
    """Loading is timed with the OpenCV threads the runner will train with
    (``env_cfg.mp_cfg``), and the process's own setting is put back."""
    import cv2
    from mmcv.transforms import BaseTransform

    from mmdssd.datasets import point_cfg_at_synthetic
    seen = []

    class RecordOpenCVThreads(BaseTransform):

        def transform(self, results):
            seen.append(cv2.getNumThreads())
            return results

    cfg = Config.fromfile(
        osp.join(ROOT, 'configs', 'synthetic', 'dssd_tiny_synthetic.py'))
    point_cfg_at_synthetic(cfg, synthetic_root)
    cfg.env_cfg.mp_cfg = dict(mp_start_method='fork', opencv_num_threads=1)
    cfg.train_dataloader.dataset.pipeline.insert(0, RecordOpenCVThreads())
    before = cv2.getNumThreads()
    cv2.setNumThreads(3)
    try:
        measure_step_times(cfg, train_iters=1, warmup=0)
        assert seen and set(seen) == {1}
        assert cv2.getNumThreads() == 3
    finally:
        cv2.setNumThreads(before)


def _recording_cfg(synthetic_root, seen, name):
    """The tiny synthetic config, batch 1, whose pipeline appends ``name``
    to ``seen`` for every training image it loads."""
    from mmcv.transforms import BaseTransform

    from mmdssd.datasets import point_cfg_at_synthetic

    class Record(BaseTransform):

        def transform(self, results):
            seen.append(name)
            return results

    cfg = Config.fromfile(
        osp.join(ROOT, 'configs', 'synthetic', 'dssd_tiny_synthetic.py'))
    point_cfg_at_synthetic(cfg, synthetic_root)
    cfg.train_dataloader.batch_size = 1
    cfg.train_dataloader.dataset.pipeline.insert(0, Record())
    return cfg


def test_configs_timed_in_turns(synthetic_root):
    """Each config's training steps alternate with the other's, each
    loading its own batch, and each config gets its own times."""
    seen = []
    cfgs = {name: _recording_cfg(synthetic_root, seen, name)
            for name in ('a', 'b')}
    times = measure_step_times_in_turns(cfgs, train_iters=2, warmup=1)
    assert seen == ['a', 'b'] * 3  # one warm-up round, two timed
    assert set(times) == {'a', 'b'}
    for t in times.values():
        assert t['train_iter'] > 0 and t['test_batch'] > 0
        assert t['iters_per_epoch'] == 16  # batch 1 over 16 images


def test_configs_with_different_phases_refused(synthetic_root):
    from mmdssd.datasets import point_cfg_at_synthetic
    main = Config.fromfile(
        osp.join(ROOT, 'configs', 'synthetic', 'dssd_main_job_synthetic.py'))
    point_cfg_at_synthetic(main, synthetic_root)
    tiny = _recording_cfg(synthetic_root, [], 'tiny')
    with pytest.raises(ValueError, match='different input-size phases'):
        measure_step_times_in_turns(dict(main=main, tiny=tiny),
                                    train_iters=1, warmup=0)


def test_last_phase_is_the_training_size_not_the_test_size():
    """A config may test at another size than it trains at (the main job
    tests at 288): the last phase is costed at the training pipeline's."""
    from mmdssd.engine.time_budget.step_times import (phase_input_sides,
                                                      train_input_side)
    from mmdssd.models.data_preprocessors import ProgressiveResize
    resize = ProgressiveResize(phases=((0.5, 192), ))
    pipeline = [dict(type='LoadImageFromFile'),
                dict(type='Resize', scale=(256, 240), keep_ratio=False)]
    cfg = Config(dict(
        train_dataloader=dict(dataset=dict(
            type='RepeatDataset', times=2,
            dataset=dict(type='VOCDataset', pipeline=pipeline))),
        test_dataloader=dict(dataset=dict(pipeline=[
            dict(type='Resize', scale=(288, 288), keep_ratio=False)]))))
    assert phase_input_sides(cfg, resize) == [192, 256]
    pipeline[1] = dict(type='RandomResize', scale=[(200, 200), (300, 300)])
    with pytest.raises(ValueError, match='expected one Resize'):
        train_input_side(Config(dict(train_dataloader=dict(
            dataset=dict(pipeline=pipeline)))))
