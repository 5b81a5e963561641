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
import time

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
VARIANTS = ('job', 'adamw-unfused', 'bf16-autocast', '1-worker', 'batch-4',
            'input-224', 'input-192')


def main() -> None:
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
    args = parser.parse_args()

    import torch
    from mmdet.registry import MODELS
    from mmengine.config import Config
    from mmengine.optim import build_optim_wrapper
    from mmengine.registry import init_default_scope
    from mmengine.runner import Runner

    import mmdssd  # noqa: F401
    from mmdssd.datasets import point_cfg_at_synthetic

    base = Config.fromfile(args.config)
    point_cfg_at_synthetic(base, args.data_root)
    init_default_scope(base.get('default_scope', 'mmdet'))
    arms = {}
    for name in VARIANTS:
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
        torch.manual_seed(0)
        model = MODELS.build(cfg.model)
        model.init_weights()
        model.to(memory_format=torch.channels_last)
        model.train()
        optim = build_optim_wrapper(model, cfg.optim_wrapper)
        loader = Runner.build_dataloader(loader_cfg, seed=0)
        arms[name] = [model, optim, loader, loader_cfg.batch_size,
                      iter(loader)]

    def step(name):
        model, optim, loader, _, batches = arms[name]
        try:
            batch = next(batches)
        except StopIteration:  # a small set: start the next pass
            arms[name][4] = batches = iter(loader)
            batch = next(batches)
        if name != 'bf16-autocast':
            model.train_step(batch, optim)
            return
        with torch.autocast('cpu', dtype=torch.bfloat16):
            data = model.data_preprocessor(batch, True)
            losses = model._run_forward(data, mode='loss')
        loss, _ = model.parse_losses(losses)
        optim.update_params(loss)

    times = {name: [] for name in VARIANTS}
    for _ in range(args.rounds):
        for name in VARIANTS:
            for _ in range(2):
                step(name)
            start = time.perf_counter()
            for _ in range(args.steps):
                step(name)
            times[name].append((time.perf_counter() - start) / args.steps)

    def median(values):
        values = sorted(values)
        return values[len(values) // 2]

    ref = median(times['job']) / arms['job'][3]
    print(f'{"variant":<14} {"s/step":>7} {"s/image":>8} {"ratio":>6}'
          '  (per image, to job)')
    for name in VARIANTS:
        per_step = median(times[name])
        per_image = per_step / arms[name][3]
        print(f'{name:<14} {per_step:7.3f} {per_image:8.4f} '
              f'{per_image / ref:6.2f}x')
    print(f'torch {torch.__version__}, {torch.get_num_threads()} threads, '
          f'{args.rounds} turns of {args.steps} steps per variant, medians')


if __name__ == '__main__':
    main()
