"""The main job: train the small DSSD on the embedded synthetic set.

    python tools/run_synthetic.py [--minutes 10] [--epochs N | --iters N]
        [--seed 0] [--width auto|standard|narrow]
        [--cfg-options KEY=VALUE ...]

Generates the synthetic set (seeded, seconds), fits the number of
iterations to the time budget (``--minutes``: it times a few training
iterations on this machine first, then refits the length from the step
times of the run itself, see TimeBudgetHook; ``--epochs`` or ``--iters``
fixes the length instead), trains
configs/synthetic/dssd_main_job_synthetic.py on the CPU with a progress line
(where that model fits too few iterations in the budget and its narrow
version dssd_main_job_narrow_synthetic.py fits enough more, the narrow one
instead; ``--width``),
evaluates on the test split (VOC 11-point mAP@0.5 and COCO AP with
small/medium/large), keeps the checkpoint, draws detections on a few test
images into one grid picture, plots the loss and mAP curves (against
iterations and wall time), and prints the metrics and where it all went.
"""
import argparse
import glob
import json
import logging
import math
import os.path as osp
import sys
import time
from typing import NamedTuple, Optional, Tuple

from mmengine.config import Config, DictAction

import mmdssd  # noqa: F401
from mmdssd.datasets import (SyntheticSpec, generate_synthetic_dataset,
                             point_cfg_at_synthetic)
from mmdssd.utils.allocator import keep_freed_memory
from mmdssd.utils.cli import add_main_job_args, main_job_config
from mmdssd.utils.schedule import set_max_iters
from mmdssd.utils.timing import process_start_time

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
# Training images generated for the job (the default SyntheticSpec has 240;
# the test split is the same whatever this is): a longer budget needs more
# distinct images than 240 before it overfits.
NUM_TRAINVAL = 2000
# validations per run, evenly spaced, the last one the final test: each
# costs training iterations, and four already draw the learning curve
NUM_VAL = 4
# seconds of the budget kept after training: drawing, plots, the
# process's exit, and a margin
END_RESERVE_S = 15
MAIN_CONFIG = main_job_config(ROOT)
NARROW_CONFIG = main_job_config(ROOT, narrow=True)
# where the main job's model fits fewer iterations than this in the budget,
# the narrow model's cheaper step gains more than its capacity costs; the
# line lies between the lengths where each was measured ahead
# (docs/en/results/main_job.md)
NARROW_BELOW_ITERS = 1200
# the narrow model learns less per iteration: it is trained only where it
# fits at least this many times the main job's iterations (the two were
# level where it fitted about 1.5x, behind where it fitted about 1.05x;
# docs/en/results/main_job.md)
NARROW_MIN_ITERS_RATIO = 1.5


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_main_job_args(parser, ROOT)
    parser.add_argument('--work-dir', default='work_dirs/synthetic_demo')
    parser.add_argument(
        '--minutes',
        type=float,
        default=10.0,
        help='wall-time budget of the whole job; the number of iterations '
        'is fitted to it on this machine (default: 10)')
    length = parser.add_mutually_exclusive_group()
    length.add_argument('--epochs', type=int, default=None,
                        help='train exactly this many passes over the '
                        'training images instead')
    length.add_argument('--iters', type=int, default=None,
                        help='train exactly this many iterations instead '
                        '(equal iterations whatever --num-trainval is)')
    parser.add_argument('--num-trainval', type=int, default=NUM_TRAINVAL,
                        help='synthetic training images to generate')
    parser.add_argument('--val-interval', type=int, default=None,
                        help='iterations between validations (default: '
                        f'{NUM_VAL} validations per run, evenly spaced)')
    parser.add_argument('--num-vis', type=int, default=6,
                        help='test images drawn into the grid picture')
    parser.add_argument('--score-thr', type=float, default=0.3,
                        help='score threshold of the drawn detections')
    parser.add_argument('--seed', type=int, default=0)
    parser.add_argument(
        '--precision', choices=['auto', 'fp32', 'bf16'], default='auto',
        help='training precision (default: bf16 where this CPU has native '
        'bf16 and its steps time faster, else fp32)')
    parser.add_argument(
        '--width', choices=['auto', 'standard', 'narrow'], default='auto',
        help='the model: the main job\'s, or its narrow version '
        f'({osp.relpath(NARROW_CONFIG, ROOT)}); default: the narrow one '
        f'where the main job\'s fits fewer than {NARROW_BELOW_ITERS} '
        'iterations in --minutes and the narrow one at least '
        f'{NARROW_MIN_ITERS_RATIO:g}x as many (only with the default '
        '--config; --epochs and --iters keep the main job\'s)')
    parser.add_argument(
        '--cfg-options',
        nargs='+',
        action=DictAction,
        help='override config keys, e.g. '
        'optim_wrapper.optimizer.weight_decay=0.1')
    args = parser.parse_args()
    if args.width == 'narrow' and not is_main_config(args.config):
        parser.error(f'--width narrow: the narrow model is the main job\'s '
                     f'({osp.relpath(NARROW_CONFIG, ROOT)}); --config '
                     f'{args.config} has none')
    if args.minutes <= 0:
        parser.error(f'--minutes must be positive, got {args.minutes}')
    for name in ('epochs', 'iters'):
        value = getattr(args, name)
        if value is not None and value < 1:
            parser.error(f'--{name} must be >= 1, got {value}')
    return args


