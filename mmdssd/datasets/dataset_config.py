"""A config for a user's own annotated photos: find the layout (VOC or
COCO), the splits and the class names, and write a short config over a
base config (``tools/misc/make_dataset_config.py``)."""
import glob
import json
import os.path as osp
from collections import Counter
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Sequence, Tuple
from xml.etree import ElementTree as ET

from mmengine.config import Config


class LayoutError(ValueError):
    """The folder is not a VOC or COCO layout mmdssd can read."""


@dataclass
class DatasetLayout:
    """Where a dataset's splits are, and the classes its annotations use.

    ``train`` and ``test`` are MMDetection dataset dicts without pipelines.
    """
    format: str
    data_root: str
    train: List[dict]
    test: dict
    counts: Counter = field(default_factory=Counter)

    @property
    def classes(self) -> Tuple[str, ...]:
        return tuple(sorted(self.counts))


def _voc_years(root: str) -> List[str]:
    """VOC20xx-style folders (with ``Annotations/`` and ``ImageSets/Main``)
    at ``root``, in ``root/VOCdevkit`` or ``root`` itself."""
    def is_year(path):
        return osp.isdir(osp.join(path, 'Annotations')) and osp.isdir(
            osp.join(path, 'ImageSets', 'Main'))
    if is_year(root):
        return [root]
    found = []
    for parent in (osp.join(root, 'VOCdevkit'), root):
        found += [p for p in sorted(glob.glob(osp.join(glob.escape(parent),
                                                       '*'))) if is_year(p)]
        if found:
            return found
    return found


def _first_list(year: str, names: Sequence[str]) -> Optional[str]:
    for name in names:
        path = osp.join(year, 'ImageSets', 'Main', f'{name}.txt')
        if osp.isfile(path):
            return path
    return None


def _voc_names(year: str, list_file: str) -> Counter:
    counts = Counter()
    with open(list_file) as f:
        for img_id in f.read().split():
            xml = osp.join(year, 'Annotations', f'{img_id}.xml')
            if osp.isfile(xml):  # a missing file is the check's to report
                try:
                    root = ET.parse(xml).getroot()
                except ET.ParseError:
                    continue
                counts.update((o.findtext('name') or '').strip()
                              for o in root.iter('object'))
    return counts


def _voc_dataset(devkit: str, year: str, list_file: str) -> dict:
    sub = osp.relpath(year, devkit) + '/'
    return dict(type='VOCDataset', data_root=devkit + '/',
                ann_file=osp.relpath(list_file, devkit),
                data_prefix=dict(sub_data_root=sub))


def find_voc_layout(root: str) -> DatasetLayout:
    """Read a ``VOCdevkit/VOC20xx`` (or a bare ``VOC20xx``) folder: every
    year's ``trainval`` (else ``train``) list trains, the first year with a
    ``test`` (else ``val``) list tests."""
    years = _voc_years(root)
    if not years:
        raise LayoutError(f'{root}: no VOC20xx folder with Annotations/ and '
                          'ImageSets/Main/ (in VOCdevkit/ or here)')
    devkit = osp.dirname(years[0])
    train, counts, test = [], Counter(), None
    for year in years:
        train_list = _first_list(year, ('trainval', 'train'))
        if train_list is not None:
            train.append(_voc_dataset(devkit, year, train_list))
            counts += _voc_names(year, train_list)
        test_list = _first_list(year, ('test', 'val'))
        if test is None and test_list is not None:
            test = _voc_dataset(devkit, year, test_list)
            counts += _voc_names(year, test_list)
    lists = 'ImageSets/Main/{trainval,train}.txt'
    if not train:
        raise LayoutError(f'{root}: no training list ({lists}) in '
                          f'{", ".join(years)}')
    if test is None:
        raise LayoutError(f'{root}: no test list (ImageSets/Main/'
                          f'{{test,val}}.txt) in {", ".join(years)}')
    return DatasetLayout('voc', root, train, test, counts)


