import os.path as osp

from mmdet.registry import DATASETS

from mmdssd.engine import find_unknown_classes

from ..conftest import ROOT

FACEMASK = osp.join(ROOT, 'tests', 'data', 'facemask', 'VOCdevkit') + '/'


def _voc(classes):
    return DATASETS.build(dict(
        type='VOCDataset', data_root=FACEMASK,
        ann_file='VOC2007/ImageSets/Main/trainval.txt',
        data_prefix=dict(sub_data_root='VOC2007/'),
        metainfo=dict(classes=classes), pipeline=[]))


def test_voc_objects_outside_the_classes_are_named():
    full = ('mask_weared_incorrect', 'with_mask', 'without_mask')
    assert find_unknown_classes(_voc(full)) == []
    found = find_unknown_classes(_voc(('with_mask', 'without_mask')))
    assert found and {name for *_, name in found} == {
        'mask_weared_incorrect'}
    xml, obj, _ = found[0]
    assert xml.endswith('.xml') and osp.isfile(xml)
    assert obj.startswith('object ')
    # what VOCDataset itself did: dropped them without a word
    dataset = _voc(('with_mask', 'without_mask'))
    kept = sum(len(dataset.get_data_info(i)['instances'])
               for i in range(len(dataset)))
    total = sum(len(_voc(full).get_data_info(i)['instances'])
                for i in range(len(dataset)))
    assert kept == total - len(found)


def test_coco_annotations_outside_the_classes_are_named(synthetic_root):
    dataset = DATASETS.build(dict(
        type='ConcatDataset', datasets=[dict(
            type='CocoDataset', data_root=synthetic_root,
            ann_file='annotations/instances_test.json',
            data_prefix=dict(img='VOCdevkit/VOC2007/JPEGImages/'),
            metainfo=dict(classes=('circle', 'square', 'triangle',
                                   'cross')), pipeline=[])]))
    found = find_unknown_classes(dataset)
    assert found and {name for *_, name in found} == {'ring'}
    assert found[0][0].endswith('instances_test.json')
    assert found[0][1].startswith('annotation id ')
