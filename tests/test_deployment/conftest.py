import os.path as osp

import pytest

from mmdssd.utils.config_paths import config_without_download

from ..conftest import PYTHON, TINY, TOOLS, run


@pytest.fixture(scope='session')
def exported_tiny(trained_tiny, tmp_path_factory):
    """The trained tiny DSSD exported through the tool, with --verify."""
    pytest.importorskip('onnxruntime')
    out = tmp_path_factory.mktemp('onnx') / 'tiny.onnx'
    log = run([
        PYTHON,
        osp.join(TOOLS, 'deployment', 'export_onnx.py'), TINY,
        trained_tiny / 'epoch_2.pth', out, '--verify', '8'
    ], cwd=trained_tiny.parent.parent)
    assert 'equal: 8 images' in log, log[-3000:]
    return out


def tiny_cfg(data_cwd):
    """The tiny config with its test data under ``data_cwd``."""
    cfg = config_without_download(TINY)
    root = osp.join(str(data_cwd), 'data', 'synthetic') + '/'
    cfg.test_dataloader.dataset.data_root = root
    cfg.test_dataloader.dataset.ann_file = 'annotations/instances_test.json'
    return cfg