def plot_curves(work_dir: str, timeline, out_file: str) -> str:
    """Training loss per iteration; test mAP per validation over wall
    time, from MMEngine's scalars and the job's timeline."""
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    runs = sorted(glob.glob(osp.join(work_dir, '*', 'vis_data',
                                     'scalars.json')))
    if not runs:
        raise FileNotFoundError(f'no scalars.json under {work_dir}')
    train = []
    with open(runs[-1]) as f:
        for line in f:
            rec = json.loads(line)
            if 'loss' in rec:
                train.append((rec['iter'], rec['loss']))
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(10, 4))
    ax1.plot(*zip(*train))
    ax1.set_xlabel('iteration')
    ax1.set_ylabel('training loss')
    ax1.set_yscale('log')
    if timeline:
        secs = [p['seconds'] for p in timeline]
        ax2.plot(secs, [p['pascal_voc/mAP'] for p in timeline], 'o-',
                 label='VOC mAP@0.5 (11-point)')
        ax2.plot(secs, [p['coco/bbox_mAP'] for p in timeline], 's-',
                 label='COCO AP@[.5:.95]')
        ax2.legend()
    ax2.set_xlabel('seconds since the job started')
    ax2.set_ylabel('test metric')
    fig.suptitle(osp.basename(work_dir))
    fig.tight_layout()
    fig.savefig(out_file, dpi=100)
    plt.close(fig)
    return out_file


