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

from mmengine.config import Config, DictAction

import mmdssd  # noqa: F401
from mmdssd.utils.anchor_ratios import ratio_report, ratio_report_text
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


def main() -> None:
    args = parse_args()
    cfg = Config.fromfile(resolve_config(args.config))
    if args.cfg_options:
        cfg.merge_from_dict(args.cfg_options)
    report = ratio_report(cfg, args.k, args.max_images)
    print(ratio_report_text(report,
                            cfg.model.train_cfg.assigner.get('pos_iou_thr')))
    if args.out:
        with open(args.out, 'w') as f:
            json.dump(report, f, indent=2)


if __name__ == '__main__':
    main()
