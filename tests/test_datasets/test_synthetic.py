import filecmp
import json
import os.path as osp

import pytest
from mmdet.datasets import CocoDataset, VOCDataset

from mmdssd.datasets import (SYNTHETIC_CLASSES, SyntheticSpec,
                             generate_synthetic_dataset)

SPEC = SyntheticSpec(num_trainval=40, num_test=10, seed=3)


@pytest.fixture(scope='module')
def root(tmp_path_factory):
    out = tmp_path_factory.mktemp('syn')
    generate_synthetic_dataset(str(out), SPEC)
    return out


def test_deterministic(root, tmp_path):
    generate_synthetic_dataset(str(tmp_path), SPEC)
    for rel in ('annotations/instances_trainval.json',
                'VOCdevkit/VOC2007/Annotations/000007.xml',
                'VOCdevkit/VOC2007/ImageSets/Main/test.txt'):
        assert filecmp.cmp(root / rel, tmp_path / rel, shallow=False), rel
    other = tmp_path / 'other'
    generate_synthetic_dataset(str(other), SyntheticSpec(
        num_trainval=40, num_test=10, seed=4))
    assert not filecmp.cmp(root / 'annotations/instances_trainval.json',
                           other / 'annotations/instances_trainval.json',
                           shallow=False)


def test_voc_layout_reads_in_mmdet(root):
    ds = VOCDataset(
        data_root=str(root / 'VOCdevkit') + '/',
        ann_file='VOC2007/ImageSets/Main/trainval.txt',
        data_prefix=dict(sub_data_root='VOC2007/'),
        metainfo=dict(classes=SYNTHETIC_CLASSES),
        pipeline=[],
        test_mode=True)
    assert len(ds) == SPEC.num_trainval
    assert ds.metainfo['dataset_type'] == 'VOC2007'  # 11-point AP
    infos = [ds.get_data_info(i) for i in range(len(ds))]
    counts = [len(i['instances']) for i in infos]
    assert 0 in counts  # images without objects
    assert max(counts) >= 8  # crowded scenes
    sides = [min(b[2] - b[0], b[3] - b[1]) for i in infos
             for b in (inst['bbox'] for inst in i['instances'])]
    assert min(sides) < 12 and max(sides) > 100  # ~8 px to half the image
    assert any(inst['ignore_flag'] for i in infos for inst in i['instances'])


def test_coco_layout_matches_voc(root):
    ds = CocoDataset(
        data_root=str(root) + '/',
        ann_file='annotations/instances_test.json',
        data_prefix=dict(img='VOCdevkit/VOC2007/JPEGImages/'),
        metainfo=dict(classes=SYNTHETIC_CLASSES),
        pipeline=[],
        test_mode=True)
    assert len(ds) == SPEC.num_test
    with open(root / 'annotations/instances_test.json') as f:
        coco = json.load(f)
    first = coco['images'][0]
    assert osp.isfile(root / 'VOCdevkit/VOC2007/JPEGImages' /
                      first['file_name'])
    test_ids = (root / 'VOCdevkit/VOC2007/ImageSets/Main/test.txt'
                ).read_text().split()
    assert [im['file_name'][:-4] for im in coco['images']] == test_ids


@pytest.mark.parametrize('field, value', [('num_test', 0), ('img_size', 8),
                                          ('empty_frac', 1.5),
                                          ('min_obj', 2)])
def test_bad_spec_names_the_field(field, value, tmp_path):
    spec = SyntheticSpec(**{field: value})
    with pytest.raises(ValueError, match=f'SyntheticSpec.{field}='):
        generate_synthetic_dataset(str(tmp_path), spec)
    assert not (tmp_path / 'VOCdevkit').exists()  # nothing half-written
