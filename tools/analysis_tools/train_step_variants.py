"""Time the main job's training step against variants, side by side.

    python tools/analysis_tools/train_step_variants.py [--rounds 6] \
        [--steps 10] [--variants NAME ...] [--keep-freed-memory]
    python tools/analysis_tools/train_step_variants.py --allocator-turns 3 \
        [--variants NAME ...]

Builds the main job's model (configs/synthetic/dssd_main_job_synthetic.py,
channels-last as the job runs it) once per variant, then runs the variants'
training steps in turns (round-robin, ``--steps`` a turn after 2 untimed
ones), so that every variant sees the same machine state; prints the median
seconds per step and per image and the ratio to the job's own setting:

- ``job``: fused AdamW, loading in the main process, float32, batch 8;
- ``adamw-unfused``: AdamW's default (per-parameter) implementation;
- ``bf16-autocast``: forward and loss under CPU bfloat16 autocast;
- ``1-worker``: loading in one worker process (``num_workers=1``);
- ``bf16-1-worker``: both (the job's bf16 step, loading overlapped);
- ``batch-4``, ``batch-16``, ``bf16-batch-16``: batch 4 / 16, the last
  under bf16 autocast (compare per image);
- ``input-224``, ``input-192``: the training images resized to 224 / 192
  instead of 256 (the sizes of the job's progressive-resizing phases; the
  job itself is timed at 256, its last phase);
- ``resize-first``, ``bf16-resize-first``: the images resized before
  ``PhotoMetricDistortion`` instead of after it (the distortion then works
  on fewer pixels), in float32 and under bf16 autocast;
- ``no-photometric``: without ``PhotoMetricDistortion`` (what it costs);
- ``narrow``, ``bf16-narrow``: the main job's narrow model
  (configs/synthetic/dssd_main_job_narrow_synthetic.py, which the job
  trains where its own fits few iterations), in float32 and under bf16
  autocast;
- ``bf16-compile``: ``bf16-autocast`` with the backbone, neck and head
  compiled by ``torch.compile`` (inductor); timed only when asked for by
  name, since compiling takes a minute or more (printed as ``compile_s``).

It also prints the minor page faults per step (fresh memory the kernel
mapped in). ``--keep-freed-memory`` runs every variant with glibc's
``malloc`` keeping freed memory (``mmdssd.utils.keep_freed_memory``, as the
main job does); that is process-wide, so ``--allocator-turns N`` compares
it with glibc's defaults by running this tool 2N times, alternating the two
in fresh processes, and prints the medians over the runs and their ratio.

Needs the synthetic set (``tools/run_synthetic.py`` or
``tools/misc/gen_synthetic_data.py`` writes it). Time nothing else beside it.
"""
import argparse
import copy
import json
import os.path as osp
import statistics
import subprocess
import sys

from mmdssd.utils.cli import add_main_job_args, main_job_config

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
DEFAULT_VARIANTS = ('job', 'adamw-unfused', 'bf16-autocast', '1-worker',
                    'bf16-1-worker', 'batch-4', 'batch-16', 'bf16-batch-16',
                    'input-224', 'input-192', 'resize-first',
                    'bf16-resize-first', 'no-photometric', 'narrow',
                    'bf16-narrow')
VARIANTS = DEFAULT_VARIANTS + ('bf16-compile', )


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_main_job_args(parser, ROOT)
    parser.add_argument('--rounds', type=int, default=6,
                        help='turns per variant')
    parser.add_argument('--steps', type=int, default=10,
                        help='timed steps per turn')
    parser.add_argument('--warmup', type=int, default=2,
                        help='untimed steps of a variant before each of its '
                        'turns, which re-warm its caches (default: 2)')
    parser.add_argument('--variants', nargs='+', choices=VARIANTS,
                        default=list(DEFAULT_VARIANTS),
                        help='variants to time (default: all but '
                        'bf16-compile; the job is always timed, as the '
                        'reference)')
    parser.add_argument('--keep-freed-memory', action='store_true',
                        help="glibc's malloc keeps freed memory (as the "
                        'main job)')
    parser.add_argument('--allocator-turns', type=int, default=0,
                        help="compare glibc's default malloc with kept "
                        'freed memory: this many runs of each, alternating')
    parser.add_argument('--json', action='store_true',
                        help='print the medians as one JSON line')
    args = parser.parse_args()
    args.variants = ['job'] + [v for v in args.variants if v != 'job']
    return args


