"""Train and evaluate a set of configs with the same budget and seed.

    python tools/analysis_tools/ablation.py [CONFIGS...] --epochs 12 \
        --work-dir work_dirs/ablation

Defaults to the small synthetic ablation (configs/ablation/synthetic). Each
config is trained with tools/train.py on the synthetic set, evaluated with
tools/test.py (VOC mAP + COCO AP by size) and measured (params, FLOPs,
batch-1 latency). Writes results.md, results.csv and results.png to the work
dir. A config whose result exists is skipped; one interrupted mid-training
resumes from its last checkpoint.
"""
import argparse
import csv
import glob
import json
import os
import os.path as osp
import subprocess
import sys

from mmengine.config import Config

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
TOOLS = osp.join(ROOT, 'tools')
COLUMNS = ('config', 'voc_mAP', 'coco_AP', 'AP_small', 'AP_medium',
           'AP_large', 'params_M', 'GFLOPs', 'latency_s')


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        'configs',
        nargs='*',
        default=sorted(
            glob.glob(osp.join(ROOT, 'configs', 'ablation', 'synthetic',
                               '*.py'))))
    parser.add_argument('--epochs', type=int, default=12)
    parser.add_argument('--seed', type=int, default=0)
    parser.add_argument('--data-root', default='data/synthetic')
    parser.add_argument('--num-trainval', type=int, default=None,
                        help='synthetic set size (default: its spec)')
    parser.add_argument('--num-test', type=int, default=None)
    parser.add_argument('--work-dir', default='work_dirs/ablation')
    return parser.parse_args()


def _run(cmd) -> str:
    env = dict(os.environ)
    env['PYTHONPATH'] = ROOT + os.pathsep + env.get('PYTHONPATH', '')
    proc = subprocess.run(cmd, env=env, stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT, text=True)
    if proc.returncode != 0:
        raise RuntimeError(f'failed: {" ".join(cmd)}\n{proc.stdout[-4000:]}')
    return proc.stdout


def prepare_config(path: str, args, work_dir: str) -> str:
    """The config with data, budget and seed applied, dumped to work_dir."""
    from mmdssd.datasets import point_cfg_at_synthetic
    from mmdssd.utils.cli import set_max_epochs
    cfg = Config.fromfile(path)
    point_cfg_at_synthetic(cfg, args.data_root)
    set_max_epochs(cfg, args.epochs)
    cfg.train_cfg.val_interval = args.epochs
    cfg.default_hooks.checkpoint.interval = 1  # resume granularity
    cfg.default_hooks.checkpoint.max_keep_ckpts = 1
    cfg.randomness = dict(seed=args.seed, deterministic=False)
    out = osp.join(work_dir, 'config.py')
    cfg.dump(out)
    return out


def run_one(path: str, args) -> dict:
    from mmdssd.benchmark import benchmark_config
    name = osp.splitext(osp.basename(path))[0]
    work_dir = osp.abspath(osp.join(args.work_dir, name))
    result_file = osp.join(work_dir, 'result.json')
    if osp.isfile(result_file):
        print(f'[ablation] {name}: done before, skipping')
        with open(result_file) as f:
            return json.load(f)
    os.makedirs(work_dir, exist_ok=True)
    cfg_file = prepare_config(path, args, work_dir)
    final = osp.join(work_dir, f'epoch_{args.epochs}.pth')
    if not osp.isfile(final):
        resume = osp.isfile(osp.join(work_dir, 'last_checkpoint'))
        print(f'[ablation] {name}: training'
              f'{" (resuming)" if resume else ""}')
        _run([
            sys.executable,
            osp.join(TOOLS, 'train.py'), cfg_file, '--work-dir', work_dir
        ] + (['--resume'] if resume else []))
    print(f'[ablation] {name}: evaluating')
    test_dir = osp.join(work_dir, 'test')
    _run([
        sys.executable,
        osp.join(TOOLS, 'test.py'), cfg_file, final, '--work-dir', test_dir
    ])
    runs = sorted(glob.glob(osp.join(test_dir, '*', '*.json')))
    with open(runs[-1]) as f:
        metrics = json.load(f)
    bench = benchmark_config(cfg_file, train_steps=0, repeat=5)
    result = dict(
        config=name,
        voc_mAP=metrics['pascal_voc/mAP'],
        coco_AP=metrics['coco/bbox_mAP'],
        AP_small=metrics['coco/bbox_mAP_s'],
        AP_medium=metrics['coco/bbox_mAP_m'],
        AP_large=metrics['coco/bbox_mAP_l'],
        params_M=bench['params'] / 1e6,
        GFLOPs=bench['flops'] / 1e9,
        latency_s=bench['latency']['median'])
    with open(result_file, 'w') as f:
        json.dump(result, f, indent=2)
    return result


def write_outputs(results, args) -> None:
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    out = args.work_dir
    with open(osp.join(out, 'results.csv'), 'w', newline='') as f:
        writer = csv.DictWriter(f, fieldnames=COLUMNS)
        writer.writeheader()
        writer.writerows(results)
    lines = [
        f'Budget: {args.epochs} epochs per config, seed {args.seed}, '
        'synthetic set (tools/misc/gen_synthetic_data.py defaults).', '',
        '| ' + ' | '.join(COLUMNS) + ' |', '|' + '---|' * len(COLUMNS)
    ]
    for r in results:
        cells = [r['config']] + [
            f'{r[c]:.4f}' if c.endswith(('mAP', 'AP')) or c.startswith('AP')
            else f'{r[c]:.3f}' for c in COLUMNS[1:]
        ]
        lines.append('| ' + ' | '.join(cells) + ' |')
    table = '\n'.join(lines)
    with open(osp.join(out, 'results.md'), 'w') as f:
        f.write(table + '\n')
    fig, ax = plt.subplots(figsize=(max(6, len(results) * 1.3), 4))
    names = [r['config'].replace('_synthetic', '') for r in results]
    ax.bar(names, [r['voc_mAP'] for r in results], label='VOC mAP@0.5')
    ax.bar(names, [r['coco_AP'] for r in results], width=0.4,
           label='COCO AP')
    ax.set_ylabel('test metric')
    ax.set_title(f'ablation: {args.epochs} epochs, seed {args.seed}')
    ax.legend()
    plt.setp(ax.get_xticklabels(), rotation=30, ha='right')
    fig.tight_layout()
    fig.savefig(osp.join(out, 'results.png'), dpi=100)
    plt.close(fig)
    print(table)


def main() -> None:
    args = parse_args()
    import mmdssd  # noqa: F401
    from mmdssd.datasets import SyntheticSpec, generate_synthetic_dataset
    spec = SyntheticSpec()
    if args.num_trainval:
        spec.num_trainval = args.num_trainval
    if args.num_test:
        spec.num_test = args.num_test
    generate_synthetic_dataset(args.data_root, spec)
    os.makedirs(args.work_dir, exist_ok=True)
    results = [run_one(p, args) for p in args.configs]
    write_outputs(results, args)
    print(f'[ablation] results in {osp.abspath(args.work_dir)}')


if __name__ == '__main__':
    main()
