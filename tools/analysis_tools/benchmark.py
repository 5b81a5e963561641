"""Benchmark detector configs on this machine (CPU, or CUDA if present).

    python tools/analysis_tools/benchmark.py mmdet::ssd/ssd300_coco.py \
        configs/dssd_r101_voc.py --fuse-conv-bn --out bench.json

Each config runs in its own process (so peak memory is its own) with random
weights. Prints a markdown table where every time is also a ratio to the
first config of the run, and writes the JSON. Each training step is
timed in turns with a batch-1 forward; the step's cost per image in
forwards is the median of those rounds' ratios. ``--profile-step`` adds,
per config, where one more training step's operator time goes: the
convolutions' forward and backward, batch norm, the rest.

    python tools/analysis_tools/benchmark.py CONFIGS... --deploy

times eager PyTorch against the exported model under ONNX Runtime and
OpenVINO in each precision this CPU runs (fp32, bf16, int8) instead (batch
1 and 8, and image file to detections; alternating calls, medians,
deployed/eager ratios; the CPU and its AMX/AVX-512/VNNI flags in the
header). ``--deploy-variants`` adds, for the first config, the other
things one could try: channels-last, BN folding, torch.compile, ONNX
Runtime optimisation levels, OpenVINO static/dynamic shapes, threads.
"""
import argparse
import json
import subprocess
import sys

from mmdssd.benchmark import (benchmark_config, benchmark_deployed,
                              benchmark_variants, format_deploy_table,
                              format_step_profiles, format_table)


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('configs', nargs='+')
    parser.add_argument('--device', default=None)
    parser.add_argument('--warmup', type=int, default=2)
    parser.add_argument('--repeat', type=int, default=5)
    parser.add_argument('--train-batch', type=int, default=2)
    parser.add_argument(
        '--train-steps', type=int, default=3,
        help='timed training steps, each in turns with a batch-1 forward '
        '(the rounds of the step-cost column; 0: no training)')
    parser.add_argument('--fuse-conv-bn', action='store_true')
    parser.add_argument('--no-flops', action='store_true')
    parser.add_argument(
        '--precision', choices=['fp32', 'bf16'], nargs='+', default=['fp32'],
        help='time each config in each precision (bf16: forward and loss '
        'under bfloat16 autocast)')
    parser.add_argument(
        '--profile-step', action='store_true',
        help='also profile one more training step: where its operator time '
        'goes (convolutions forward and backward, batch norm, the rest)')
    parser.add_argument('--deploy', action='store_true',
                        help='eager PyTorch vs ONNX Runtime and OpenVINO')
    parser.add_argument('--batch-sizes', type=int, nargs='+',
                        default=[1, 8], help='with --deploy')
    parser.add_argument('--deploy-variants', action='store_true',
                        help='with --deploy: also try the alternatives on '
                        'the first config')
    parser.add_argument('--no-compile', action='store_true',
                        help='with --deploy-variants: leave torch.compile '
                        'out (compiling takes minutes on a CPU)')
    parser.add_argument('--out', default=None, help='JSON output file')
    parser.add_argument('--in-process', nargs='?', const='config',
                        default=None, help=argparse.SUPPRESS)
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
        flops=not args.no_flops,
        precision=args.precision[0],
        profile_step=args.profile_step)
    if args.deploy and args.in_process:
        kwargs = dict(warmup=args.warmup, repeat=args.repeat)
        if args.in_process == 'variants':
            result = benchmark_variants(args.configs[0],
                                        compile_model=not args.no_compile,
                                        **kwargs)
        else:
            result = benchmark_deployed(
                args.configs[0], batch_sizes=args.batch_sizes, **kwargs)
        print('RESULT ' + json.dumps(result))
        return
    if args.in_process:
        print('RESULT ' + json.dumps(benchmark_config(args.configs[0],
                                                      **kwargs)))
        return
    if args.deploy:
        return deploy_main(args)
    results = [
        _run(_config_command(args, name, precision), name)
        for name in args.configs for precision in args.precision
    ]
    print(format_table(results))
    profiles = format_step_profiles(results)
    if profiles:
        print(profiles)
    if args.out:
        with open(args.out, 'w') as f:
            json.dump(results, f, indent=2)


def _config_command(args: argparse.Namespace, name: str,
                    precision: str) -> list:
    """This tool's command line that benchmarks one config in its own
    process."""
    cmd = [
        sys.executable, __file__, name, '--in-process', '--warmup',
        str(args.warmup), '--repeat',
        str(args.repeat), '--train-batch',
        str(args.train_batch), '--train-steps',
        str(args.train_steps), '--precision', precision
    ]
    cmd += ['--device', args.device] if args.device else []
    cmd += ['--fuse-conv-bn'] if args.fuse_conv_bn else []
    cmd += ['--no-flops'] if args.no_flops else []
    cmd += ['--profile-step'] if args.profile_step else []
    return cmd


def _run(cmd: list, name: str) -> dict:
    """Run one measurement in its own process; its RESULT line."""
    proc = subprocess.run(cmd, capture_output=True, text=True)
    lines = [
        line for line in proc.stdout.splitlines()
        if line.startswith('RESULT ')
    ]
    if proc.returncode != 0 or not lines:
        raise RuntimeError(f'benchmark of {name} failed:\n'
                           f'{proc.stderr[-3000:]}')
    print(f'measured {name}', file=sys.stderr)
    return json.loads(lines[-1][len('RESULT '):])


def deploy_main(args: argparse.Namespace) -> None:
    common = [
        '--deploy', '--warmup',
        str(args.warmup), '--repeat',
        str(args.repeat), '--batch-sizes'
    ] + [str(b) for b in args.batch_sizes]
    results = [
        _run([sys.executable, __file__, name, '--in-process'] + common, name)
        for name in args.configs
    ]
    print(format_deploy_table(results))
    out = dict(results=results)
    if args.deploy_variants:
        variants = _run([
            sys.executable, __file__, args.configs[0], '--in-process',
            'variants'
        ] + common + ['--no-compile'] * args.no_compile,
                        args.configs[0] + ' (variants)')
        base = variants['eager']
        print(f'\nbatch 1, {args.configs[0]}: what else was tried')
        print('| variant | median s | ratio to eager |\n|---|---|---|')
        for key, value in variants.items():
            if isinstance(value, float):
                print(f'| {key} | {value:.3f} | {value / base:.2f}x |')
            else:
                print(f'| {key} | failed: {value} | - |')
        out['variants'] = variants
    if args.out:
        with open(args.out, 'w') as f:
            json.dump(out, f, indent=2)


if __name__ == '__main__':
    main()