def variant_config(base, name: str):
    """The job's config changed as variant ``name`` says."""
    cfg = copy.deepcopy(base)
    loader_cfg = cfg.train_dataloader
    if name == 'adamw-unfused':
        cfg.optim_wrapper.optimizer.pop('fused', None)
    if name.endswith('1-worker'):
        loader_cfg.num_workers = 1
        loader_cfg.persistent_workers = True
    if 'batch-' in name:
        loader_cfg.batch_size = int(name.rsplit('-', 1)[1])
    if name.startswith('input-'):
        side = int(name.split('-')[1])
        for t in loader_cfg.dataset.pipeline:
            if t['type'] == 'Resize':
                t['scale'] = (side, side)
    pipeline = loader_cfg.dataset.pipeline
    types = [t['type'] for t in pipeline]
    if name.endswith('resize-first'):
        i, j = types.index('PhotoMetricDistortion'), types.index('Resize')
        pipeline[i], pipeline[j] = pipeline[j], pipeline[i]
    if name == 'no-photometric':
        del pipeline[types.index('PhotoMetricDistortion')]
    if name.endswith('narrow'):
        from mmengine.config import Config
        cfg.model = Config.fromfile(main_job_config(ROOT, narrow=True)).model
    return cfg


class Arm:
    """One variant's model, optimiser and endless batches; ``compiled``
    hands the backbone, neck and head to ``torch.compile`` and times the
    first step, which compiles them (``compile_s``)."""

    def __init__(self, cfg, bf16: bool, compiled: bool = False) -> None:
        import time

        import torch
        from mmdet.registry import MODELS
        from mmengine.optim import build_optim_wrapper
        from mmengine.runner import Runner

        from mmdssd.utils.timing import endless
        torch.manual_seed(0)
        self.model = MODELS.build(cfg.model)
        self.model.init_weights()
        self.model.to(memory_format=torch.channels_last)
        self.model.train()
        self.optim = build_optim_wrapper(self.model, cfg.optim_wrapper)
        self.loader = Runner.build_dataloader(cfg.train_dataloader, seed=0)
        self.batch_size = cfg.train_dataloader.batch_size
        self.bf16 = bf16
        self.batches = endless(self.loader)
        self.compile_s = None
        if compiled:
            for name in ('backbone', 'neck', 'bbox_head'):
                setattr(self.model, name,
                        torch.compile(getattr(self.model, name)))
            start = time.perf_counter()
            self.step()
            self.compile_s = time.perf_counter() - start

    def step(self) -> None:
        import torch
        batch = next(self.batches)
        if not self.bf16:
            self.model.train_step(batch, self.optim)
            return
        with torch.autocast('cpu', dtype=torch.bfloat16):
            data = self.model.data_preprocessor(batch, True)
            losses = self.model._run_forward(data, mode='loss')
        loss, _ = self.model.parse_losses(losses)
        self.optim.update_params(loss)


def measure(args) -> dict:
    """Median seconds and minor page faults per step of each variant,
    timed in turns in this process."""
    from mmengine.config import Config
    from mmengine.registry import init_default_scope

    import mmdssd  # noqa: F401
    from mmdssd.datasets import point_cfg_at_synthetic
    from mmdssd.utils.timing import runner_environment

    base = Config.fromfile(args.config)
    point_cfg_at_synthetic(base, args.data_root)
    init_default_scope(base.get('default_scope', 'mmdet'))
    # timed in the environment MMEngine's runner sets up (OpenCV
    # single-threaded by default): loading costs what it costs in the job
    with runner_environment(base):
        return _time_variants(base, args)


