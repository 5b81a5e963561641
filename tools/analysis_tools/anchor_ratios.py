"""Suggest default-box aspect ratios by K-means, as the DSSD paper did.

    python tools/analysis_tools/anchor_ratios.py CONFIG [--k 3]

Reads the config's training boxes (VOC or COCO), scales them as the
config's Resize does (the boxes the network sees; random crops and
expansion left out), clusters their shapes into K ratios (|log(w/h)|,
K-means; the paper got 1.6, 2 and 3 on VOC07+12), and reports how well
the config's current default boxes and the suggested ones cover the
ground truth: the fraction of boxes whose best default box has IoU >= 0.5
and the mean best IoU, overall and per COCO size range, and how many
default boxes the config's assigner makes positive per ground-truth box.
Ends with a line to paste into a config.
"""
import argparse
import json

import numpy as np
import torch
from mmengine.config import Config, DictAction

import mmdssd  # noqa: F401
from mmdssd.utils.anchor_ratios import (
    SIZE_RANGES, anchor_coverage, kmeans_ratios, positives_per_box,
    resize_factors)
from mmdssd.utils.config_paths import resolve_config


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('config')
    parser.add_argument('--k', type=int, default=3, help='ratios to find')
    parser.add_argument('--max-images', type=int, default=None,
                        help='read at most this many training images')
    parser.add_argument('--out', help='also write the report as JSON')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction)
    return parser.parse_args()


def training_boxes(cfg, max_images=None):
    """Per image: boxes (G, 4) in network input coordinates (ignored
    boxes left out), from the config's training set."""
    from mmdet.registry import DATASETS
    from mmengine.registry import init_default_scope
    init_default_scope('mmdet')
    ds_cfg = cfg.train_dataloader.dataset
    while 'dataset' in ds_cfg or 'datasets' in ds_cfg:
        ds_cfg = ds_cfg.get('dataset') or ds_cfg.datasets[0]
    pipeline = ds_cfg.get('pipeline', [])
    dataset = DATASETS.build(dict(ds_cfg, pipeline=[]))
    out = []
    count = len(dataset)
    if max_images is not None:
        count = min(max_images, count)
    for i in range(count):
        info = dataset.get_data_info(i)
        fx, fy = resize_factors(pipeline, (info['width'], info['height']))
        boxes = [inst['bbox'] for inst in info['instances']
                 if not inst.get('ignore_flag', 0)]
        boxes = torch.tensor(boxes, dtype=torch.float32).reshape(-1, 4)
        out.append(boxes * torch.tensor([fx, fy, fx, fy]))
    return out, pipeline


def priors_for(cfg, ratios=None):
    """All default boxes of the config's network at its input size."""
    from mmdet.registry import MODELS, TASK_UTILS
    model_cfg = cfg.model.copy()
    if model_cfg.backbone.get('init_cfg'):
        model_cfg.backbone.init_cfg = None
    model = MODELS.build(model_cfg).eval()
    size = cfg.model.bbox_head.anchor_generator.get('input_size', 300)
    with torch.no_grad():
        feats = model.extract_feat(torch.zeros(1, 3, size, size))
    sizes = [f.shape[-2:] for f in feats]
    ag = cfg.model.bbox_head.anchor_generator.copy()
    if ratios is not None:
        ag.ratios = ratios
    return torch.cat(TASK_UTILS.build(ag).grid_priors(sizes, device='cpu'))


def report(cfg, k=3, max_images=None):
    from mmdet.registry import TASK_UTILS
    boxes, _ = training_boxes(cfg, max_images)
    allb = torch.cat(boxes) if boxes else torch.zeros(0, 4)
    wh = (allb[:, 2:] - allb[:, :2]).numpy()
    keep = (wh > 0).all(1)
    suggested = [round(r, 2) for r in kmeans_ratios(wh[keep, 0], wh[keep, 1],
                                                    k)]
    current = list(cfg.model.bbox_head.anchor_generator.ratios)
    priors = priors_for(cfg)
    return dict(
        boxes=int(keep.sum()),
        images=len(boxes),
        current=dict(ratios=current,
                     coverage=anchor_coverage(priors, boxes),
                     positives=positives_per_box(
                         priors, boxes,
                         TASK_UTILS.build(cfg.model.train_cfg.assigner))),
        suggested=dict(ratios=suggested,
                       coverage=anchor_coverage(priors_for(cfg, suggested),
                                                boxes)))


def main() -> None:
    args = parse_args()
    cfg = Config.fromfile(resolve_config(args.config))
    if args.cfg_options:
        cfg.merge_from_dict(args.cfg_options)
    rep = report(cfg, args.k, args.max_images)
    print(f'{rep["boxes"]} training boxes in {rep["images"]} images, as '
          'the network sees them')
    names = ['all'] + [n for n, _, _ in SIZE_RANGES]
    print(f'{"default boxes":<32}' + ''.join(
        f'{n + " (n)":>22}' for n in names))
    for key in ('current', 'suggested'):
        cov = rep[key]['coverage']
        cells = ''.join(
            f'{cov[n]["matched"]:>8.3f} / {cov[n]["mean_best_iou"]:.3f}'
            f' ({cov[n]["count"]:>4})' for n in names)
        label = f'{key} ratios {rep[key]["ratios"]}'
        print(f'{label:<32}{cells}')
    print('(each cell: fraction matched at IoU >= 0.5 / mean best IoU '
          '(boxes))')
    pos = rep['current']['positives']
    thr = cfg.model.train_cfg.assigner.get('pos_iou_thr')
    print(f'positives per box, current default boxes and the config\'s '
          f'assigner (pos_iou_thr {thr}): mean {pos["mean"]:.2f}, median '
          f'{pos["median"]:.0f}, {pos["single"]:.1%} with one only')
    print('paste into the config:')
    print(f'model = dict(bbox_head=dict(anchor_generator=dict(ratios='
          f'{rep["suggested"]["ratios"]})))')
    if args.out:
        with open(args.out, 'w') as f:
            json.dump(rep, f, indent=2)


if __name__ == '__main__':
    np.set_printoptions(precision=3)
    main()
