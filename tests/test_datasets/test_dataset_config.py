import json
import os
import os.path as osp
import shutil

import pytest
from mmdet.registry import DATASETS
from mmengine.config import Config

from mmdssd.datasets.dataset_config import (LayoutError, config_text,
                                            find_layout)

from ..conftest import CONFIGS, ROOT

TINY = osp.join(CONFIGS, 'synthetic', 'dssd_tiny_synthetic.py')
SHAPES = ('circle', 'cross', 'ring', 'square', 'triangle')


@pytest.fixture
def coco_folder(synthetic_root, tmp_path):
    """The synthetic set in a COCO layout: annotations/*.json, images in
    folders named after the files."""
    root = tmp_path / 'coco'
    (root / 'annotations').mkdir(parents=True)
    images = osp.join(synthetic_root, 'VOCdevkit', 'VOC2007', 'JPEGImages')
    for split, name in (('trainval', 'train'), ('test', 'test')):
        shutil.copy(osp.join(synthetic_root, 'annotations',
                             f'instances_{split}.json'),
                    root / 'annotations' / f'instances_{name}.json')
        os.symlink(images, root / name)
    return root


def _write(layout, tmp_path):
    path = tmp_path / 'cfg.py'
    path.write_text(config_text(layout, TINY))
    return Config.fromfile(str(path))


def test_coco_folder_gives_classes_splits_and_metrics(coco_folder, tmp_path):
    layout = find_layout(str(coco_folder))
    assert layout.format == 'coco' and layout.classes == SHAPES
    cfg = _write(layout, tmp_path)
    assert cfg.model.bbox_head.num_classes == 5
    train = DATASETS.build(cfg.train_dataloader.dataset)
    test = DATASETS.build(cfg.test_dataloader.dataset)
    with open(coco_folder / 'annotations' / 'instances_train.json') as f:
        annotated = {a['image_id'] for a in json.load(f)['annotations']}
    # images without objects are left out of training, as in mmdet's VOC
    assert len(train) == len(annotated) and len(test) == 8
    assert train.metainfo['classes'] == SHAPES
    assert cfg.test_evaluator[1].ann_file == str(
        coco_folder / 'annotations' / 'instances_test.json')


def test_voc_folder_keeps_annotations_for_coco_ap(tmp_path):
    layout = find_layout(osp.join(ROOT, 'tests', 'data', 'facemask'))
    cfg = _write(layout, tmp_path)
    pack = cfg.test_dataloader.dataset.pipeline[-1]
    assert 'instances' in pack.meta_keys  # CocoMetric without ann_file
    assert cfg.test_evaluator[1].ann_file is None
    assert len(DATASETS.build(cfg.test_dataloader.dataset)) == 3


def test_folders_that_are_not_a_layout_are_named(tmp_path):
    with pytest.raises(LayoutError, match='no such folder'):
        find_layout(str(tmp_path / 'missing'))
    (tmp_path / 'annotations').mkdir()
    (tmp_path / 'annotations' / 'instances_train.json').write_text('{}')
    with pytest.raises(LayoutError, match=r'\*test\*\.json or \*val\*'):
        find_layout(str(tmp_path))
    year = tmp_path / 'VOC2007'
    (year / 'Annotations').mkdir(parents=True)
    (year / 'ImageSets' / 'Main').mkdir(parents=True)
    with pytest.raises(LayoutError, match='no training list'):
        find_layout(str(tmp_path), 'voc')


def test_input_size_resizes_pipelines_and_fits_default_boxes(tmp_path):
    """At 320 the tiny model's maps are 40, 20, 10, 5, 3 and 1 cells: the
    strides that cover the input are 320 / n, and both pipelines resize
    to 320; the box sizes stay fractions of the input."""
    layout = find_layout(osp.join(ROOT, 'tests', 'data', 'facemask'))
    path = tmp_path / 'cfg320.py'
    path.write_text(config_text(layout, TINY, input_size=320))
    cfg = Config.fromfile(str(path))
    base = Config.fromfile(TINY)
    head = cfg.model.bbox_head
    assert cfg.input_size == 320 and head.num_classes == 3
    assert head.anchor_generator.input_size == 320
    assert head.anchor_generator.strides == pytest.approx(
        [8, 16, 32, 64, 320 / 3, 320])
    assert head.anchor_generator.first_level == \
        base.model.bbox_head.anchor_generator.first_level
    for pipeline in (cfg.train_dataloader.dataset.pipeline,
                     cfg.test_dataloader.dataset.pipeline):
        resize = [t for t in pipeline if t.type == 'Resize']
        assert [tuple(t.scale) for t in resize] == [(320, 320)]
    # the rest of the training pipeline is the base's
    assert [t.type for t in cfg.train_dataloader.dataset.pipeline] == \
        [t.type for t in base.train_pipeline]
    # without --input-size the base's size and pipeline stay
    path.write_text(config_text(layout, TINY))
    cfg = Config.fromfile(str(path))
    assert cfg.input_size == base.input_size
    assert cfg.model.bbox_head.anchor_generator.strides == \
        base.model.bbox_head.anchor_generator.strides
