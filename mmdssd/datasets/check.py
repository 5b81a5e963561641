"""Validate a config's datasets before training: every problem, each named
by file and object, in one pass (``tools/misc/check_dataset.py``)."""
import json
import os.path as osp
from dataclasses import dataclass
from typing import Iterable, List, Optional, Sequence, Tuple
from xml.etree import ElementTree as ET

from PIL import Image


@dataclass
class Problem:
    """One finding. ``level`` is ``'error'`` (training would be wrong or
    crash) or ``'note'`` (handled, but worth knowing)."""
    level: str
    file: str
    what: str

    def __str__(self) -> str:
        return f'{self.level}: {self.file}: {self.what}'


def check_image(path: str) -> Tuple[Optional[Tuple[int, int]],
                                    List[Problem]]:
    """Open and fully decode an image; returns its (width, height)."""
    if not osp.isfile(path):
        return None, [Problem('error', path, 'image file is missing')]
    problems = []
    try:
        with Image.open(path) as img:
            size, mode = img.size, img.mode
            img.load()  # decodes every byte: catches truncated files
    except Exception as err:  # PIL raises several types
        return None, [Problem('error', path,
                              f'image cannot be decoded ({err})')]
    if mode not in ('RGB', 'L', 'RGBA', 'P'):
        problems.append(Problem(
            'note', path, f'{mode} image: converted to 3-channel colour '
            'when loaded (check its colours if they matter)'))
    elif mode == 'L':
        problems.append(Problem('note', path, 'grayscale image: loaded as '
                                '3 identical channels'))
    return size, problems


def _box_problems(file: str, index: int, name: str, box: Sequence[float],
                  size: Optional[Tuple[int, int]]) -> List[Problem]:
    x1, y1, x2, y2 = box
    obj = f'object {index} ({name}) box {[round(v, 1) for v in box]}'
    if not (x2 > x1 and y2 > y1):
        return [Problem('error', file, f'{obj}: xmax <= xmin or ymax <= '
                        'ymin')]
    if size is not None:
        w, h = size
        if x1 < 0 or y1 < 0 or x2 > w or y2 > h:
            return [Problem('error', file, f'{obj}: outside the {w}x{h} '
                            'image')]
    return []


def check_voc(data_root: str, ann_file: str, sub_data_root: str,
              classes: Sequence[str]) -> List[Problem]:
    """A VOC-layout dataset as MMDetection's ``VOCDataset`` reads it."""
    problems: List[Problem] = []
    list_file = osp.join(data_root, ann_file)
    if not osp.isfile(list_file):
        return [Problem('error', list_file, 'image list is missing')]
    with open(list_file) as f:
        ids = f.read().split()
    if not ids:
        problems.append(Problem('error', list_file, 'image list is empty'))
    root = osp.join(data_root, sub_data_root)
    for img_id in ids:
        xml = osp.join(root, 'Annotations', f'{img_id}.xml')
        image = osp.join(root, 'JPEGImages', f'{img_id}.jpg')
        size, found = check_image(image)
        problems += found
        if not osp.isfile(xml):
            problems.append(Problem('error', xml, 'annotation is missing'))
            continue
        try:
            tree = ET.parse(xml).getroot()
        except ET.ParseError as err:
            problems.append(Problem('error', xml, f'not valid XML ({err})'))
            continue
        problems += _voc_size_problems(xml, tree, size)
        problems += _voc_object_problems(xml, tree, classes, size)
    return problems


def _voc_size_problems(xml: str, tree, size) -> List[Problem]:
    """The annotation's ``<size>`` against the image's."""
    node = tree.find('size')
    if node is None:
        return [Problem('note', xml, 'no <size>: MMDetection reads the '
                        'image to find it')]
    try:
        declared = (int(node.find('width').text),
                    int(node.find('height').text))
    except (AttributeError, TypeError, ValueError):
        return [Problem('error', xml, '<size> has no valid width/height')]
    if size is not None and declared != size:
        return [Problem('error', xml, f'<size> says {declared[0]}x'
                        f'{declared[1]} but the image is {size[0]}x'
                        f'{size[1]}')]
    return []


def _voc_object_problems(xml: str, tree, classes: Sequence[str],
                         size) -> List[Problem]:
    """Each ``<object>``: a known class and a valid box."""
    problems: List[Problem] = []
    objects = tree.findall('object')
    if not objects:
        problems.append(Problem('note', xml, 'no objects (dropped when '
                                'filter_empty_gt is on)'))
    for i, obj in enumerate(objects):
        name = (obj.findtext('name') or '').strip()
        if name not in classes:
            problems.append(Problem(
                'error', xml, f'object {i} ({name!r}): unknown class '
                '(MMDetection skips it silently); classes: '
                f'{", ".join(classes)}'))
            continue
        bnd = obj.find('bndbox')
        try:
            # VOC is 1-based; VOCDataset subtracts 1 from every value
            box = [float(bnd.findtext(k)) - 1
                   for k in ('xmin', 'ymin', 'xmax', 'ymax')]
        except (AttributeError, TypeError, ValueError):
            problems.append(Problem('error', xml, f'object {i} ({name}) '
                                    'has no valid <bndbox>'))
            continue
        problems += _box_problems(xml, i, name, box, size)
    return problems


