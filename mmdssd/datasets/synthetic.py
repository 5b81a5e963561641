"""A deterministic synthetic detection set of simple shapes.

The set is written in two layouts that MMDetection reads unchanged:

* VOC: ``VOCdevkit/VOC2007/{JPEGImages,Annotations,ImageSets/Main/
  {trainval,test}.txt}`` for ``VOCDataset`` (``VOC2007`` in the path makes
  ``VOCMetric`` use the 11-point AP of the DSSD paper);
* COCO: ``annotations/instances_{trainval,test}.json`` over the same
  ``JPEGImages`` for ``CocoDataset``/``CocoMetric``.

Scenes mix sparse and crowded images, objects from ~8 px to half the
image, images without any object, and a few objects marked difficult
(tiny or heavily occluded ones), so that every code path of training and
evaluation is exercised. Generation is seeded: the same arguments give
byte-identical annotations.
"""
import json
import math
import os
import os.path as osp
from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Deque, Dict, List, Tuple
from xml.etree import ElementTree as ET

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

SYNTHETIC_CLASSES = ('circle', 'square', 'triangle', 'cross', 'ring')
# Part of the SPEC.json stamp: a set written by an older generator is
# regenerated. 2: rings have a hole (version 1 drew them as filled discs),
# and the test split has its own random stream.
GENERATOR_VERSION = 2


@dataclass
class SyntheticSpec:
    """What to generate.

    Args:
        num_trainval (int): Images in the ``trainval`` split.
        num_test (int): Images in the ``test`` split.
        img_size (int): Nominal image side; image sides vary by +-10%.
        min_obj (int): Smallest object side in pixels.
        max_obj_frac (float): Largest object side as a fraction of
            the image side.
        empty_frac (float): Fraction of images with no object.
        crowded_frac (float): Fraction of crowded images (8-14 objects);
            the others hold 1-4.
        clutter (int): Unlabelled distractor strokes (thin lines and
            polylines in random colours, under the objects) per image.
            Defaults to 0.
        seed (int): Random seed.

    The default is the embedded set of the main job. :meth:`small_objects`
    is the preset of the small-object comparison.
    """
    num_trainval: int = 240
    num_test: int = 80
    img_size: int = 320
    min_obj: int = 8
    max_obj_frac: float = 0.5
    empty_frac: float = 0.05
    crowded_frac: float = 0.2
    clutter: int = 0
    seed: int = 0

    @classmethod
    def small_objects(cls, **overrides) -> 'SyntheticSpec':
        """Small objects in clutter: the regime where DSSD should help.

        Objects from 8 px to 12% of the image side (at most ~38 px on a
        320 px image, log-uniform, so about 89% are under 32 px: COCO's
        "small"), half of the images crowded (8-14 objects), and 24
        distractor strokes per image. Everything else as the default.
        ``overrides`` replace any field (e.g. ``seed``).
        """
        fields = dict(min_obj=8, max_obj_frac=0.12, crowded_frac=0.5,
                      clutter=24)
        fields.update(overrides)
        return cls(**fields)

    def validate(self) -> None:
        checks = {
            'num_trainval': self.num_trainval >= 1,
            'num_test': self.num_test >= 1,
            'img_size': self.img_size >= 32,
            'min_obj': 4 <= self.min_obj < self.img_size * self.max_obj_frac,
            'max_obj_frac': 0 < self.max_obj_frac <= 1,
            'empty_frac': 0 <= self.empty_frac < 1,
            'crowded_frac': 0 <= self.crowded_frac <= 1,
            'clutter': self.clutter >= 0,
        }
        for name, ok in checks.items():
            if not ok:
                raise ValueError(
                    f'SyntheticSpec.{name}={getattr(self, name)!r} is out of '
                    'range')


def _background(rng: np.random.Generator, w: int, h: int) -> np.ndarray:
    """A smooth two-colour gradient with mild noise, as uint8 channel
    planes ``(3, h, w)``.

    The arithmetic is that of full float grids, element for element (so
    the images stay byte-identical), done where it is cheaper: the
    gradient is separable, so it is computed on a row and a column and
    broadcast; the colours are mixed a channel plane at a time."""
    c0, c1 = rng.uniform(40, 215, size=(2, 3))
    angle = rng.uniform(0, 2 * math.pi)
    xx = np.arange(w, dtype=np.float32)
    yy = np.arange(h, dtype=np.float32)[:, None]
    t = np.cos(angle) * xx / w + np.sin(angle) * yy / h
    t -= t.min()
    t /= max(float(np.ptp(t)), 1e-6)
    # channel planes: a whole plane per operation, not three values
    planes = np.empty((3, h, w))
    for plane, a, b in zip(planes, c0, c1):
        np.multiply(1 - t, a, out=plane)
        plane += t * b
    planes += rng.normal(0, 6, size=(h, w, 3)).transpose(2, 0, 1)
    np.clip(planes, 0, 255, out=planes)
    return planes.astype(np.uint8)