def draw_detections(cfg: Config, checkpoint: str, images, out_file: str,
                    score_thr: float, columns: int = 3) -> str:
    """MMDetection's init_detector/inference_detector and
    DetLocalVisualizer (class names, scores), tiled into one picture."""
    import mmcv
    import numpy as np
    from mmdet.apis import inference_detector, init_detector
    from mmdet.registry import VISUALIZERS
    model = init_detector(cfg, checkpoint, device='cpu')
    visualizer = VISUALIZERS.build(
        dict(type='DetLocalVisualizer', name='synthetic_demo_vis'))
    visualizer.dataset_meta = model.dataset_meta
    tiles = []
    for path in images:
        visualizer.add_datasample(
            osp.basename(path),
            mmcv.imread(path, channel_order='rgb'),
            inference_detector(model, path),
            draw_gt=False,
            pred_score_thr=score_thr)
        tiles.append(visualizer.get_image())
    side = max(max(t.shape[:2]) for t in tiles)
    rows = -(-len(tiles) // columns)
    grid = np.full((rows * side, columns * side, 3), 255, np.uint8)
    for i, tile in enumerate(tiles):
        r, c = divmod(i, columns)
        grid[r * side:r * side + tile.shape[0],
             c * side:c * side + tile.shape[1]] = tile
    mmcv.imwrite(grid[..., ::-1], out_file)
    return out_file


def metrics_table(metrics: dict) -> str:
    """The final metrics as one small table."""
    rows = [('VOC mAP@0.5 (11-point)', 'pascal_voc/mAP'),
            ('COCO AP@[.5:.95]', 'coco/bbox_mAP'),
            ('COCO AP50', 'coco/bbox_mAP_50'),
            ('COCO AP75', 'coco/bbox_mAP_75'),
            ('COCO AP small', 'coco/bbox_mAP_s'),
            ('COCO AP medium', 'coco/bbox_mAP_m'),
            ('COCO AP large', 'coco/bbox_mAP_l')]
    width = max(len(r[0]) for r in rows)
    lines = [f'{"metric":<{width}}  value', f'{"-" * width}  ------']
    lines += [f'{name:<{width}}  {metrics[key]:.4f}' for name, key in rows]
    return '\n'.join(lines)


class Plan(NamedTuple):
    """What the job trains and for how long, and why."""
    cfg: Config
    config: str  # the config file it came from
    iters: int
    precision: str  # which precision, and why
    model: str  # which model, and why
    hook: Optional[object] = None  # the TimeBudgetHook of a budgeted run


class _Fit(NamedTuple):
    """One config's timing: what :func:`_time_and_fit` found."""
    cfg: Config  # with its precision
    why: str  # which precision, and why
    times: dict  # the step times
    val_s: float  # seconds of a validation
    iters: int  # the iterations that fit before the deadline


def is_main_config(path: str) -> bool:
    """Whether ``path`` is the main job's own config."""
    return osp.realpath(path) == osp.realpath(MAIN_CONFIG)


def asked_config(args: argparse.Namespace) -> str:
    """The config ``--config`` and ``--width`` ask for before any timing:
    the narrow one under ``--width narrow``."""
    return NARROW_CONFIG if args.width == 'narrow' else args.config


def load_job_config(path: str, args: argparse.Namespace) -> Config:
    """The config at ``path`` with ``--cfg-options``, reading the
    generated set under ``--data-root``, writing to ``--work-dir``."""
    cfg = Config.fromfile(path)
    if args.cfg_options is not None:
        cfg.merge_from_dict(args.cfg_options)
    point_cfg_at_synthetic(cfg, args.data_root)
    cfg.work_dir = osp.abspath(args.work_dir)
    cfg.randomness = dict(seed=args.seed)
    return cfg


def fit_to_budget(cfg: Config, args: argparse.Namespace,
                  start: float) -> Plan:
    """Time a few steps here (fp32, and bf16 where the CPU has it), pick
    the precision, the model (``--width auto``: the narrow one where the
    main job's fits too few iterations) and the number of iterations that
    fill the budget, with the hook that refits the length while
    training."""
    from mmdssd.engine import TimeBudgetHook
    deadline = start + args.minutes * 60 - END_RESERVE_S
    if deadline <= time.time():
        sys.exit(f'[main job] --minutes {args.minutes:g}: a budget of '
                 f'{args.minutes * 60:.0f} s holds no iteration: the job '
                 f'keeps {END_RESERVE_S} s after training and has spent '
                 f'{time.time() - start:.0f} s on its start and the data; '
                 f'give more minutes')
    print(f'[main job] timing a few training iterations to fit '
          f'{args.minutes:g} minutes ...', flush=True)
    config = asked_config(args)
    fit = _time_and_fit(cfg, args, deadline)
    model = choose_model(args, fit.iters)
    if model.startswith('narrow') and args.width == 'auto':
        config, fit, model = _narrow_if_it_pays(args, fit, model, deadline)
    else:
        print(f'[main job] model {model}', flush=True)
    cfg, why, times, val_s, iters = fit
    print(f'[main job] precision {why}', flush=True)
    hook = TimeBudgetHook(
        deadline, val_s=val_s, phase_costs=times['phase_train_iters'],
        num_vals=None if args.val_interval else NUM_VAL)
    print(f'[main job] {times["train_iter"]:.2f} s per iteration here '
          f'-> about {iters} iterations (refitted as it trains)', flush=True)
    return Plan(cfg, config, iters, why, model, hook)


def _narrow_if_it_pays(args: argparse.Namespace, fit: _Fit, model: str,
                       deadline: float) -> Tuple[str, _Fit, str]:
    """Time the narrow model after the main job's; the config, fit and
    model sentence of the main job's model unless the narrow one fits
    enough more iterations (:func:`narrow_pays`)."""
    print(f'[main job] model {model}; timing it ...', flush=True)
    narrow = _time_and_fit(load_job_config(NARROW_CONFIG, args), args,
                           deadline)
    ratio = narrow.times['train_iter'] / fit.times['train_iter']
    print(f"[main job] a narrow step took {ratio:.2f}x the main job's here",
          flush=True)
    pays, why = narrow_pays(narrow.iters, fit.iters)
    if pays:
        return NARROW_CONFIG, narrow, f'{model}; {why}'
    model = f"the main job's: {why}"
    print(f'[main job] model {model}', flush=True)
    return args.config, fit, model


def narrow_pays(narrow_iters: int, main_iters: int) -> Tuple[bool, str]:
    """Whether the narrow model fits at least ``NARROW_MIN_ITERS_RATIO``
    times the main job's iterations, and the clause that says so."""
    ratio = narrow_iters / max(main_iters, 1)
    pays = ratio >= NARROW_MIN_ITERS_RATIO
    return pays, (f'the narrow model fits {ratio:.2f}x its iterations here '
                  f'({narrow_iters} against {main_iters}), '
                  f'{"at least" if pays else "under"} '
                  f'{NARROW_MIN_ITERS_RATIO:g}x')


def choose_model(args: argparse.Namespace, iters: int) -> str:
    """Which model to train, and why, given the ``iters`` the one first
    timed fits (the main job's, or the narrow one under ``--width
    narrow``)."""
    narrow = osp.relpath(NARROW_CONFIG, ROOT)
    if args.width == 'narrow':
        return f'narrow ({narrow}, asked for)'
    if args.width == 'standard':
        return "the main job's (asked for)"
    if not is_main_config(args.config):
        return f'{args.config} (--width auto chooses only for the main job)'
    if iters < NARROW_BELOW_ITERS:
        return (f"narrow ({narrow}): the main job's model fits about "
                f'{iters} iterations here, fewer than {NARROW_BELOW_ITERS}')
    return (f"the main job's: it fits about {iters} iterations here, at "
            f'least {NARROW_BELOW_ITERS}')


def _time_and_fit(cfg: Config, args: argparse.Namespace,
                  deadline: float) -> _Fit:
    """Time ``cfg``'s steps in each precision, choose one, and fit the
    iterations before ``deadline``."""
    from mmengine.logging import MMLogger

    from mmdssd.engine import (choose_training_precision, fit_iterations,
                               measure_step_times_in_turns)
    logger = MMLogger.get_current_instance()
    level = logger.level
    logger.setLevel(logging.WARNING)  # init_weights is chatty

    def measure(cfgs):
        # 8 timed steps (4 were too few to be stable), at the first input
        # size only: the budget hook measures the others as it trains
        return measure_step_times_in_turns(cfgs, train_iters=8,
                                           channels_last=True,
                                           all_phases=False)

    cfg, why, times = choose_training_precision(cfg, measure, args.precision)
    logger.setLevel(level)
    # a validation costs about twice its timed batches (the metrics, and a
    # young model's many boxes)
    val_s = 2 * times['test_batch'] * times['test_batches']
    try:
        iters = fit_iterations(deadline - time.time(), times['train_iter'],
                               fixed_s=NUM_VAL * val_s)
    except ValueError as err:
        sys.exit(f'[main job] --minutes {args.minutes:g}: {err}')
    return _Fit(cfg, why, times, val_s, iters)


def fixed_length(cfg: Config, args: argparse.Namespace) -> Plan:
    """``--iters``, or the iterations of ``--epochs`` passes; the
    precision as asked (``auto`` is fp32: nothing is timed) and the model
    as asked (``auto`` is the main job's)."""
    from mmdssd.engine import with_cpu_amp
    batch = cfg.train_dataloader.batch_size
    iters = args.iters or args.epochs * max(args.num_trainval // batch, 1)
    flag = '--iters' if args.iters else '--epochs'
    config = asked_config(args)
    model = (f'{config} ({flag}: not timed)' if args.width == 'auto' else
             choose_model(args, iters))
    if args.precision == 'bf16':
        return Plan(with_cpu_amp(cfg), config, iters,
                    f'bf16 ({flag}: steps not timed)', model)
    return Plan(cfg, config, iters, f'fp32 ({flag}: steps not timed)', model)


def final_metrics(runner, cfg: Config, timeline) -> dict:
    """The test metrics: MMEngine validates after the last iteration, and
    with the same split and metrics that validation is the final test
    (``runner.test()`` would repeat it, seconds of the budget)."""
    if (cfg.val_dataloader == cfg.test_dataloader
            and cfg.val_evaluator == cfg.test_evaluator):
        final = timeline.points[-1]
        final['final'] = True
        return {k: v for k, v in final.items() if '/' in k}
    metrics = runner.test()
    timeline.after_val_epoch(runner, metrics)
    timeline.points[-1]['final'] = True
    return metrics


def test_images(voc_root: str, num: int) -> list:
    """The first ``num`` test images of the VOC layout."""
    main = osp.join(voc_root, 'VOC2007')
    with open(osp.join(main, 'ImageSets', 'Main', 'test.txt')) as f:
        names = f.read().split()[:num]
    return [osp.join(main, 'JPEGImages', n + '.jpg') for n in names]


def report(summary: dict, args, files: dict, num_test: int) -> None:
    """The metrics table and where everything went."""
    print('\n==== mmdssd synthetic main job ====')
    print(metrics_table(summary['metrics']))
    print()
    print(f'data        : {osp.abspath(args.data_root)} (VOC + COCO '
          f'layouts, {args.num_trainval} trainval / {num_test} test)')
    print(f'config      : {summary["config"]}')
    print(f'checkpoint  : {files["checkpoint"]}')
    print(f'curves      : {files["curves"]}')
    print(f'detections  : {files["detections"]} ({args.num_vis} test '
          f'images, score >= {args.score_thr})')
    print(f'summary     : {files["summary"]}')
    print(f'time        : {summary["total_seconds"]} s '
          f'({summary["iterations"]} iterations, {summary["passes"]:g} '
          'passes over the training images)')


def train(cfg: Config, args, start: float):
    """Fit the schedule, train with the job's hooks; returns the runner,
    the timeline and the plan it trained (see :class:`Plan`)."""
    from mmengine.runner import Runner

    from mmdssd.engine import (ChannelsLastHook, MetricTimelineHook,
                               ProgressHook)
    if args.epochs is None and args.iters is None:
        plan = fit_to_budget(cfg, args, start)
    else:
        plan = fixed_length(cfg, args)
    cfg = plan.cfg
    set_max_iters(
        cfg, plan.iters,
        args.val_interval or max(1, math.ceil(plan.iters / NUM_VAL)))
    cfg.default_hooks.logger.interval = 50
    runner = Runner.from_cfg(cfg)
    timeline = MetricTimelineHook(start)
    runner.register_hook(timeline)
    runner.register_hook(ProgressHook(interval=10))
    runner.register_hook(ChannelsLastHook())  # faster steps on the CPU
    if plan.hook is not None:
        runner.register_hook(plan.hook)
    runner.train()
    return runner, timeline, plan


def main() -> None:
    args = parse_args()
    # the budget holds the whole process: the imports before this line
    # take seconds, and more on a slow CPU
    start = process_start_time()
    # before the first large allocation: each step reuses the last one's
    # pages instead of faulting them in again
    if keep_freed_memory():
        print('[main job] memory: freed memory kept for the next step '
              "(glibc's malloc: no mmap, no trim)", flush=True)
    spec = SyntheticSpec(num_trainval=args.num_trainval)
    paths = generate_synthetic_dataset(args.data_root, spec)
    cfg = load_job_config(asked_config(args), args)
    runner, timeline, plan = train(cfg, args, start)
    budget_hook = plan.hook
    train_s = time.time() - start
    metrics = final_metrics(runner, runner.cfg, timeline)
    files = dict(
        checkpoint=osp.join(cfg.work_dir, f'iter_{runner.iter}.pth'),
        summary=osp.join(cfg.work_dir, 'summary.json'))
    files['curves'] = plot_curves(cfg.work_dir, timeline.points,
                                  osp.join(cfg.work_dir, 'curves.png'))
    files['detections'] = draw_detections(
        runner.cfg, files['checkpoint'],
        test_images(paths['voc_root'], args.num_vis),
        osp.join(cfg.work_dir, 'detections.jpg'), args.score_thr)
    batch = cfg.train_dataloader.batch_size
    summary = dict(
        config=plan.config,
        model=plan.model,
        iterations=runner.iter,
        num_trainval=args.num_trainval,
        passes=round(runner.iter * batch / args.num_trainval, 2),
        refits=budget_hook.refits if budget_hook else [],
        validation_seconds=([round(t, 1) for t in budget_hook.val_times]
                            if budget_hook else []),
        seed=args.seed,
        precision=plan.precision,
        train_with_val_seconds=round(train_s, 1),
        total_seconds=round(time.time() - start, 1),
        metrics={k: round(float(v), 4) for k, v in metrics.items()},
        timeline=timeline.points)
    with open(files['summary'], 'w') as f:
        json.dump(summary, f, indent=2)
    report(summary, args, files, spec.num_test)


if __name__ == '__main__':
    main()
