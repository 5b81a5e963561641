import math
import time
import types
import uuid

import pytest
import torch
from mmengine.config import Config
from mmengine.logging import MessageHub
from mmengine.optim import CosineAnnealingLR, LinearLR
from mmengine.runner import EpochBasedTrainLoop, IterBasedTrainLoop

from mmdssd.engine import TimeBudgetHook
from mmdssd.models.data_preprocessors import ProgressiveResize


def _runner(max_iters=1000, val_interval=1000, phases=None):
    """What the hook touches of a runner: an IterBasedTrainLoop (built
    without a dataloader), the schedulers, the hub and the model's batch
    augments."""
    loop = IterBasedTrainLoop.__new__(IterBasedTrainLoop)
    loop._max_iters = max_iters
    loop.val_interval = val_interval
    optim = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=1.0)
    warmup = LinearLR(optim, start_factor=0.1, by_epoch=False, begin=0,
                      end=60)
    cosine = CosineAnnealingLR(optim, by_epoch=False, begin=0,
                               end=max_iters, T_max=max_iters)
    augs = [ProgressiveResize(phases=phases)] if phases else None
    model = types.SimpleNamespace(
        data_preprocessor=types.SimpleNamespace(batch_augments=augs))
    hub = MessageHub.get_instance(f'test_time_budget_{uuid.uuid4()}')
    hub.update_info('max_iters', max_iters)
    # the training pipeline's Resize is the input size of the last phase
    # (not the test pipeline's)
    cfg = Config(dict(
        train_dataloader=dict(dataset=dict(pipeline=[
            dict(type='Resize', scale=(256, 256), keep_ratio=False)])),
        test_dataloader=dict(dataset=dict(pipeline=[
            dict(type='Resize', scale=(288, 288), keep_ratio=False)]))))
    return types.SimpleNamespace(
        train_loop=loop, param_schedulers=[warmup, cosine], model=model,
        message_hub=hub, max_iters=max_iters, cfg=cfg), warmup, cosine


def _measured(hook, runner, per_phase):
    """Pretend each phase was measured at ``per_phase`` s per iteration."""
    hook.before_train(runner)
    for i, sec in enumerate(per_phase):
        if sec is not None:
            hook.sums[i], hook.counts[i] = 20 * sec, 20


def test_refit_fills_the_time_left_and_moves_the_schedule():
    runner, warmup, cosine = _runner(max_iters=1000)
    # 100 s left at 0.1 s per iteration, 50 done: 1000 more
    hook = TimeBudgetHook(deadline=time.time() + 100)
    _measured(hook, runner, [0.1])
    new = hook.refit(runner, done=50)
    assert 1040 <= new <= 1050  # a little time passes in between
    assert runner.train_loop.max_iters == new
    assert runner.message_hub.get_info('max_iters') == new
    assert cosine.end == new and cosine.T_max == new
    assert warmup.end == 60  # the warm-up does not end with the run
    assert runner.message_hub.get_info('train_deadline') == hook.deadline
    assert hook.refits[-1]['max_iters'] == new