def check_coco(ann_file: str, img_prefix: str,
               classes: Sequence[str]) -> List[Problem]:
    """A COCO-layout dataset as MMDetection's ``CocoDataset`` reads it."""
    if not osp.isfile(ann_file):
        return [Problem('error', ann_file, 'annotation file is missing')]
    try:
        with open(ann_file) as f:
            coco = json.load(f)
    except ValueError as err:
        return [Problem('error', ann_file, f'not valid JSON ({err})')]
    problems: List[Problem] = []
    for key in ('images', 'annotations', 'categories'):
        if key not in coco:
            problems.append(Problem('error', ann_file, f'no {key!r} list'))
    if problems:
        return problems
    if not coco['images']:
        problems.append(Problem('error', ann_file, 'no images'))
    names = {c['id']: c['name'] for c in coco['categories']}
    unknown = sorted(set(classes) - set(names.values()))
    if unknown:
        problems.append(Problem('error', ann_file, 'classes not among the '
                                f'categories: {", ".join(unknown)}'))
    sizes = {}
    for img in coco['images']:
        path = osp.join(img_prefix, img['file_name'])
        size, found = check_image(path)
        problems += found
        sizes[img['id']] = size
        declared = (img.get('width'), img.get('height'))
        if size is not None and declared != size:
            problems.append(Problem(
                'error', path, f'{ann_file} says {declared[0]}x{declared[1]}'
                f' but the image is {size[0]}x{size[1]}'))
    for i, ann in enumerate(coco['annotations']):
        where = f'{ann_file} (annotation id {ann.get("id", i)})'
        if ann.get('image_id') not in sizes:
            problems.append(Problem('error', where, 'image_id '
                                    f'{ann.get("image_id")} is not listed'))
            continue
        name = names.get(ann.get('category_id'))
        if name is None:
            problems.append(Problem('error', where, 'unknown category_id '
                                    f'{ann.get("category_id")}'))
            continue
        x, y, w, h = ann['bbox']
        problems += _box_problems(where, i, name, [x, y, x + w, y + h],
                                  sizes[ann['image_id']])
    return problems


def _datasets(cfg, splits: Iterable[str]):
    for split in splits:
        loader = cfg.get(f'{split}_dataloader')
        if not loader:
            continue
        stack = [loader.dataset]
        while stack:  # ConcatDataset / RepeatDataset wrappers
            ds = stack.pop(0)
            if 'datasets' in ds:
                stack += list(ds.datasets)
            elif 'dataset' in ds:
                stack.append(ds.dataset)
            else:
                yield split, ds


def check_config_datasets(cfg, splits: Sequence[str] = ('train', 'val',
                                                        'test')
                          ) -> List[Problem]:
    """Every problem of every dataset a config trains or tests on.

    Args:
        cfg (Config): A full config.
        splits (Sequence[str]): Which dataloaders to check.

    Returns:
        list[Problem]: Errors and notes, in file order.
    """
    problems, seen = [], set()
    for split, ds in _datasets(cfg, splits):
        classes = tuple((ds.get('metainfo') or {}).get('classes') or ())
        root = ds.get('data_root', '') or ''
        if ds.type == 'VOCDataset':
            key = (root, ds.ann_file)
            if key in seen:
                continue
            seen.add(key)
            if not classes:
                from mmdet.datasets import VOCDataset
                classes = VOCDataset.METAINFO['classes']
            problems += check_voc(root, ds.ann_file,
                                  ds.data_prefix.get('sub_data_root', ''),
                                  classes)
        elif ds.type == 'CocoDataset':
            ann = osp.join(root, ds.ann_file)
            if ann in seen:
                continue
            seen.add(ann)
            if not classes:
                from mmdet.datasets import CocoDataset
                classes = CocoDataset.METAINFO['classes']
            problems += check_coco(ann, osp.join(
                root, ds.data_prefix.get('img', '')), classes)
        else:
            problems.append(Problem(
                'note', f'{split}_dataloader', f'{ds.type} is not checked '
                '(VOCDataset and CocoDataset are)'))
    return problems


def config_classes(cfg, split: str = 'test') -> Optional[Tuple[str, ...]]:
    """The class names a config's ``split`` dataset uses: its
    ``metainfo.classes``, else its dataset type's default (None when
    neither is known)."""
    from mmdet.registry import DATASETS
    for _, ds in _datasets(cfg, [split]):
        classes = (ds.get('metainfo') or {}).get('classes')
        if classes:
            return tuple(classes)
        dataset_type = DATASETS.get(ds.get('type', ''))
        meta = getattr(dataset_type, 'METAINFO', None) or {}
        return tuple(meta['classes']) if 'classes' in meta else None
    return None
