"""The main job: train the small DSSD on the embedded synthetic set.

    python tools/run_synthetic.py [--config C] [--work-dir W] [--epochs N]

Generates the synthetic set (seeded, seconds), trains
configs/synthetic/dssd_tiny_synthetic.py on the CPU, evaluates on the test
split (VOC 11-point mAP@0.5 and COCO AP with small/medium/large), keeps the
checkpoint, draws detections on a few test images with MMDetection's
visualiser, plots the loss and mAP curves, and prints where it all went.
"""
import argparse
import glob
import json
import os
import os.path as osp
import time

from mmengine.config import Config

import mmdssd  # noqa: F401
from mmdssd.datasets import (SyntheticSpec, generate_synthetic_dataset,
                             point_cfg_at_synthetic)
from mmdssd.utils.cli import set_max_epochs

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        '--config',
        default=osp.join(ROOT, 'configs', 'synthetic',
                         'dssd_tiny_synthetic.py'))
    parser.add_argument('--work-dir', default='work_dirs/synthetic_demo')
    parser.add_argument('--data-root', default='data/synthetic')
    parser.add_argument('--epochs', type=int, default=None,
                        help='override the config\'s max_epochs')
    parser.add_argument('--val-interval', type=int, default=4)
    parser.add_argument('--num-vis', type=int, default=4)
    parser.add_argument('--seed', type=int, default=0)
    return parser.parse_args()


def plot_curves(work_dir: str, out_file: str) -> str:
    """Loss per iteration and mAP per validation, from MMEngine's logs."""
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    runs = sorted(glob.glob(osp.join(work_dir, '*', 'vis_data',
                                     'scalars.json')))
    if not runs:
        raise FileNotFoundError(f'no scalars.json under {work_dir}')
    train, val = [], []
    with open(runs[-1]) as f:
        for line in f:
            rec = json.loads(line)
            if 'loss' in rec:
                train.append((rec['iter'], rec['loss']))
            if 'pascal_voc/mAP' in rec:
                val.append((rec['step'], rec['pascal_voc/mAP'],
                            rec.get('coco/bbox_mAP', float('nan'))))
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(10, 4))
    ax1.plot(*zip(*train))
    ax1.set_xlabel('iteration')
    ax1.set_ylabel('training loss')
    if val:
        epochs, voc, coco = zip(*val)
        ax2.plot(epochs, voc, 'o-', label='VOC mAP@0.5 (11-point)')
        ax2.plot(epochs, coco, 's-', label='COCO AP@[.5:.95]')
        ax2.legend()
    ax2.set_xlabel('epoch')
    ax2.set_ylabel('test metric')
    fig.suptitle(osp.basename(work_dir))
    fig.tight_layout()
    fig.savefig(out_file, dpi=100)
    plt.close(fig)
    return out_file


def draw_detections(cfg: Config, checkpoint: str, images, out_dir: str):
    """MMDetection's init_detector/inference_detector + DetLocalVisualizer."""
    import mmcv
    from mmdet.apis import inference_detector, init_detector
    from mmdet.registry import VISUALIZERS
    model = init_detector(cfg, checkpoint, device='cpu')
    visualizer = VISUALIZERS.build(
        dict(type='DetLocalVisualizer', name='synthetic_demo_vis'))
    visualizer.dataset_meta = model.dataset_meta
    os.makedirs(out_dir, exist_ok=True)
    outs = []
    for path in images:
        result = inference_detector(model, path)
        out_file = osp.join(out_dir, osp.basename(path))
        visualizer.add_datasample(
            osp.basename(path),
            mmcv.imread(path, channel_order='rgb'),
            result,
            draw_gt=False,
            pred_score_thr=0.3,
            out_file=out_file)
        outs.append(out_file)
    return outs


def main() -> None:
    from mmengine.runner import Runner
    args = parse_args()
    start = time.time()
    paths = generate_synthetic_dataset(args.data_root, SyntheticSpec())
    cfg = Config.fromfile(args.config)
    point_cfg_at_synthetic(cfg, args.data_root)
    cfg.work_dir = osp.abspath(args.work_dir)
    if args.epochs is not None:
        set_max_epochs(cfg, args.epochs)
    cfg.train_cfg.val_interval = args.val_interval
    cfg.default_hooks.checkpoint.interval = cfg.train_cfg.max_epochs
    cfg.randomness = dict(seed=args.seed)

    runner = Runner.from_cfg(cfg)
    runner.train()
    train_s = time.time() - start
    metrics = runner.test()
    checkpoint = osp.join(cfg.work_dir,
                          f'epoch_{cfg.train_cfg.max_epochs}.pth')

    curve = plot_curves(cfg.work_dir, osp.join(cfg.work_dir, 'curves.png'))
    with open(osp.join(paths['voc_root'], 'VOC2007', 'ImageSets', 'Main',
                       'test.txt')) as f:
        names = f.read().split()[:args.num_vis]
    images = [
        osp.join(paths['voc_root'], 'VOC2007', 'JPEGImages', n + '.jpg')
        for n in names
    ]
    vis = draw_detections(cfg, checkpoint, images,
                          osp.join(cfg.work_dir, 'vis'))
    summary = dict(
        config=args.config,
        train_with_val_seconds=round(train_s, 1),
        total_seconds=round(time.time() - start, 1),
        metrics={k: round(float(v), 4) for k, v in metrics.items()})
    with open(osp.join(cfg.work_dir, 'summary.json'), 'w') as f:
        json.dump(summary, f, indent=2)

    print('\n==== mmdssd synthetic main job ====')
    print(f'data           : {osp.abspath(args.data_root)} (VOC + COCO)')
    print(f'checkpoint     : {checkpoint}')
    print(f'curves (PNG)   : {curve}')
    print(f'detections     : {osp.dirname(vis[0])} ({len(vis)} images)')
    print(f'summary        : {osp.join(cfg.work_dir, "summary.json")}')
    print(f'time           : {summary["total_seconds"]} s')
    print(f'VOC mAP@0.5    : {metrics["pascal_voc/mAP"]:.4f}')
    print(f'COCO AP        : {metrics["coco/bbox_mAP"]:.4f} '
          f'(AP50 {metrics["coco/bbox_mAP_50"]:.4f}, '
          f'S {metrics["coco/bbox_mAP_s"]:.4f}, '
          f'M {metrics["coco/bbox_mAP_m"]:.4f}, '
          f'L {metrics["coco/bbox_mAP_l"]:.4f})')


if __name__ == '__main__':
    main()
