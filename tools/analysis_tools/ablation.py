"""Train and evaluate a set of configs with the same budget and seeds.

    # the paper's ablation rows at small scale, one-stage from random init
    python tools/analysis_tools/ablation.py --epochs 8 --seeds 0 1
    # selected rows, on the small-object preset of the synthetic set
    python tools/analysis_tools/ablation.py CONFIGS... --spec small_objects
    # the paper's two-stage protocol: SSD + PM(c) for E epochs, then either
    # SSD for F more epochs or DSSD stage 1 (trunk frozen) for F epochs
    python tools/analysis_tools/ablation.py --two-stage E F --seeds 0 1
    # the same on your own data: the SSD + PM(c) and DSSD stage-1 configs
    # written for it by tools/misc/make_dataset_config.py, one SSD shared
    python tools/analysis_tools/ablation.py SSD_CFG DSSD_STAGE1_CFG \
        --own-data --two-stage E F --shared-first-stage --seeds 0 1 2

Defaults to the small synthetic ablation (configs/ablation/synthetic). Each
(config, seed) is trained with tools/train.py on the synthetic set,
evaluated with tools/test.py (VOC mAP + COCO AP by size) and measured
(params, FLOPs, batch-1 latency). Writes results.md, results.csv (one row
per config and seed) and results.png (mean and per-seed values) to the
work dir. A run whose result exists is skipped; one interrupted
mid-training resumes from its last checkpoint. ``--amp`` trains in bf16
where the CPU has it (``tools/train.py --amp``); testing stays fp32.
"""
import argparse
import csv
import glob
import json
import os
import os.path as osp
import statistics
import subprocess
import sys
import textwrap
import time
from typing import Dict, Iterator, List, Optional

from mmengine.config import Config

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
TOOLS = osp.join(ROOT, 'tools')
ABLATION = osp.join(ROOT, 'configs', 'ablation', 'synthetic')
SSD_PM_C = osp.join(ABLATION, 'ssd_tiny_pm_c_synthetic.py')
DSSD_STAGE1 = osp.join(ROOT, 'configs', 'synthetic',
                       'dssd_tiny_stage1_synthetic.py')
METRICS = ('voc_mAP', 'coco_AP', 'AP_small', 'AP_medium', 'AP_large')
COLUMNS = ('config', 'seed') + METRICS + ('params_M', 'GFLOPs',
                                          'latency_s')
SPECS = ('default', 'small_objects')


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        'configs',
        nargs='*',
        help='configs to compare (default: configs/ablation/synthetic/*); '
        'with --two-stage and --own-data: the SSD + PM(c) config, the '
        'DSSD stage-1 config, and any more second-stage arms (e.g. the '
        'SSD with the same parts frozen), named by their files')
    parser.add_argument('--epochs', type=int, default=12,
                        help='epochs per config (one-stage)')
    parser.add_argument(
        '--two-stage',
        nargs=2,
        type=int,
        metavar=('E', 'F'),
        help='the paper\'s two-stage protocol: SSD + PM(c) for E epochs, '
        'then SSD or DSSD stage 1 for F epochs from that checkpoint')
    parser.add_argument(
        '--shared-first-stage',
        action='store_true',
        help='with --two-stage: train the first-stage SSD once (first '
        'seed) and start every seed\'s second stage from it, as the paper '
        'started DSSD from one trained SSD')
    parser.add_argument('--seeds', type=int, nargs='+', default=[0])
    parser.add_argument('--amp', action='store_true',
                        help='train with tools/train.py --amp')
    parser.add_argument('--spec', choices=SPECS, default='default',
                        help='synthetic set: the default or the '
                        'small-objects preset (SyntheticSpec.small_objects)')
    parser.add_argument('--data-root', default=None,
                        help='default: data/synthetic[_small_objects]')
    parser.add_argument('--own-data', action='store_true',
                        help='train on the data the configs name (e.g. '
                        'written by tools/misc/make_dataset_config.py), '
                        'not on the synthetic set')
    parser.add_argument('--num-trainval', type=int, default=None,
                        help='synthetic training images (default: spec)')
    parser.add_argument('--num-test', type=int, default=None)
    parser.add_argument('--work-dir', default='work_dirs/ablation')
    parser.add_argument('--no-benchmark', action='store_true',
                        help='skip params/FLOPs/latency')
    parser.add_argument(
        '--combine',
        nargs='+',
        metavar='WORK_DIR',
        help='only draw the summaries of finished work dirs side by side '
        'into --out')
    parser.add_argument('--out', default='ablation.png',
                        help='the picture of --combine')
    args = parser.parse_args(argv)
    if args.own_data and args.two_stage and len(args.configs) < 2:
        parser.error('--own-data --two-stage: give the SSD + PM(c) config '
                     'and the DSSD stage-1 config written for the data')
    if args.two_stage and not args.own_data:
        args.configs = [SSD_PM_C, DSSD_STAGE1]
    if args.shared_first_stage and not args.two_stage:
        parser.error('--shared-first-stage: only with --two-stage')
    if not args.configs:
        args.configs = sorted(glob.glob(osp.join(ABLATION, '*.py')))
    if args.own_data:
        args.data_root = None
    elif args.data_root is None:
        args.data_root = 'data/synthetic' + (
            '' if args.spec == 'default' else '_' + args.spec)
    for path in args.configs:
        if not osp.isfile(path):
            parser.error(f'config not found: {path}')
    return args


