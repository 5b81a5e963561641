import os.path as osp

import pytest

from mmdssd.utils.config_paths import config_without_download

from ..conftest import PYTHON, TINY, TOOLS, run


@pytest.fixture(scope='session')
def exported_tiny(trained_tiny, data_cwd, tmp_path_factory):
    """The trained tiny DSSD exported through the tool, with --verify."""
    pytest.importorskip('onnxruntime')
    out = tmp_path_factory.mktemp('onnx') / 'tiny.onnx'
    log = run([
        PYTHON,
        osp.join(TOOLS, 'deployment', 'export_onnx.py'), TINY,
        trained_tiny / 'epoch_2.pth', out, '--verify', '8'
    ], cwd=data_cwd)
    assert 'equal: 8 images' in log, log[-3000:]
    return out


def tiny_cfg(data_cwd):
    """The tiny config with its test data under ``data_cwd``."""
    cfg = config_without_download(TINY)
    root = osp.join(str(data_cwd), 'data', 'synthetic') + '/'
    cfg.test_dataloader.dataset.data_root = root
    cfg.test_dataloader.dataset.ann_file = 'annotations/instances_test.json'
    return cfg


def random_images(num: int = 3):
    """A batch as the graph takes it (N, 3, 256, 256), BGR 0-255 float32."""
    import numpy as np
    rng = np.random.default_rng(0)
    return (rng.random((num, 3, 256, 256)) * 255).astype(np.float32)


def pytorch_reference(trained_tiny, images):
    """The trained tiny model's detections and candidates on a batch as
    the graph takes it, for ``compare_results``."""
    from mmdet.apis import init_detector

    from mmdssd.deployment.verify import reference_detections
    model = init_detector(TINY, str(trained_tiny / 'epoch_2.pth'),
                          device='cpu')
    return reference_detections(model, list(images.transpose(0, 2, 3, 1)))
