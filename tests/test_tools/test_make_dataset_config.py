"""From a folder of annotated photos to a trained, evaluated DSSD: the
config tool on twelve real photos (tests/data/facemask, CC BY 4.0)."""
import os.path as osp
import re
import shutil

import pytest
from mmengine.config import Config

from ..conftest import PYTHON, ROOT, TOOLS, run, run_status

# One worker writes the photos' config (a module fixture) for all of them.
pytestmark = pytest.mark.xdist_group('facemask_config')

FACEMASK = osp.join(ROOT, 'tests', 'data', 'facemask')
TOOL = osp.join(TOOLS, 'misc', 'make_dataset_config.py')
CLASSES = ('mask_weared_incorrect', 'with_mask', 'without_mask')
SHORT = ['--cfg-options', 'train_cfg.max_epochs=1', 'train_cfg.val_interval=1',
         'default_hooks.checkpoint.interval=1']


@pytest.fixture(scope='module')
def photos(tmp_path_factory):
    root = tmp_path_factory.mktemp('photos') / 'facemask'
    shutil.copytree(FACEMASK, root)
    return root


@pytest.fixture(scope='module')
def written(photos, tmp_path_factory):
    out = tmp_path_factory.mktemp('cfg') / 'facemask_dssd.py'
    log = run([PYTHON, TOOL, photos, '--out', out])
    return out, log


def _rename_an_object(photos, tmp_path, name='withmask'):
    bad = tmp_path / 'bad'
    shutil.copytree(photos, bad)
    xml = bad / 'VOCdevkit' / 'VOC2007' / 'Annotations' / 'maksssksksss44.xml'
    xml.write_text(xml.read_text().replace('<name>without_mask</name>',
                                           f'<name>{name}</name>', 1))
    return bad, xml


def test_tool_finds_classes_checks_and_reports_boxes(written):
    out, log = written
    assert re.search(r'voc layout; classes found in the annotations: '
                     r'mask_weared_incorrect \(\d+\), with_mask \(\d+\), '
                     r'without_mask \(\d+\)', log), log
    assert 'training boxes in 9 images' in log  # the anchor-ratio report
    assert 'model = dict(bbox_head=dict(anchor_generator=dict(ratios=' in log
    cfg = Config.fromfile(str(out))
    assert cfg.classes == CLASSES and cfg.model.bbox_head.num_classes == 3
    assert cfg.train_dataloader.dataset.metainfo.classes == CLASSES
    assert cfg.test_dataloader.dataset.ann_file.endswith('Main/test.txt')
    assert [m.type for m in cfg.val_evaluator] == ['VOCMetric', 'CocoMetric']


def test_tool_writes_a_config_for_another_input_size(photos, tmp_path):
    out = tmp_path / 'facemask_320.py'
    log = run([PYTHON, TOOL, photos, '--out', out, '--input-size', '320'])
    cfg = Config.fromfile(str(out))
    assert cfg.input_size == 320 and cfg.model.bbox_head.num_classes == 3
    assert cfg.model.bbox_head.anchor_generator.strides[-1] == 320
    assert 'training boxes in 9 images' in log  # reported at 320


def test_written_config_trains_on_a_last_batch_of_one_and_tests(
        written, tmp_path):
    """9 training images at batch 8: the last batch holds one image, whose
    1x1 levels give BN one value per channel."""
    out, _ = written
    log = run([PYTHON, osp.join(TOOLS, 'train.py'), out, '--work-dir',
               tmp_path] + SHORT)
    assert 'Epoch(train) [1][2/2]' in log, log[-3000:]
    assert re.search(r'coco/bbox_mAP_s: [-0-9.]+', log)
    log = run([PYTHON, osp.join(TOOLS, 'test.py'), out,
               tmp_path / 'epoch_1.pth', '--work-dir', tmp_path / 'test'])
    assert re.search(r'pascal_voc/mAP: [0-9.]+', log)
    assert re.search(r'coco/bbox_mAP_s: [-0-9.]+', log)


def test_tool_stops_on_errors_and_writes_nothing(photos, tmp_path):
    bad, xml = _rename_an_object(photos, tmp_path)
    out = tmp_path / 'x.py'
    proc = run_status([PYTHON, TOOL, bad, '--out', out, '--classes',
                       *CLASSES])
    assert proc.returncode == 1
    assert re.search(re.escape(f'error: {xml}: object ') +
                     r"\d+ \('withmask'\): unknown class", proc.stdout), \
        proc.stdout[-2000:]
    assert not out.exists()
    for folder, message in (('none', 'no such folder'),
                            ('empty', 'no VOC20xx folder')):
        (tmp_path / 'empty').mkdir(exist_ok=True)
        proc = run_status([PYTHON, TOOL, tmp_path / folder, '--out', out,
                           '--format', 'voc'])
        assert proc.returncode == 1 and message in proc.stdout, proc.stdout
    assert not out.exists()


def test_unknown_class_stops_training_before_the_first_iteration(
        written, photos, tmp_path):
    out, _ = written
    bad, xml = _rename_an_object(photos, tmp_path)
    cfg = tmp_path / 'bad_cfg.py'
    cfg.write_text(out.read_text().replace(str(photos), str(bad)))
    cmd = [PYTHON, osp.join(TOOLS, 'train.py'), cfg, '--work-dir',
           tmp_path / 'w'] + SHORT
    proc = run_status(cmd)
    assert proc.returncode != 0
    assert 'UnknownClassError: 1 annotated objects name a class' in \
        proc.stderr, proc.stderr[-3000:]
    assert re.search(re.escape(f'{xml}: object ') + r"\d+: 'withmask'",
                     proc.stderr)
    assert 'Epoch(train)' not in proc.stdout + proc.stderr
    log = run(cmd + ['default_hooks.class_names.allow_unknown=True'])
    assert ("ignoring 1 annotated objects whose class is not in classes "
            "('withmask': 1)") in log
