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


def test_the_set_every_figure_was_measured_on():
    """The generator's output is pinned: the documented figures were all
    measured on this set, so making the generator faster must not change
    it. Pixels are pinned before the JPEG encoder (a Pillow release may
    encode differently), the annotations as written."""
    import hashlib

    import numpy as np

    from mmdssd.datasets import synthetic
    rng = np.random.default_rng(0)
    pixels = hashlib.sha256()
    for _ in range(8):
        img, objects, blur = synthetic._make_image(rng, SyntheticSpec())
        pixels.update(img.tobytes())
        pixels.update(json.dumps([img.size, blur, objects]).encode())
    assert pixels.hexdigest() == ('76df989349073dfa5448ecc37d41a037'
                                  '39959b66642296bc4864e0d918092dc7')


def test_the_annotations_every_figure_was_measured_on(tmp_path):
    import hashlib
    generate_synthetic_dataset(
        str(tmp_path), SyntheticSpec(num_trainval=12, num_test=4, seed=0))
    digests = {
        split: hashlib.sha256(
            (tmp_path / 'annotations' /
             f'instances_{split}.json').read_bytes()).hexdigest()
        for split in ('trainval', 'test')
    }
    assert digests == dict(
        trainval='fad215be844ea36eb9e035ee30b46b62'
        '38aaf817d43a33996932f157875694e5',
        test='e1a2ae5db99af79ea9e909ffb64aec5e'
        '525c51229eee62303487fb3558436a46')


def test_a_failed_write_raises_and_leaves_no_stamp(tmp_path, monkeypatch):
    """Images are written in a second thread: what it raises reaches the
    caller, and the set is not stamped complete (the next call writes it
    again)."""
    from PIL import Image

    def full_disk(self, path, *args, **kwargs):
        if str(path).endswith('000005.jpg'):
            raise OSError(28, 'No space left on device', str(path))
        return save(self, path, *args, **kwargs)

    save = Image.Image.save
    monkeypatch.setattr(Image.Image, 'save', full_disk)
    with pytest.raises(OSError, match='000005.jpg'):
        generate_synthetic_dataset(str(tmp_path), SPEC)
    assert not (tmp_path / 'SPEC.json').exists()
    monkeypatch.undo()
    generate_synthetic_dataset(str(tmp_path), SPEC)
    assert (tmp_path / 'SPEC.json').exists()


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


def _render(label, w, h):
    """Binary mask of one object of class ``label`` drawn in a w x h box."""
    import numpy as np
    from PIL import Image, ImageDraw

    from mmdssd.datasets.synthetic import _draw
    img = Image.new('RGB', (w + 4, h + 4))
    _draw(ImageDraw.Draw(img), label, (2, 2, 2 + w, 2 + h), (255, 255, 255))
    return np.asarray(img)[..., 0] > 0


def _allowed_boxes(spec):
    """Every (w, h) the spec can draw: sides min_obj..the largest
    max_side, at the extreme and the middle aspect ratios."""
    import math
    largest = int(round(spec.img_size * 1.1) * spec.max_obj_frac)
    for side in range(spec.min_obj, largest + 1):
        for aspect in (math.exp(-0.4), 1.0, math.exp(0.4)):
            yield (int(min(max(side * aspect, spec.min_obj), largest)),
                   int(min(max(side / aspect, spec.min_obj), largest)))


@pytest.mark.parametrize('spec', [SyntheticSpec(),
                                  SyntheticSpec.small_objects()],
                         ids=['default', 'small_objects'])
def test_no_two_classes_render_alike(spec):
    """At every size the spec allows, each pair of classes differs in at
    least 15% of the pixels the two shapes cover together (a ring is not a
    disc, a cross is not a square), and every shape covers pixels."""
    import itertools
    worst = {}
    for w, h in set(_allowed_boxes(spec)):
        masks = {c: _render(c, w, h) for c in SYNTHETIC_CLASSES}
        assert all(m.sum() > 0 for m in masks.values()), (w, h)
        for a, b in itertools.combinations(SYNTHETIC_CLASSES, 2):
            diff = (masks[a] ^ masks[b]).sum() / (masks[a] | masks[b]).sum()
            if diff < worst.get((a, b), (1.0, None))[0]:
                worst[(a, b)] = (diff, (w, h))
    for pair, (diff, size) in worst.items():
        assert diff >= 0.15, f'{pair} differ in only {diff:.1%} at {size}'


def test_ring_has_a_hole():
    """The centre of a ring is background; the centre of a circle is not."""
    for side in (8, 20, 60, 160):
        ring = _render('ring', side, side)
        circle = _render('circle', side, side)
        c = side // 2 + 2
        assert not ring[c - 1:c + 1, c - 1:c + 1].any(), side
        assert circle[c - 1:c + 1, c - 1:c + 1].all(), side


def test_small_objects_preset(tmp_path):
    spec = SyntheticSpec.small_objects(num_trainval=30, num_test=2, seed=2)
    generate_synthetic_dataset(str(tmp_path), spec)
    with open(tmp_path / 'annotations/instances_trainval.json') as f:
        anns = json.load(f)['annotations']
    sides = [max(a['bbox'][2:]) for a in anns]
    assert min(sides) >= spec.min_obj
    assert sum(s < 32 for s in sides) / len(sides) >= 0.75
    assert len(anns) / 30 >= 4  # crowded on average
    # the strokes are drawn: the same spec without clutter differs
    plain = tmp_path / 'plain'
    generate_synthetic_dataset(
        str(plain), SyntheticSpec.small_objects(num_trainval=30, num_test=2,
                                                seed=2, clutter=0))
    assert not filecmp.cmp(
        tmp_path / 'VOCdevkit/VOC2007/JPEGImages/000001.jpg',
        plain / 'VOCdevkit/VOC2007/JPEGImages/000001.jpg', shallow=False)


def test_old_generator_stamp_regenerates(tmp_path):
    """A set written by the generator with filled rings is redrawn."""
    generate_synthetic_dataset(str(tmp_path), SPEC)
    stamp = tmp_path / 'SPEC.json'
    old = json.loads(stamp.read_text())
    old.pop('generator')
    stamp.write_text(json.dumps(old, sort_keys=True))
    xml = tmp_path / 'VOCdevkit/VOC2007/Annotations/000001.xml'
    xml.write_text('stale')
    generate_synthetic_dataset(str(tmp_path), SPEC)
    assert xml.read_text() != 'stale'
    assert json.loads(stamp.read_text())['generator'] >= 2


def test_test_split_does_not_depend_on_the_training_count(tmp_path):
    """More training images (the main job's choice) leave the test split's
    images and boxes as they are."""
    small, large = tmp_path / 'small', tmp_path / 'large'
    generate_synthetic_dataset(str(small), SyntheticSpec(
        num_trainval=5, num_test=4, seed=7))
    generate_synthetic_dataset(str(large), SyntheticSpec(
        num_trainval=9, num_test=4, seed=7))

    def test_split(root):
        with open(root / 'annotations/instances_test.json') as f:
            coco = json.load(f)
        files = [(root / 'VOCdevkit/VOC2007/JPEGImages' /
                  im['file_name']).read_bytes() for im in coco['images']]
        boxes = [(a['bbox'], a['category_id']) for a in coco['annotations']]
        return files, boxes

    assert test_split(small) == test_split(large)