def _run(cmd) -> str:
    env = dict(os.environ)
    env['PYTHONPATH'] = ROOT + os.pathsep + env.get('PYTHONPATH', '')
    proc = subprocess.run(cmd, env=env, stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT, text=True)
    if proc.returncode != 0:
        raise RuntimeError(f'failed: {" ".join(cmd)}\n{proc.stdout[-4000:]}')
    return proc.stdout


def prepare_config(path: str, data_root: str, epochs: int, seed: int,
                   work_dir: str, load_from: Optional[str] = None,
                   val_interval: Optional[int] = None) -> str:
    """The config with data, budget, seed (and start) applied, dumped to
    ``work_dir/config.py``; validated every ``val_interval`` epochs and
    after the last."""
    from mmdssd.datasets import point_cfg_at_synthetic
    from mmdssd.utils.schedule import set_max_epochs
    cfg = Config.fromfile(path)
    if data_root is not None:
        point_cfg_at_synthetic(cfg, data_root)
    set_max_epochs(cfg, epochs)
    cfg.train_cfg.val_interval = val_interval or epochs
    cfg.default_hooks.checkpoint.interval = 1  # resume granularity
    cfg.default_hooks.checkpoint.max_keep_ckpts = 1
    cfg.randomness = dict(seed=seed, deterministic=False)
    if load_from is not None:
        cfg.load_from = load_from
    out = osp.join(work_dir, 'config.py')
    cfg.dump(out)
    return out


def train(path: str, args, epochs: int, seed: int, work_dir: str,
          load_from: Optional[str] = None,
          val_interval: Optional[int] = None) -> str:
    """Train ``path`` for ``epochs`` into ``work_dir`` (resuming an
    interrupted run); returns the config file and final checkpoint."""
    os.makedirs(work_dir, exist_ok=True)
    cfg_file = prepare_config(path, args.data_root, epochs, seed, work_dir,
                              load_from, val_interval)
    final = osp.join(work_dir, f'epoch_{epochs}.pth')
    if not osp.isfile(final):
        resume = osp.isfile(osp.join(work_dir, 'last_checkpoint'))
        options = ((['--resume'] if resume else []) +
                   (['--amp'] if args.amp else []))
        _run([
            sys.executable,
            osp.join(TOOLS, 'train.py'), cfg_file, '--work-dir', work_dir
        ] + options)
    return cfg_file, final


def validation_records(work_dir: str) -> Iterator[Dict]:
    """The validations MMEngine logged in ``work_dir``'s runs
    (``scalars.json``), oldest run first, each run's in order."""
    for scalars in sorted(glob.glob(osp.join(work_dir, '*', 'vis_data',
                                             'scalars.json'))):
        with open(scalars) as f:
            for line in f:
                rec = json.loads(line) if line.strip() else {}
                if 'coco/bbox_mAP' in rec:
                    yield rec


def final_validation(cfg_file: str, work_dir: str,
                     epochs: int) -> Optional[Dict]:
    """The metrics of the validation after the last epoch, from the run's
    logs, when the config validates on its test split with its test
    metrics (then that validation is the test); else None."""
    cfg = Config.fromfile(cfg_file)
    if (cfg.val_dataloader != cfg.test_dataloader
            or cfg.val_evaluator != cfg.test_evaluator):
        return None
    last = None  # stays None if killed between a checkpoint and validation
    for rec in validation_records(work_dir):
        if rec.get('step') == epochs:
            last = rec
    return last