def _time_variants(base, args) -> dict:
    """:func:`measure` once the base config is loaded and the process set
    up."""
    from mmdssd.utils.allocator import minor_page_faults
    from mmdssd.utils.timing import time_in_turns
    arms = {
        name: Arm(variant_config(base, name), name.startswith('bf16'),
                  compiled=name.endswith('compile'))
        for name in args.variants
    }
    faults = {name: [] for name in arms}

    def steps(name, count, timed=True):
        before = minor_page_faults()
        for _ in range(count):
            arms[name].step()
        if timed:
            faults[name].append((minor_page_faults() - before) / count)

    times = time_in_turns(
        {k: lambda k=k: steps(k, args.steps) for k in arms},
        args.rounds,
        prepare={k: lambda k=k: steps(k, args.warmup, False) for k in arms})
    results = {}
    for name, arm in arms.items():
        results[name] = dict(step_s=statistics.median(times[name]) /
                             args.steps,
                             faults=statistics.median(faults[name]),
                             batch=arm.batch_size)
        if arm.compile_s is not None:
            results[name]['compile_s'] = arm.compile_s
    return results


def print_table(results: dict, args) -> None:
    """Seconds per step and per image, their ratio to the job, faults."""
    import torch
    ref = results['job']['step_s'] / results['job']['batch']
    print(f'{"variant":<17} {"s/step":>7} {"s/image":>8} {"ratio":>6} '
          f'{"faults/step":>11}  (ratio per image, to job)')
    for name, r in results.items():
        per_image = r['step_s'] / r['batch']
        print(f'{name:<17} {r["step_s"]:7.3f} {per_image:8.4f} '
              f'{per_image / ref:6.2f}x {r["faults"]:11.0f}')
    for name, r in results.items():
        if 'compile_s' in r:
            print(f'{name}: its first step, which compiles, took '
                  f'{r["compile_s"]:.1f} s (not in the medians)')
    memory = ('kept freed memory' if args.keep_freed_memory else
              "glibc's default malloc")
    print(f'torch {torch.__version__}, {torch.get_num_threads()} threads, '
          f'{args.rounds} turns of {args.steps} steps per variant, medians, '
          f'{memory}')


def compare_allocators(args) -> None:
    """Run this tool ``--allocator-turns`` times with each allocator
    setting, alternating, in fresh processes; print per variant the
    medians over the runs and the ratio kept / default."""
    command = [
        sys.executable, osp.abspath(__file__), '--config', args.config,
        '--data-root', args.data_root, '--rounds', str(args.rounds),
        '--steps', str(args.steps), '--json', '--variants', *args.variants
    ]
    runs = {'default': [], 'kept': []}
    for _ in range(args.allocator_turns):
        for setting, extra in (('default', []),
                               ('kept', ['--keep-freed-memory'])):
            proc = subprocess.run(command + extra, capture_output=True,
                                  text=True)
            if proc.returncode:
                sys.exit(f'--allocator-turns: the run with the {setting} '
                         f'allocator failed:\n{proc.stderr[-2000:]}')
            runs[setting].append(
                json.loads(proc.stdout.strip().splitlines()[-1]))
    print(f'{"variant":<17} {"default s":>9} {"kept s":>7} {"ratio":>6} '
          f'{"faults default":>14} {"kept":>6}')
    for name in args.variants:
        step = {k: statistics.median(r[name]['step_s'] for r in v)
                for k, v in runs.items()}
        faults = {k: statistics.median(r[name]['faults'] for r in v)
                  for k, v in runs.items()}
        print(f'{name:<17} {step["default"]:9.3f} {step["kept"]:7.3f} '
              f'{step["kept"] / step["default"]:5.2f}x '
              f'{faults["default"]:14.0f} {faults["kept"]:6.0f}')
    print(f'{args.allocator_turns} runs per setting, alternating, each '
          f'{args.rounds} turns of {args.steps} steps per variant; medians '
          'over the runs of their medians')


def main() -> None:
    args = parse_args()
    if args.allocator_turns:
        compare_allocators(args)
        return
    if args.keep_freed_memory:
        from mmdssd.utils.allocator import keep_freed_memory
        if not keep_freed_memory():
            sys.exit('--keep-freed-memory: the C library is not glibc')
    results = measure(args)
    if args.json:
        print(json.dumps(results))
    else:
        print_table(results, args)


if __name__ == '__main__':
    main()
