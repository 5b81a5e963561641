"""How steady the main job's precision choice is on this machine.

    python tools/analysis_tools/precision_timing.py --data-root D \
        [--repeats 8] [--steps 8] [--reference-steps 40] [--json]

Repeats the timing the main job makes before training (``--steps`` timed
steps after 2 untimed ones, at the first input size, channels-last) in
two ways, alternating which goes first: ``blocks`` times the fp32 config,
then the bf16 one (the job up to this tool's release); ``turns`` times
them in turns, a step of each at a time (``measure_step_times_in_turns``,
the job now). For each it prints the bf16/fp32 ratio of every repeat,
their mean, spread and range, and how often bf16 would be chosen; then
one long timing in turns (``--reference-steps``) as the reference.

Needs the synthetic set (``tools/run_synthetic.py`` or
``tools/misc/gen_synthetic_data.py`` writes it) and a CPU with native bf16.
Time nothing else beside it.
"""
import argparse
import json
import os.path as osp
import statistics

from mmdssd.utils.cli import add_main_job_args

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_main_job_args(parser, ROOT)
    parser.add_argument('--repeats', type=int, default=8,
                        help='timings of each method')
    parser.add_argument('--steps', type=int, default=8,
                        help='timed steps per precision (the job: 8)')
    parser.add_argument('--reference-steps', type=int, default=40,
                        help='timed steps of the long reference')
    parser.add_argument('--json', action='store_true',
                        help='print the results as one JSON line too')
    return parser.parse_args()


def ratio_by(method: str, cfgs: dict, steps: int, warmup: int = 2) -> float:
    """The bf16/fp32 ratio of ``train_iter`` as ``method`` times it."""
    from mmdssd.engine import measure_step_times, measure_step_times_in_turns
    kwargs = dict(train_iters=steps, warmup=warmup, channels_last=True,
                  all_phases=False)
    if method == 'turns':
        times = measure_step_times_in_turns(cfgs, **kwargs)
    else:
        times = {k: measure_step_times(c, **kwargs) for k, c in cfgs.items()}
    return times['bf16']['train_iter'] / times['fp32']['train_iter']


def main() -> None:
    args = parse_args()
    import logging

    from mmengine.config import Config
    from mmengine.logging import MMLogger

    import mmdssd  # noqa: F401
    from mmdssd.datasets import point_cfg_at_synthetic
    from mmdssd.engine import cpu_bf16_support, with_cpu_amp
    supported, why = cpu_bf16_support()
    if not supported:
        raise SystemExit(f'precision_timing: {why}; nothing to compare')
    MMLogger.get_instance('mmengine').setLevel(logging.WARNING)
    cfg = Config.fromfile(args.config)
    point_cfg_at_synthetic(cfg, args.data_root)
    cfgs = dict(fp32=cfg, bf16=with_cpu_amp(cfg))
    ratios = dict(blocks=[], turns=[])
    for r in range(args.repeats):
        order = ('blocks', 'turns') if r % 2 == 0 else ('turns', 'blocks')
        for method in order:
            ratios[method].append(ratio_by(method, cfgs, args.steps))
    reference = ratio_by('turns', cfgs, args.reference_steps, warmup=10)
    print(f'{why}; {args.steps} timed steps per precision, '
          f'{args.repeats} repeats each, alternating')
    print(f'{"method":<7} {"mean":>6} {"sd":>6} {"min":>6} {"max":>6} '
          f'{"bf16 chosen":>11}  ratios (bf16/fp32)')
    for method, rs in ratios.items():
        chosen = sum(r < 1 for r in rs)
        print(f'{method:<7} {statistics.mean(rs):6.3f} '
              f'{statistics.stdev(rs) if len(rs) > 1 else 0:6.3f} '
              f'{min(rs):6.3f} {max(rs):6.3f} {chosen:>6}/{len(rs):<4}  '
              + ' '.join(f'{r:.2f}' for r in rs))
    print(f'reference ({args.reference_steps} steps in turns): '
          f'{reference:.3f}')
    if args.json:
        print(json.dumps(dict(cpu=why, steps=args.steps, ratios=ratios,
                              reference=reference)))


if __name__ == '__main__':
    main()