def _coco_split(files: List[str], words: Sequence[str]) -> Optional[str]:
    for word in words:
        for path in files:
            if word in osp.basename(path):
                return path
    return None


def _coco_images(root: str, ann_file: str) -> str:
    """``instances_train2017.json`` -> ``train2017/``, else ``images/``."""
    stem = osp.splitext(osp.basename(ann_file))[0]
    for folder in (stem.split('_', 1)[-1], 'images'):
        if osp.isdir(osp.join(root, folder)):
            return folder + '/'
    raise LayoutError(f'{ann_file}: no image folder '
                      f'{stem.split("_", 1)[-1]}/ or images/ in {root}')


def _coco_dataset(root: str, ann_file: str) -> Tuple[dict, Counter]:
    with open(ann_file) as f:
        coco = json.load(f)
    names = {c['id']: c['name'] for c in coco.get('categories', [])}
    counts = Counter({name: 0 for name in names.values()})
    counts.update(names.get(a.get('category_id'), '')
                  for a in coco.get('annotations', []))
    return dict(type='CocoDataset', data_root=root + '/',
                ann_file=osp.relpath(ann_file, root),
                data_prefix=dict(img=_coco_images(root, ann_file))), counts


def find_coco_layout(root: str) -> DatasetLayout:
    """Read a COCO folder: ``annotations/*train*.json`` trains and
    ``*test*.json`` (else ``*val*.json``) tests, images in the folder
    named after the file (``train2017/``) or in ``images/``."""
    files = sorted(glob.glob(osp.join(glob.escape(root), 'annotations',
                                      '*.json')))
    train_file = _coco_split(files, ('train', ))
    test_file = _coco_split(files, ('test', 'val'))
    if train_file is None or test_file is None:
        raise LayoutError(f'{root}: needs annotations/*train*.json and '
                          f'annotations/*test*.json or *val*.json; found '
                          f'{[osp.basename(f) for f in files]}')
    train, counts = _coco_dataset(root, train_file)
    test, test_counts = _coco_dataset(root, test_file)
    return DatasetLayout('coco', root, [train], test, counts + test_counts)


def find_layout(root: str, fmt: Optional[str] = None) -> DatasetLayout:
    """The layout of ``root``: ``fmt`` ``'voc'`` or ``'coco'``, or found
    (VOC if it has a VOC20xx folder, else COCO)."""
    root = osp.abspath(root)
    if not osp.isdir(root):
        raise LayoutError(f'{root}: no such folder')
    if fmt is None:
        fmt = 'voc' if _voc_years(root) else 'coco'
    if fmt not in ('voc', 'coco'):
        raise LayoutError(f'--format {fmt!r}: voc or coco')
    return find_voc_layout(root) if fmt == 'voc' else find_coco_layout(root)


def _resized(pipeline: Sequence[dict], size: Optional[int]) -> list:
    """A copy of ``pipeline`` with every ``Resize`` to ``size x size``."""
    pipeline = [dict(t) for t in pipeline]
    if size is not None:
        for t in pipeline:
            if t.get('type') == 'Resize':
                t['scale'] = (size, size)
    return pipeline


def feature_strides(cfg: Config, size: int) -> List[float]:
    """``size / n`` for each of the model's ``n x n`` feature maps at a
    ``size x size`` input: the anchor strides that put the default boxes'
    centres half a cell in on every level at that size."""
    import torch
    from mmdet.registry import MODELS
    from mmdet.utils import register_all_modules
    from mmengine.registry import init_default_scope
    register_all_modules(init_default_scope=False)
    init_default_scope(cfg.get('default_scope', 'mmdet'))
    model = MODELS.build(cfg.model).eval()
    with torch.no_grad():
        feats = model.extract_feat(torch.zeros(1, 3, size, size))
    return [size / f.shape[-1] for f in feats]