def _channel_means(planes: np.ndarray) -> np.ndarray:
    """The mean of each uint8 channel plane, equal to the last bit to
    NumPy's ``mean`` of the interleaved image: a sum of uint8 values is
    exact in any order, and a plane sums contiguously."""
    flat = planes.reshape(len(planes), -1)
    return flat.sum(1, dtype=np.int64) / flat.shape[1]


def _contrasting_colour(rng: np.random.Generator,
                        bg: np.ndarray) -> Tuple[int, int, int]:
    for _ in range(20):
        colour = rng.integers(0, 256, size=3)
        if np.abs(colour - bg).sum() > 180:
            break
    return tuple(int(c) for c in colour)


def ring_width(w: int, h: int) -> int:
    """Stroke of a ``w`` x ``h`` ring: a quarter of the shorter side.

    The hole is then half the side in each direction (at least 4 px for
    the 8 px objects the default spec allows), so a ring never fills up
    into a disc.
    """
    return max(min(w, h) // 4, 1)


def _draw(draw: ImageDraw.ImageDraw, label: str,
          box: Tuple[int, int, int, int],
          colour: Tuple[int, int, int]) -> None:
    x1, y1, x2, y2 = box
    w, h = x2 - x1, y2 - y1
    if label == 'circle':
        draw.ellipse([x1, y1, x2 - 1, y2 - 1], fill=colour)
    elif label == 'square':
        draw.rectangle([x1, y1, x2 - 1, y2 - 1], fill=colour)
    elif label == 'triangle':
        draw.polygon([(x1 + w / 2, y1), (x2 - 1, y2 - 1), (x1, y2 - 1)],
                     fill=colour)
    elif label == 'cross':
        tw, th = max(round(w / 3), 1), max(round(h / 3), 1)
        draw.rectangle([x1 + tw, y1, x2 - 1 - tw, y2 - 1], fill=colour)
        draw.rectangle([x1, y1 + th, x2 - 1, y2 - 1 - th], fill=colour)
    elif label == 'ring':
        # an annulus: the hole (half the side) shows the background
        draw.ellipse([x1, y1, x2 - 1, y2 - 1], outline=colour,
                     width=ring_width(w, h))
    else:  # pragma: no cover - classes are fixed above
        raise ValueError(f'unknown shape {label!r}')


def _draw_clutter(rng: np.random.Generator, draw: ImageDraw.ImageDraw,
                  w: int, h: int, count: int) -> None:
    """``count`` thin random strokes: edges and colours that are no
    object. Draws nothing and draws no random numbers when ``count`` is 0,
    so specs without clutter give the same images as before it existed."""
    for _ in range(count):
        num_points = int(rng.integers(2, 5))
        start = rng.uniform((0, 0), (w, h))
        steps = rng.normal(0, min(w, h) / 8, size=(num_points - 1, 2))
        points = np.vstack([start, start + np.cumsum(steps, axis=0)])
        colour = tuple(int(c) for c in rng.integers(0, 256, size=3))
        draw.line([tuple(p) for p in points], fill=colour,
                  width=int(rng.integers(1, 3)))


def _iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """IoU between one box ``a`` (4,) and boxes ``b`` (N, 4)."""
    ix1 = np.maximum(a[0], b[:, 0])
    iy1 = np.maximum(a[1], b[:, 1])
    ix2 = np.minimum(a[2], b[:, 2])
    iy2 = np.minimum(a[3], b[:, 3])
    inter = np.clip(ix2 - ix1, 0, None) * np.clip(iy2 - iy1, 0, None)
    area = lambda x: (x[..., 2] - x[..., 0]) * (x[..., 3] - x[..., 1])  # noqa
    return inter / (area(a) + area(b) - inter)


def _make_image(rng: np.random.Generator,
                spec: SyntheticSpec) -> Tuple[Image.Image, List[Dict], bool]:
    """One scene: the image before its blur, its objects, and whether it
    is to be blurred (the blur draws no random numbers, so it can be
    applied later, away from the random stream)."""
    jitter = rng.uniform(0.9, 1.1, size=2)
    w, h = (int(round(spec.img_size * j)) for j in jitter)
    background = _background(rng, w, h)
    bg_mean = _channel_means(background)
    img = Image.fromarray(np.ascontiguousarray(background.transpose(1, 2, 0)))
    draw = ImageDraw.Draw(img)
    _draw_clutter(rng, draw, w, h, spec.clutter)

    u = rng.random()
    if u < spec.empty_frac:
        num = 0
    elif u < spec.empty_frac + spec.crowded_frac:
        num = int(rng.integers(8, 15))
    else:
        num = int(rng.integers(1, 5))
    max_side = int(min(w, h) * spec.max_obj_frac)
    objects: List[Dict] = []
    boxes = np.zeros((0, 4), dtype=np.float64)
    for _ in range(num * 10):
        if len(objects) == num:
            break
        # log-uniform sizes: as many small objects as large ones
        side = math.exp(rng.uniform(math.log(spec.min_obj),
                                    math.log(max_side)))
        aspect = math.exp(rng.uniform(-0.4, 0.4))
        bw = int(np.clip(side * aspect, spec.min_obj, max_side))
        bh = int(np.clip(side / aspect, spec.min_obj, max_side))
        x1 = int(rng.integers(0, w - bw + 1))
        y1 = int(rng.integers(0, h - bh + 1))
        box = np.array([x1, y1, x1 + bw, y1 + bh], dtype=np.float64)
        if len(boxes) and _iou(box, boxes).max() > 0.2:
            continue
        label = int(rng.integers(len(SYNTHETIC_CLASSES)))
        _draw(draw, SYNTHETIC_CLASSES[label], tuple(int(v) for v in box),
              _contrasting_colour(rng, bg_mean))
        tiny = min(bw, bh) < 12
        objects.append(
            dict(
                bbox=[int(v) for v in box],
                label=label,
                difficult=int(tiny and rng.random() < 0.5)))
        boxes = np.vstack([boxes, box])
    return img, objects, bool(rng.random() < 0.3)


def _voc_xml(filename: str, w: int, h: int, objects: List[Dict]) -> bytes:
    root = ET.Element('annotation')
    ET.SubElement(root, 'folder').text = 'VOC2007'
    ET.SubElement(root, 'filename').text = filename
    size = ET.SubElement(root, 'size')
    for tag, val in (('width', w), ('height', h), ('depth', 3)):
        ET.SubElement(size, tag).text = str(val)
    for obj in objects:
        node = ET.SubElement(root, 'object')
        ET.SubElement(node, 'name').text = SYNTHETIC_CLASSES[obj['label']]
        ET.SubElement(node, 'pose').text = 'Unspecified'
        ET.SubElement(node, 'truncated').text = '0'
        ET.SubElement(node, 'difficult').text = str(obj['difficult'])
        bnd = ET.SubElement(node, 'bndbox')
        # VOC is 1-based; MMDetection's VOCDataset subtracts 1 on reading.
        x1, y1, x2, y2 = obj['bbox']
        for tag, val in (('xmin', x1 + 1), ('ymin', y1 + 1), ('xmax', x2 + 1),
                         ('ymax', y2 + 1)):
            ET.SubElement(bnd, tag).text = str(val)
    return ET.tostring(root)


def _write_image(voc: str, name: str, img: Image.Image, blur: bool,
                 objects: List[Dict]) -> None:
    """Blur ``img`` if asked, then write it and its VOC XML under
    ``voc``."""
    if blur:
        img = img.filter(ImageFilter.GaussianBlur(radius=0.6))
    img.save(osp.join(voc, 'JPEGImages', name + '.jpg'), quality=95)
    with open(osp.join(voc, 'Annotations', name + '.xml'), 'wb') as f:
        f.write(_voc_xml(name + '.jpg', *img.size, objects))


def _add_to_coco(coco: dict, img_id: int, ann_id: int, file_name: str,
                 size: Tuple[int, int], objects: List[Dict]) -> int:
    """Append an image and its objects to ``coco``; returns the last
    annotation id."""
    w, h = size
    coco['images'].append(
        dict(id=img_id, file_name=file_name, width=w, height=h))
    for obj in objects:
        ann_id += 1
        x1, y1, x2, y2 = obj['bbox']
        coco['annotations'].append(
            dict(id=ann_id, image_id=img_id, category_id=obj['label'] + 1,
                 bbox=[x1, y1, x2 - x1, y2 - y1],
                 area=(x2 - x1) * (y2 - y1), iscrowd=obj['difficult']))
    return ann_id


def _write_split(voc: str, rng, spec: SyntheticSpec, count: int,
                 img_id: int, ann_id: int) -> Tuple[dict, int, int]:
    """Draw ``count`` images with ``rng``; write each with its VOC XML
    under ``voc``. Returns the split's COCO dict and the last image and
    annotation ids (the ids run on across splits).

    The random stream is sequential, so the scenes are drawn in order in
    this thread; blurring, encoding and writing them (which release the
    GIL) run in a second thread meanwhile, a few images behind."""
    categories = [
        dict(id=i + 1, name=name, supercategory='shape')
        for i, name in enumerate(SYNTHETIC_CLASSES)
    ]
    coco = dict(images=[], annotations=[], categories=categories)
    pending: Deque[Future] = deque()
    with ThreadPoolExecutor(max_workers=1) as writer:
        for _ in range(count):
            img_id += 1
            name = f'{img_id:06d}'
            img, objects, blur = _make_image(rng, spec)
            pending.append(
                writer.submit(_write_image, voc, name, img, blur, objects))
            if len(pending) > 4:  # bounds the images held in memory
                pending.popleft().result()
            ann_id = _add_to_coco(coco, img_id, ann_id, name + '.jpg',
                                  img.size, objects)
        for future in pending:
            future.result()  # raises what a write raised
    return coco, img_id, ann_id


def generate_synthetic_dataset(out_dir: str,
                               spec: SyntheticSpec = SyntheticSpec(),
                               overwrite: bool = False) -> Dict[str, str]:
    """Write the synthetic set under ``out_dir`` in VOC and COCO layouts.

    Args:
        out_dir (str): Root folder; ``VOCdevkit/`` and ``annotations/`` are
            created inside it.
        spec (SyntheticSpec): What to generate.
        overwrite (bool): Regenerate even if a complete set with the same
            spec is already there. Defaults to False.

    Returns:
        dict: Paths of the ``voc_root`` (the ``VOCdevkit`` folder),
        ``coco_trainval`` and ``coco_test`` json files.
    """
    spec.validate()
    voc = osp.join(out_dir, 'VOCdevkit', 'VOC2007')
    paths = dict(
        voc_root=osp.join(out_dir, 'VOCdevkit') + '/',
        coco_trainval=osp.join(out_dir, 'annotations',
                               'instances_trainval.json'),
        coco_test=osp.join(out_dir, 'annotations', 'instances_test.json'))
    stamp = osp.join(out_dir, 'SPEC.json')
    spec_json = json.dumps(
        dict(spec.__dict__, generator=GENERATOR_VERSION), sort_keys=True)
    if not overwrite and osp.isfile(stamp) and all(
            osp.isfile(p) for p in paths.values() if p.endswith('.json')):
        with open(stamp) as f:
            if f.read() == spec_json:
                return paths

    for sub in ('JPEGImages', 'Annotations', 'ImageSets/Main'):
        os.makedirs(osp.join(voc, sub), exist_ok=True)
    os.makedirs(osp.join(out_dir, 'annotations'), exist_ok=True)
    # One random stream per split: the test images do not depend on how
    # many training images are asked for (generator version 2).
    streams = dict(trainval=np.random.default_rng(spec.seed),
                   test=np.random.default_rng([spec.seed, 1]))
    img_id = ann_id = 0
    for split, count in (('trainval', spec.num_trainval),
                         ('test', spec.num_test)):
        coco, img_id, ann_id = _write_split(voc, streams[split], spec, count,
                                            img_id, ann_id)
        with open(osp.join(voc, 'ImageSets', 'Main', split + '.txt'),
                  'w') as f:
            f.write('\n'.join(im['file_name'][:-4]
                              for im in coco['images']) + '\n')
        with open(paths[f'coco_{split}'], 'w') as f:
            json.dump(coco, f)
    with open(stamp, 'w') as f:
        f.write(spec_json)
    return paths
