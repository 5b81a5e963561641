import json
import os.path as osp
from collections import Counter
from typing import Iterator, List, Tuple
from xml.etree import ElementTree as ET

from mmdet.registry import HOOKS
from mmengine.fileio import list_from_file
from mmengine.hooks import Hook

# (file, object, name): one annotated object whose class is not in classes
Unknown = Tuple[str, str, str]


class UnknownClassError(ValueError):
    """Annotations name classes the config does not have."""


def _leaf_datasets(dataset) -> Iterator:
    """The datasets inside MMEngine/MMDetection wrappers (Concat, Repeat,
    ClassBalanced, MultiImageMix)."""
    if hasattr(dataset, 'datasets'):
        for inner in dataset.datasets:
            yield from _leaf_datasets(inner)
    elif hasattr(dataset, 'dataset'):
        yield from _leaf_datasets(dataset.dataset)
    else:
        yield dataset


def _unknown_in_xml(dataset, classes) -> List[Unknown]:
    found = []
    for img_id in list_from_file(dataset.ann_file):
        xml = osp.join(dataset.sub_data_root, dataset.ann_subdir,
                       f'{img_id}.xml')
        if not osp.isfile(xml):
            continue  # MMDetection's own error names a missing file
        for i, obj in enumerate(ET.parse(xml).getroot().iter('object')):
            name = (obj.findtext('name') or '').strip()
            if name not in classes:
                found.append((xml, f'object {i}', name))
    return found


def _unknown_in_coco(dataset, classes) -> List[Unknown]:
    with open(dataset.ann_file) as f:
        coco = json.load(f)
    names = {c['id']: c['name'] for c in coco.get('categories', [])}
    return [(dataset.ann_file, f'annotation id {ann.get("id")}',
             names.get(ann.get('category_id'), str(ann.get('category_id'))))
            for ann in coco.get('annotations', [])
            if names.get(ann.get('category_id')) not in classes]


def find_unknown_classes(dataset) -> List[Unknown]:
    """Every annotated object of a (wrapped) VOC-style or COCO-style
    dataset whose class name is not among the dataset's classes."""
    from mmdet.datasets import CocoDataset, XMLDataset
    found = []
    for leaf in _leaf_datasets(dataset):
        classes = set(leaf.metainfo.get('classes') or ())
        if isinstance(leaf, XMLDataset):
            found += _unknown_in_xml(leaf, classes)
        elif isinstance(leaf, CocoDataset):
            found += _unknown_in_coco(leaf, classes)
    return found


@HOOKS.register_module()
class ClassNameCheckHook(Hook):
    """Stop training before the first iteration when an annotation names a
    class that is not in the config's ``classes``.

    MMDetection's ``VOCDataset`` and ``CocoDataset`` skip such objects
    without a word, so a misspelt or missing class name trains a detector
    that never sees those objects. This hook reads the training and
    validation annotations again and raises :class:`UnknownClassError`
    naming each file, object and name.

    Args:
        allow_unknown (bool): Train anyway, ignoring those objects, and log
            how many were ignored per name. Defaults to False.
        max_listed (int): Objects named in the error. Defaults to 20.
    """

    priority = 'VERY_HIGH'

    def __init__(self, allow_unknown: bool = False,
                 max_listed: int = 20) -> None:
        self.allow_unknown = allow_unknown
        self.max_listed = max_listed

    def before_train(self, runner) -> None:
        found = find_unknown_classes(runner.train_dataloader.dataset)
        if runner.val_loop is not None:
            found += find_unknown_classes(runner.val_dataloader.dataset)
        if not found:
            return
        counts = ', '.join(f'{n!r}: {c}'
                           for n, c in Counter(n for *_, n in found).items())
        if self.allow_unknown:
            runner.logger.warning(
                f'ignoring {len(found)} annotated objects whose class is not '
                f'in classes ({counts}): allow_unknown=True')
            return
        listed = '\n'.join(f'  {file}: {obj}: {name!r}'
                           for file, obj, name in found[:self.max_listed])
        more = len(found) - self.max_listed
        if more > 0:
            listed += f'\n  ... and {more} more'
        raise UnknownClassError(
            f'{len(found)} annotated objects name a class that is not in '
            f'the config\'s classes ({counts}); MMDetection would drop them '
            f'silently:\n{listed}\nAdd the names to classes (and '
            'num_classes), fix the annotations, or set '
            'default_hooks.class_names.allow_unknown=True to train without '
            'those objects.')