def _test_pipeline(base: Config, size: Optional[int] = None) -> list:
    """The base's test pipeline, keeping the annotations for COCO AP:
    ``CocoMetric`` without an annotation file reads them from there."""
    pipeline = _resized(base.test_dataloader.dataset.pipeline, size)
    pack = pipeline[-1]
    keys = tuple(pack.get('meta_keys', ()))
    if 'instances' not in keys:
        pack['meta_keys'] = keys + ('instances', )
    return pipeline


def _src(value) -> str:
    """Python source for a config value, dicts written as ``dict(...)``."""
    if isinstance(value, dict):
        return 'dict(' + ', '.join(f'{k}={_src(v)}'
                                   for k, v in value.items()) + ')'
    if isinstance(value, list):
        return '[' + ', '.join(_src(v) for v in value) + ']'
    return repr(value)


def _plain(dataset: dict, pipeline: str, classes: str, **extra) -> str:
    fields = ''.join(f'        {k}={_src(v)},\n'
                     for k, v in {**dataset, **extra}.items())
    return (f'dict(\n        _delete_=True,\n{fields}'
            f'        metainfo=dict(classes={classes}),\n'
            f'        pipeline={pipeline})')


def _pipeline_src(pipeline: Sequence[dict]) -> str:
    return '[\n' + ',\n'.join(f'    {_src(t)}' for t in pipeline) + '\n]'


def _input_size_text(base: Config, size: int) -> str:
    """``input_size``, the resized training pipeline, and the model with
    ``num_classes`` and the anchors that fit its feature maps at that
    size."""
    strides = feature_strides(base, size)
    pipeline = _resized(base.train_pipeline, size)
    return f"""input_size = {size}
train_pipeline = {_pipeline_src(pipeline)}
model = dict(
    bbox_head=dict(
        num_classes=len(classes),
        anchor_generator=dict(input_size=input_size,
                              strides={_src(strides)})))
"""


def config_text(layout: DatasetLayout, base_path: str,
                classes: Optional[Sequence[str]] = None,
                input_size: Optional[int] = None) -> str:
    """The config: ``base_path`` with this data, its classes and
    ``num_classes``, VOC mAP and COCO AP on the test split; with
    ``input_size``, also resized to it (pipelines and default boxes)."""
    base = Config.fromfile(base_path)
    classes = tuple(classes or layout.classes)
    train_pipeline = ('train_pipeline' if input_size else
                      '{{_base_.train_pipeline}}')
    if len(layout.train) == 1:
        train = _plain(layout.train[0], train_pipeline,
                       'classes', filter_cfg=dict(filter_empty_gt=True))
    else:
        parts = ',\n    '.join(
            _plain(d, train_pipeline, 'classes',
                   filter_cfg=dict(filter_empty_gt=True))
            for d in layout.train)
        train = f"dict(_delete_=True, type='ConcatDataset', datasets=[\n" \
            f'    {parts}])'
    model = (_input_size_text(base, input_size) if input_size else
             'model = dict(bbox_head=dict(num_classes=len(classes)))\n')
    coco_ann = (osp.join(layout.test['data_root'], layout.test['ann_file'])
                if layout.format == 'coco' else None)
    return f"""# Written by tools/misc/make_dataset_config.py for
# {layout.data_root} ({layout.format} layout)
_base_ = {base_path!r}
classes = {classes!r}
{model}test_pipeline = {_pipeline_src(_test_pipeline(base, input_size))}
train_dataloader = dict(
    dataset={train})
val_dataloader = dict(
    dataset={_plain(layout.test, 'test_pipeline', 'classes',
                    test_mode=True)})
test_dataloader = val_dataloader
# VOC mAP (11-point, as the paper) and COCO AP with small/medium/large;
# without an annotation file CocoMetric reads the test annotations
val_evaluator = [
    dict(type='VOCMetric', metric='mAP', eval_mode='11points'),
    dict(type='CocoMetric', metric='bbox', ann_file={coco_ann!r})
]
test_evaluator = val_evaluator
"""


def class_counts_text(counts: Dict[str, int]) -> str:
    return ', '.join(f'{name} ({counts[name]})' for name in sorted(counts))