def test_metrics(cfg_file: str, checkpoint: str, work_dir: str) -> Dict:
    """tools/test.py on the test split."""
    test_dir = osp.join(work_dir, 'test')
    _run([
        sys.executable,
        osp.join(TOOLS, 'test.py'), cfg_file, checkpoint, '--work-dir',
        test_dir
    ])
    runs = sorted(glob.glob(osp.join(test_dir, '*', '*.json')))
    with open(runs[-1]) as f:
        return json.load(f)


def evaluate(name: str, seed: int, cfg_file: str, checkpoint: str,
             work_dir: str, benchmark: bool) -> Dict:
    """The test metrics (the final validation's where that is the test,
    else tools/test.py), and the model's size and speed."""
    epochs = int(osp.basename(checkpoint)[len('epoch_'):-len('.pth')])
    metrics = (final_validation(cfg_file, work_dir, epochs)
               or test_metrics(cfg_file, checkpoint, work_dir))
    result = dict(
        config=name,
        seed=seed,
        voc_mAP=metrics['pascal_voc/mAP'],
        coco_AP=metrics['coco/bbox_mAP'],
        AP_small=metrics['coco/bbox_mAP_s'],
        AP_medium=metrics['coco/bbox_mAP_m'],
        AP_large=metrics['coco/bbox_mAP_l'],
        params_M=float('nan'),
        GFLOPs=float('nan'),
        latency_s=float('nan'))
    if benchmark:
        from mmdssd.benchmark import benchmark_config
        bench = benchmark_config(cfg_file, train_steps=0, repeat=5)
        result.update(
            params_M=bench['params'] / 1e6,
            GFLOPs=bench['flops'] / 1e9,
            latency_s=bench['latency']['median'])
    with open(osp.join(work_dir, 'result.json'), 'w') as f:
        json.dump(result, f, indent=2)
    return result


def _done(work_dir: str) -> Optional[Dict]:
    result_file = osp.join(work_dir, 'result.json')
    if osp.isfile(result_file):
        with open(result_file) as f:
            return json.load(f)
    return None


def one_stage_runs(args) -> List[Dict]:
    """Each config from random init for ``--epochs``, for every seed."""
    runs = []
    for seed in args.seeds:
        for path in args.configs:
            name = osp.splitext(osp.basename(path))[0]
            work_dir = osp.abspath(
                osp.join(args.work_dir, f'seed{seed}', name))
            runs.append(dict(name=name, seed=seed, work_dir=work_dir,
                             steps=[(path, args.epochs, None)]))
    return runs


def first_stage_dir(args, seed: int) -> str:
    """Where the first-stage SSD of ``seed`` trains (the first seed's for
    every seed with ``--shared-first-stage``)."""
    if args.shared_first_stage:
        seed = args.seeds[0]
    return osp.abspath(osp.join(args.work_dir, f'seed{seed}',
                                f'ssd_pm_c_{args.two_stage[0]}e'))