def test_refit_shrinks_a_slow_run_and_counts_validations():
    runner, _, cosine = _runner(max_iters=1000, val_interval=100)
    # 60 s left at 0.2 s per iteration and 3 s per validation: n more
    # iterations with about n / 100 validations -> ~250 more
    hook = TimeBudgetHook(deadline=time.time() + 60, val_s=3.0)
    _measured(hook, runner, [0.2])
    new = hook.refit(runner, done=100)
    left = new - 100
    assert left * 0.2 + (new // 100 - 1 + (new % 100 > 0)) * 3 <= 60
    assert 230 <= left <= 260
    assert cosine.end == new
    # a measured validation replaces the estimate
    hook.val_times.append(10.0)
    assert hook.predict_seconds(100, 400, 100, [0.2]) == pytest.approx(
        300 * 0.2 + 3 * 10.0)


def test_phases_ahead_are_scaled_and_never_entered_backwards():
    phases = ((0.5, 192), (0.75, 224))
    runner, _, _ = _runner(max_iters=1000, phases=phases)
    # relative costs 1 : 2 : 4; phase 0 measured at 0.2 s (predicted 1)
    hook = TimeBudgetHook(deadline=time.time() + 1e6,
                          phase_costs=[1.0, 2.0, 4.0])
    _measured(hook, runner, [0.2, None, None])
    assert hook.seconds_per_iter() == pytest.approx([0.2, 0.4, 0.8])
    # iteration 600 is in phase 1 (0.5 <= 600 / 1000 < 0.75): however much
    # time is left, the refit keeps it there (600 / n >= 0.5 -> n <= 1200)
    hook.counts[1], hook.sums[1] = 20, 20 * 0.4
    assert hook.refit(runner, done=600) == 1200
    # and with no time left it ends as early as phase 1 allows (n > 800)
    hook.deadline = time.time()
    assert hook.refit(runner, done=600) == 801


def test_default_phase_costs_are_the_squared_input_sides():
    runner, _, _ = _runner(phases=((0.5, 128), ))
    hook = TimeBudgetHook(deadline=time.time() + 10)
    hook.before_train(runner)
    # the last phase at the training pipeline's 256
    assert hook.phase_costs == [128 * 128, 256 * 256]
    runner, _, _ = _runner()
    hook = TimeBudgetHook(deadline=time.time() + 10)
    hook.before_train(runner)
    assert hook.phase_costs == [1.0]  # one phase: only its measure counts


def test_needs_an_iteration_loop_and_matching_costs():
    runner, _, _ = _runner(phases=((0.5, 128), ))
    with pytest.raises(ValueError, match='phase_costs has 3 entries'):
        TimeBudgetHook(deadline=0, phase_costs=[1, 2, 3]).before_train(
            runner)
    runner.train_loop = EpochBasedTrainLoop.__new__(EpochBasedTrainLoop)
    with pytest.raises(TypeError, match='IterBasedTrainLoop'):
        TimeBudgetHook(deadline=0).before_train(runner)
    with pytest.raises(ValueError, match='interval'):
        TimeBudgetHook(deadline=0, interval=0)


def test_after_train_iter_measures_steps_without_validations():
    runner, _, _ = _runner(max_iters=1000)
    hook = TimeBudgetHook(deadline=time.time() + 100, interval=10**6)
    hook.before_train(runner)
    hook.before_train_iter(runner, 0)
    for it in range(3):
        runner.iter = it
        time.sleep(0.01)
        hook.after_train_iter(runner, it)
    hook.before_val_epoch(runner)
    time.sleep(0.2)
    hook.after_val_epoch(runner)
    runner.iter = 3
    time.sleep(0.01)
    hook.after_train_iter(runner, 3)
    # iterations 1-3 counted (the first carries one-off costs), the 0.2 s
    # validation in none of them
    assert hook.counts[0] == 3
    assert hook.sums[0] < 0.15
    assert len(hook.val_times) == 1 and hook.val_times[0] >= 0.2


def test_num_vals_places_the_validations_as_the_length_moves():
    """The loop's own condition, with the length refitted every 25
    iterations and growing for 2000 of them (as on a machine faster than
    timed): exactly four validations, evenly spaced over the final
    length. An interval recomputed as ``ceil(max_iters / 4)`` fires
    again at each refit that moves its multiple past the iteration."""
    runner, _, _ = _runner(max_iters=2400, val_interval=600)
    loop = runner.train_loop
    # what IterBasedTrainLoop.__init__ sets without dynamic_intervals; the
    # loop re-reads val_interval from it every iteration
    loop.dynamic_milestones, loop.dynamic_intervals = [0], [600]
    hook = TimeBudgetHook(deadline=time.time() + 100, num_vals=4)
    hook.before_train(runner)
    done_vals = []
    loop._iter = 0
    while loop._iter < loop._max_iters:
        done = loop._iter + 1
        if done % 25 == 0 and done <= 2000:  # refit() lengthens the run
            loop._max_iters += 25
            hook.schedule_next_val(loop, done, loop._max_iters)
        loop._iter = done
        loop._decide_current_val_interval()
        if done % loop.val_interval == 0 or done == loop._max_iters:
            done_vals.append(done)
            hook.val_times.append(1.0)  # what after_val_epoch records
            hook.schedule_next_val(loop, done, loop._max_iters)
    end = loop._max_iters
    assert len(done_vals) == 4 and done_vals[-1] == end
    # evenly spaced over the length as it stood when each came due
    assert all(abs(v - (k + 1) * end / 4) < end / 4 * 0.3
               for k, v in enumerate(done_vals))
    assert hook.vals_left(end, end, loop.val_interval) == 1  # never below


def test_refit_and_validations_schedule_the_next_one():
    runner, _, _ = _runner(max_iters=1000, val_interval=250)
    loop = runner.train_loop
    loop.dynamic_milestones, loop.dynamic_intervals = [0], [250]
    loop._iter = 100
    runner.iter = 100
    # 100 s left at 0.1 s per iteration, 2 s per validation, 100 done
    hook = TimeBudgetHook(deadline=time.time() + 100, val_s=2.0, num_vals=4)
    _measured(hook, runner, [0.1])
    new = hook.refit(runner, done=100)
    # the fit counted the four validations still ahead (2 s each)
    assert 1005 <= new <= 1020
    assert loop.val_interval == loop.dynamic_intervals[0] == math.ceil(
        new / 4)
    # a validation during training moves the next one on
    runner.iter = loop._iter = math.ceil(new / 4)
    hook.before_val_epoch(runner)
    hook.after_val_epoch(runner)
    assert loop.val_interval == math.ceil(2 * new / 4)


def test_without_num_vals_the_interval_is_left_alone():
    runner, _, _ = _runner(max_iters=1000, val_interval=250)
    hook = TimeBudgetHook(deadline=time.time() + 100)
    _measured(hook, runner, [0.1])
    assert hook.refit(runner, done=100) != 1000
    assert runner.train_loop.val_interval == 250


def test_num_vals_is_checked():
    with pytest.raises(ValueError, match='num_vals must be >= 1'):
        TimeBudgetHook(deadline=0, num_vals=0)
    runner, _, _ = _runner()
    runner.train_loop.dynamic_intervals = [100, 50]
    with pytest.raises(ValueError, match='dynamic_intervals'):
        TimeBudgetHook(deadline=0, num_vals=4).before_train(runner)
