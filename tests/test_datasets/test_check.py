"""tools/misc/check_dataset.py: each kind of bad data, named by file."""
import os.path as osp
import re
import subprocess
import sys

import pytest
from PIL import Image

from mmdssd.datasets import (SYNTHETIC_CLASSES, SyntheticSpec,
                             generate_synthetic_dataset)
from mmdssd.datasets.check import check_coco, check_voc

from ..conftest import ROOT, TINY, TOOLS


@pytest.fixture
def broken(tmp_path):
    """A 10-image synthetic set with one defect per image (ids 1-9)."""
    generate_synthetic_dataset(str(tmp_path), SyntheticSpec(
        num_trainval=10, num_test=2, seed=5, crowded_frac=0, empty_frac=0))
    voc = tmp_path / 'VOCdevkit' / 'VOC2007'
    img = lambda i: voc / 'JPEGImages' / f'{i:06d}.jpg'  # noqa: E731
    xml = lambda i: voc / 'Annotations' / f'{i:06d}.xml'  # noqa: E731
    data = img(1).read_bytes()
    img(1).write_bytes(data[:len(data) // 2])  # truncated JPEG
    img(2).unlink()  # missing image
    Image.open(img(3)).convert('L').save(img(3))  # grayscale
    Image.open(img(4)).convert('CMYK').save(img(4))  # CMYK JPEG

    def edit(i, old, new, count=1):
        text = xml(i).read_text()
        assert re.search(old, text), (i, old)
        xml(i).write_text(re.sub(old, new, text, count=count))

    edit(5, r'<xmax>\d+</xmax>', '<xmax>1</xmax>')  # xmax <= xmin
    edit(6, r'<ymax>\d+</ymax>', '<ymax>5000</ymax>')  # outside the image
    edit(7, r'<name>\w+</name>', '<name>hexagon</name>')  # unknown class
    edit(8, r'<size>.*</size>', '')  # no <size>
    edit(9, r'<width>\d+</width>', '<width>7</width>')  # wrong size
    edit(10, r'<object>.*</object>', '')  # no objects
    return tmp_path


def test_each_defect_is_named(broken):
    problems = check_voc(str(broken / 'VOCdevkit') + '/',
                         'VOC2007/ImageSets/Main/trainval.txt', 'VOC2007/',
                         SYNTHETIC_CLASSES)
    text = '\n'.join(map(str, problems))
    expected = [
        ('error', '000001.jpg', 'cannot be decoded'),
        ('error', '000002.jpg', 'image file is missing'),
        ('note', '000003.jpg', 'grayscale'),
        ('note', '000004.jpg', 'CMYK image'),
        ('error', '000005.xml', r'object 0 \(\w+\) box .*xmax <= xmin'),
        ('error', '000006.xml', r'object 0 \(\w+\) box .*outside the'),
        ('error', '000007.xml', r"object 0 \('hexagon'\): unknown class"),
        ('note', '000008.xml', 'no <size>'),
        ('error', '000009.xml', r'<size> says 7x\d+ but the image is'),
        ('note', '000010.xml', 'no objects'),
    ]
    for level, file, what in expected:
        assert re.search(f'{level}: .*{file}: .*{what}', text), (file, text)
    # nothing else is reported: the other images are clean
    files = {osp.basename(p.file) for p in problems}
    assert files == {f'{i:06d}.{ext}' for i, ext in (
        (1, 'jpg'), (2, 'jpg'), (3, 'jpg'), (4, 'jpg'), (5, 'xml'),
        (6, 'xml'), (7, 'xml'), (8, 'xml'), (9, 'xml'), (10, 'xml'))}


def test_clean_coco_has_no_error_and_bad_json_is_named(broken, tmp_path):
    ann = broken / 'annotations' / 'instances_test.json'
    prefix = str(broken / 'VOCdevkit' / 'VOC2007' / 'JPEGImages')
    assert not [p for p in check_coco(str(ann), prefix, SYNTHETIC_CLASSES)
                if p.level == 'error']
    bad = tmp_path / 'bad.json'
    bad.write_text('{"images": [')
    (problem, ) = check_coco(str(bad), prefix, SYNTHETIC_CLASSES)
    assert problem.level == 'error' and 'not valid JSON' in problem.what


def test_tool_exit_status(broken):
    def tool(root):
        return subprocess.run(
            [sys.executable, osp.join(TOOLS, 'misc', 'check_dataset.py'),
             TINY, '--cfg-options',
             f'train_dataloader.dataset.data_root={root}/VOCdevkit/',
             f'val_dataloader.dataset.data_root={root}/',
             f'test_dataloader.dataset.data_root={root}/'],
            capture_output=True, text=True, timeout=300,
            env={'PYTHONPATH': ROOT, 'PATH': '/usr/bin:/bin'})
    proc = tool(broken)
    assert proc.returncode == 1, proc.stderr[-2000:]
    assert '000005.xml' in proc.stdout and '6 error(s)' in proc.stdout
