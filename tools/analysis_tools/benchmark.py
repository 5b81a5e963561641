"""Benchmark detector configs on this machine (CPU, or CUDA if present).

    python tools/analysis_tools/benchmark.py mmdet::ssd/ssd300_coco.py \
        configs/dssd_r101_voc.py --fuse-conv-bn --out bench.json

Each config runs in its own process (so peak memory is its own) with random
weights. Prints a markdown table where every time is also a ratio to the
first config of the run, and writes the JSON.
"""
import argparse
import json
import subprocess
import sys

from mmdssd.benchmark import benchmark_config, format_table


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('configs', nargs='+')
    parser.add_argument('--device', default=None)
    parser.add_argument('--warmup', type=int, default=2)
    parser.add_argument('--repeat', type=int, default=5)
    parser.add_argument('--train-batch', type=int, default=2)
    parser.add_argument('--train-steps', type=int, default=3)
    parser.add_argument('--fuse-conv-bn', action='store_true')
    parser.add_argument('--no-flops', action='store_true')
    parser.add_argument('--out', default=None, help='JSON output file')
    parser.add_argument('--in-process', action='store_true',
                        help=argparse.SUPPRESS)
    return parser.parse_args()


def main() -> None:
    args = parse_args()
    kwargs = dict(
        device=args.device,
        warmup=args.warmup,
        repeat=args.repeat,
        train_batch=args.train_batch,
        train_steps=args.train_steps,
        fuse_conv_bn=args.fuse_conv_bn,
        flops=not args.no_flops)
    if args.in_process:
        print('RESULT ' + json.dumps(benchmark_config(args.configs[0],
                                                      **kwargs)))
        return
    results = []
    for name in args.configs:
        cmd = [
            sys.executable, __file__, name, '--in-process', '--warmup',
            str(args.warmup), '--repeat',
            str(args.repeat), '--train-batch',
            str(args.train_batch), '--train-steps',
            str(args.train_steps)
        ]
        cmd += ['--device', args.device] if args.device else []
        cmd += ['--fuse-conv-bn'] if args.fuse_conv_bn else []
        cmd += ['--no-flops'] if args.no_flops else []
        proc = subprocess.run(cmd, capture_output=True, text=True)
        lines = [
            line for line in proc.stdout.splitlines()
            if line.startswith('RESULT ')
        ]
        if proc.returncode != 0 or not lines:
            raise RuntimeError(f'benchmark of {name} failed:\n'
                               f'{proc.stderr[-3000:]}')
        results.append(json.loads(lines[-1][len('RESULT '):]))
        print(f'measured {name}', file=sys.stderr)
    print(format_table(results))
    if args.out:
        with open(args.out, 'w') as f:
            json.dump(results, f, indent=2)


if __name__ == '__main__':
    main()
