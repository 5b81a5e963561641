"""Time the main job's training step against variants, side by side.

    python tools/analysis_tools/train_step_variants.py [--rounds 6] \
        [--steps 10]

Builds the main job's model (configs/synthetic/dssd_main_job_synthetic.py,
channels-last as the job runs it) once per variant, then runs the variants'
training steps in turns (round-robin, ``--steps`` a turn after 2 untimed
ones), so that every variant sees the same machine state; prints the median
seconds per step and per image and the ratio to the job's own setting:

- ``job``: fused AdamW, loading in the main process, float32, batch 8;
- ``adamw-unfused``: AdamW's default (per-parameter) implementation;
- ``bf16-autocast``: forward and loss under CPU bfloat16 autocast;
- ``1-worker``: loading in one worker process (``num_workers=1``);
- ``batch-4``: batch 4 (compare per image);
- ``input-224``, ``input-192``: the training images resized to 224 / 192
  instead of 256 (the sizes of the job's progressive-resizing phases; the
  job itself is timed at 256, its last phase).

Needs the synthetic set (``tools/run_synthetic.py`` or
``tools/misc/gen_synthetic_data.py`` writes it). Time nothing else beside it.
"""
import argparse
import copy
import os.path as osp
import statistics

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
VARIANTS = ('job', 'adamw-unfused', 'bf16-autocast', '1-worker', 'batch-4',
            'input-224', 'input-192')


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        '--config',
        default=osp.join(ROOT, 'configs', 'synthetic',
                         'dssd_main_job_synthetic.py'))
    parser.add_argument('--data-root', default='data/synthetic')
    parser.add_argument('--rounds', type=int, default=6,
                        help='turns per variant')
    parser.add_argument('--steps', type=int, default=10,
                        help='timed steps per turn')
    return parser.parse_args()


def variant_config(base, name: str):
    """The job's config changed as variant ``name`` says."""
    cfg = copy.deepcopy(base)
    loader_cfg = cfg.train_dataloader
    if name == 'adamw-unfused':
        cfg.optim_wrapper.optimizer.pop('fused', None)
    if name == '1-worker':
        loader_cfg.num_workers = 1
        loader_cfg.persistent_workers = True
    if name == 'batch-4':
        loader_cfg.batch_size = 4
    if name.startswith('input-'):
        side = int(name.split('-')[1])
        for t in loader_cfg.dataset.pipeline:
            if t['type'] == 'Resize':
                t['scale'] = (side, side)
    return cfg


class Arm:
    """One variant's model, optimiser and endless batches."""

    def __init__(self, cfg, bf16: bool) -> None:
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


def main() -> None:
    args = parse_args()
    import torch
    from mmengine.config import Config
    from mmengine.registry import init_default_scope

    import mmdssd  # noqa: F401
    from mmdssd.datasets import point_cfg_at_synthetic
    from mmdssd.utils.timing import time_in_turns

    base = Config.fromfile(args.config)
    point_cfg_at_synthetic(base, args.data_root)
    init_default_scope(base.get('default_scope', 'mmdet'))
    arms = {
        name: Arm(variant_config(base, name), name == 'bf16-autocast')
        for name in VARIANTS
    }

    def steps(arm, count):
        for _ in range(count):
            arm.step()

    # two steps of a variant before each timed turn re-warm its caches
    times = time_in_turns(
        {k: lambda arm=arm: steps(arm, args.steps) for k, arm in arms.items()},
        args.rounds,
        prepare={k: lambda arm=arm: steps(arm, 2) for k, arm in arms.items()})
    per_step = {k: statistics.median(v) / args.steps for k, v in times.items()}
    ref = per_step['job'] / arms['job'].batch_size
    print(f'{"variant":<14} {"s/step":>7} {"s/image":>8} {"ratio":>6}'
          '  (per image, to job)')
    for name in VARIANTS:
        per_image = per_step[name] / arms[name].batch_size
        print(f'{name:<14} {per_step[name]:7.3f} {per_image:8.4f} '
              f'{per_image / ref:6.2f}x')
    print(f'torch {torch.__version__}, {torch.get_num_threads()} threads, '
          f'{args.rounds} turns of {args.steps} steps per variant, medians')


if __name__ == '__main__':
    main()
