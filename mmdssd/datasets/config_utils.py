"""Point a synthetic-data config at a generated set anywhere on disk."""
import os.path as osp

from mmengine.config import Config


def point_cfg_at_synthetic(cfg: Config, root: str) -> Config:
    """Re-root the train/val/test data of a ``configs/synthetic`` config.

    The synthetic configs read ``data/synthetic/`` relative to the working
    directory; this sets every dataset root and the ``CocoMetric`` json to
    ``root`` instead (MMEngine cannot re-evaluate ``data_root + ...``
    expressions from ``--cfg-options``).

    Args:
        cfg (Config): A config inheriting ``dssd_tiny_synthetic.py``.
            Modified in place.
        root (str): Folder written by :func:`generate_synthetic_dataset`.

    Returns:
        Config: ``cfg``.
    """
    root = osp.abspath(root)
    train = cfg.train_dataloader.dataset
    while 'dataset' in train:  # RepeatDataset and friends
        train = train.dataset
    if train.get('type') != 'VOCDataset':
        raise ValueError('point_cfg_at_synthetic: train_dataloader must '
                         f'read a VOCDataset, got {train.get("type")}')
    train.data_root = osp.join(root, 'VOCdevkit') + '/'
    coco_json = osp.join(root, 'annotations', 'instances_test.json')
    for loader in ('val_dataloader', 'test_dataloader'):
        ds = cfg[loader].dataset
        ds.data_root = root + '/'
        ds.ann_file = coco_json
    for key in ('val_evaluator', 'test_evaluator'):
        evaluators = cfg[key] if isinstance(cfg[key], list) else [cfg[key]]
        for ev in evaluators:
            if ev.get('type') == 'CocoMetric':
                ev.ann_file = coco_json
    return cfg