def two_stage_runs(args) -> List[Dict]:
    """The paper's protocol, for every seed: SSD + PM(c) for E epochs
    (shared by every arm), then F epochs of each arm from it: SSD, DSSD
    stage 1 and any further configs. The first stage validates five times
    on the way, so that its curve shows whether it had stopped
    improving."""
    first, second = args.two_stage
    ssd, stage1, *more = args.configs
    arms = [('ssd_pm_c', ssd), ('dssd_stage1', stage1)] + [
        (osp.splitext(osp.basename(path))[0], path) for path in more]
    runs = []
    for seed in args.seeds:
        base = first_stage_dir(args, seed)
        start = osp.join(base, f'epoch_{first}.pth')
        for label, path in arms:
            name = f'{label}_{first}e+{second}e'
            work_dir = osp.abspath(
                osp.join(args.work_dir, f'seed{seed}', name))
            runs.append(dict(name=name, seed=seed, work_dir=work_dir,
                             steps=[(ssd, first, None, base,
                                     max(1, first // 5)),
                                    (path, second, start)]))
    return runs


def first_stage_curve(base: str) -> List[Dict]:
    """The first stage's validations: epoch, COCO AP, AP small, VOC mAP."""
    curve = {
        rec['step']: dict(epoch=rec['step'], coco_AP=rec['coco/bbox_mAP'],
                          AP_small=rec['coco/bbox_mAP_s'],
                          voc_mAP=rec['pascal_voc/mAP'])
        for rec in validation_records(base)
    }
    return [curve[e] for e in sorted(curve)]


def execute(run: Dict, args, index: int, total: int, started: float) -> Dict:
    """Train a run's steps (skipping finished ones), then evaluate."""
    done = _done(run['work_dir'])
    tag = f'[ablation {index}/{total}] {run["name"]} seed {run["seed"]}'
    if done is not None:
        print(f'{tag}: done before, skipping', flush=True)
        return done
    cfg_file = final = None
    for step in run['steps']:
        path, epochs, load_from = step[:3]
        work_dir = step[3] if len(step) > 3 else run['work_dir']
        val_interval = step[4] if len(step) > 4 else None
        what = (f'{osp.basename(path)} for {epochs} epochs'
                f'{" from " + osp.basename(load_from) if load_from else ""}')
        if osp.isfile(osp.join(work_dir, f'epoch_{epochs}.pth')):
            print(f'{tag}: {what}: trained before', flush=True)
        else:
            print(f'{tag}: training {what}', flush=True)
        cfg_file, final = train(path, args, epochs, run['seed'], work_dir,
                                load_from, val_interval)
    print(f'{tag}: evaluating', flush=True)
    result = evaluate(run['name'], run['seed'], cfg_file, final,
                      run['work_dir'], not args.no_benchmark)
    elapsed = time.time() - started
    run['trained'] = True
    print(f'{tag}: VOC mAP {result["voc_mAP"]:.4f}, COCO AP '
          f'{result["coco_AP"]:.4f}, AP_small {result["AP_small"]:.4f} '
          f'({elapsed / 60:.1f} min so far)', flush=True)
    return result


def overall_progress(runs: List[Dict], index: int, started: float) -> str:
    """``[####....] 3/8 runs, 12:30 elapsed, ETA 20:50``: the ETA
    extrapolates the runs trained in this session (not the skipped)."""
    from mmdssd.engine.hooks.progress_hook import format_seconds
    done = runs[:index]
    trained = sum(1 for r in done if r.get('trained'))
    elapsed = time.time() - started
    left = len(runs) - index
    eta = format_seconds(elapsed / trained * left) if trained else '?'
    bar = '#' * index + '.' * left
    return (f'[{bar}] {index}/{len(runs)} runs, '
            f'{format_seconds(elapsed)} elapsed, ETA {eta}')


def summarise(results: List[Dict]) -> List[Dict]:
    """Mean, sample standard deviation and per-seed values per config."""
    rows = []
    for name in dict.fromkeys(r['config'] for r in results):
        group = [r for r in results if r['config'] == name]
        row = dict(config=name, seeds=[r['seed'] for r in group])
        for key in METRICS:
            values = [r[key] for r in group]
            row[key] = dict(
                mean=statistics.fmean(values),
                sd=statistics.stdev(values) if len(values) > 1 else 0.0,
                values=values)
        rows.append(row)
    return rows


def describe(args) -> str:
    if args.two_stage:
        first, second = args.two_stage
        arms = ('SSD, of DSSD stage 1 or of another arm'
                if len(args.configs) > 2 else 'SSD or of DSSD stage 1')
        shared = ' (one, shared)' if args.shared_first_stage else ''
        what = (f'two-stage: SSD + PM(c) {first} epochs{shared}, then '
                f'{second} epochs of {arms}')
    else:
        what = f'one-stage: {args.epochs} epochs each from random init'
    data = ('the data the configs name' if args.own_data else
            f'synthetic set "{args.spec}" ({args.data_root})')
    return f'{what}; seeds {", ".join(map(str, args.seeds))}; {data}'


def write_outputs(results: List[Dict], args) -> str:
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    out = args.work_dir
    with open(osp.join(out, 'results.csv'), 'w', newline='') as f:
        writer = csv.DictWriter(f, fieldnames=COLUMNS)
        writer.writeheader()
        writer.writerows(results)
    rows = summarise(results)
    lines = [
        f'{describe(args)}. Mean +- sample sd over seeds (per-seed values '
        'in results.csv).', '',
        '| config | ' + ' | '.join(METRICS) + ' |',
        '|' + '---|' * (len(METRICS) + 1)
    ]
    for row in rows:
        cells = [f'{row[k]["mean"]:.3f} +- {row[k]["sd"]:.3f}'
                 for k in METRICS]
        lines.append(f'| {row["config"]} | ' + ' | '.join(cells) + ' |')
    summary = dict(protocol=describe(args), rows=rows)
    if args.two_stage:
        summary['first_stage'] = {
            seed: first_stage_curve(first_stage_dir(args, seed))
            for seed in dict.fromkeys(
                args.seeds[:1] if args.shared_first_stage else args.seeds)}
        lines += ['', 'first-stage SSD validations (epoch: COCO AP, '
                  'AP small):']
        lines += [f'- seed {seed}: ' + ', '.join(
            f'{p["epoch"]}: {p["coco_AP"]:.3f}, {p["AP_small"]:.3f}'
            for p in curve) for seed, curve in summary['first_stage'].items()]
    table = '\n'.join(lines)
    with open(osp.join(out, 'results.md'), 'w') as f:
        f.write(table + '\n')
    with open(osp.join(out, 'summary.json'), 'w') as f:
        json.dump(summary, f, indent=2)

    fig, ax = plt.subplots(figsize=(max(6, len(rows) * 1.4), 4))
    names = [r['config'].replace('_synthetic', '') for r in rows]
    xs = range(len(rows))
    for offset, key, label in ((-0.2, 'coco_AP', 'COCO AP'),
                               (0.2, 'AP_small', 'COCO AP small')):
        means = [r[key]['mean'] for r in rows]
        ax.bar([x + offset for x in xs], means, width=0.4, label=label)
        for x, r in zip(xs, rows):
            ax.plot([x + offset] * len(r[key]['values']), r[key]['values'],
                    'k.', markersize=6)
    ax.set_xticks(list(xs))
    ax.set_xticklabels(names, rotation=30, ha='right')
    ax.set_ylabel('test metric (bars: mean; dots: seeds)')
    ax.set_title(textwrap.fill(describe(args), 70), fontsize=8)
    ax.legend()
    fig.tight_layout()
    fig.savefig(osp.join(out, 'results.png'), dpi=100)
    plt.close(fig)
    print(table)
    return table


def combine(work_dirs: List[str], out: str) -> str:
    """One panel per finished ablation (its summary.json): COCO AP and
    AP small per arm, bars at the mean, dots at the seeds."""
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    summaries = []
    for work_dir in work_dirs:
        with open(osp.join(work_dir, 'summary.json')) as f:
            summaries.append(json.load(f))
    fig, axes = plt.subplots(1, len(summaries), sharey=True,
                             figsize=(3.6 * len(summaries), 4.2),
                             squeeze=False)
    for ax, summary in zip(axes[0], summaries):
        rows = summary['rows']
        xs = range(len(rows))
        for offset, key, label in ((-0.2, 'coco_AP', 'COCO AP'),
                                   (0.2, 'AP_small', 'AP small')):
            ax.bar([x + offset for x in xs],
                   [r[key]['mean'] for r in rows], width=0.4, label=label)
            for x, r in zip(xs, rows):
                ax.plot([x + offset] * len(r[key]['values']),
                        r[key]['values'], 'k.', markersize=6)
        ax.set_xticks(list(xs))
        ax.set_xticklabels([r['config'].replace('_synthetic', '').replace(
            '_tiny', '') for r in rows], rotation=25, ha='right',
                           fontsize=8)
        ax.set_title(textwrap.fill(summary['protocol'].split(';')[0] + ';' +
                                   summary['protocol'].split(';')[2], 40),
                     fontsize=8)
    axes[0][0].set_ylabel('test metric (bars: mean; dots: seeds)')
    axes[0][0].legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(out, dpi=100)
    plt.close(fig)
    return out


def make_synthetic_set(args) -> None:
    from mmdssd.datasets import SyntheticSpec, generate_synthetic_dataset
    spec = (SyntheticSpec() if args.spec == 'default' else
            SyntheticSpec.small_objects())
    if args.num_trainval:
        spec.num_trainval = args.num_trainval
    if args.num_test:
        spec.num_test = args.num_test
    generate_synthetic_dataset(args.data_root, spec)


def main() -> None:
    args = parse_args()
    if args.combine:
        print(combine(args.combine, args.out))
        return
    import mmdssd  # noqa: F401
    if not args.own_data:
        make_synthetic_set(args)
    os.makedirs(args.work_dir, exist_ok=True)
    runs = two_stage_runs(args) if args.two_stage else one_stage_runs(args)
    started = time.time()
    print(f'[ablation] {len(runs)} runs: {describe(args)}', flush=True)
    results = []
    for i, run in enumerate(runs):
        results.append(execute(run, args, i + 1, len(runs), started))
        print(f'[ablation] {overall_progress(runs, i + 1, started)}',
              flush=True)
    write_outputs(results, args)
    print(f'[ablation] results in {osp.abspath(args.work_dir)}')


if __name__ == '__main__':
    main()
