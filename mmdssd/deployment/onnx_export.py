"""Export a trained mmdssd / MMDetection SSD model to ONNX.

Our own exporter rather than MMDeploy's, which pins an old protobuf, fails
on torch 2.13's default exporter and approximates MMDetection's
post-processing; this one exports that post-processing exactly.
"""
import json
import os
import os.path as osp
from typing import Optional, Tuple, Union

import torch
from mmengine.config import Config

from .end_to_end import EndToEndDetector, UnsupportedExportError

#: ONNX opset of the exported graphs.
OPSET = 17
#: Operator domains ONNX Runtime's CPU provider runs.
STANDARD_DOMAINS = ('', 'ai.onnx')


def input_size_of(cfg: Config) -> Tuple[int, int]:
    """``(height, width)`` of the network input: the test pipeline's
    fixed-size ``Resize``. Refuses a keep-ratio resize (the graph has one
    input size; SSD configs resize without keeping the ratio)."""
    try:
        pipeline = cfg.test_dataloader.dataset.pipeline
    except AttributeError as err:
        raise UnsupportedExportError(
            'test_dataloader.dataset.pipeline: not found in the config; the '
            'input size is read from its Resize') from err
    resizes = [t for t in pipeline if t.get('type', '').endswith('Resize')]
    if len(resizes) != 1:
        raise UnsupportedExportError(
            'test_dataloader.dataset.pipeline: expected one Resize, found '
            f'{len(resizes)}; the input size is read from it')
    resize = resizes[0]
    if resize.get('keep_ratio', False):
        raise UnsupportedExportError(
            'test_dataloader.dataset.pipeline Resize.keep_ratio=True: the '
            'exported graph has one fixed input size; SSD-style configs '
            'resize with keep_ratio=False')
    scale = resize.get('scale')
    if isinstance(scale, int):
        scale = (scale, scale)
    if not scale or len(scale) != 2:
        raise UnsupportedExportError(
            f'test_dataloader.dataset.pipeline Resize.scale={scale!r}: '
            'need (width, height)')
    return int(scale[1]), int(scale[0])


def as_config(config: Union[str, Config]) -> Config:
    """A config file, ``mmdet::...`` name or Config, as a Config whose
    backbone downloads nothing (the weights come from a checkpoint)."""
    from mmdssd.utils.config_paths import config_without_download
    if not isinstance(config, Config):
        return config_without_download(config)
    if config.model.backbone.get('init_cfg'):
        config.model.backbone.init_cfg = None
    return config


def build_detector(config: Union[str, Config],
                   checkpoint: Optional[str] = None,
                   fold_bn: bool = True) -> Tuple[torch.nn.Module, Config]:
    """Build ``config`` (a path, ``mmdet::...`` or a Config), load
    ``checkpoint`` (random weights if None), eval mode, BN folded."""
    from mmdet.registry import MODELS
    from mmdet.utils import register_all_modules
    from mmengine.runner import load_checkpoint

    from mmdssd.models.utils import fuse_bn
    register_all_modules()
    cfg = as_config(config)
    model = MODELS.build(cfg.model)
    if checkpoint is not None:
        if not osp.isfile(checkpoint):
            raise FileNotFoundError(f'checkpoint not found: {checkpoint}')
        ckpt = load_checkpoint(model, checkpoint, map_location='cpu')
        classes = ckpt.get('meta', {}).get('dataset_meta', {}).get('classes')
        if classes is not None:
            model.dataset_meta = dict(classes=tuple(classes))
    else:
        model.init_weights()
    model.eval()
    if fold_bn:
        fuse_bn(model)
    return model, cfg


def _classes(model, cfg: Config) -> list:
    meta = getattr(model, 'dataset_meta', None) or {}
    classes = meta.get('classes')
    if classes is None:
        classes = cfg.get('test_dataloader', {}).get('dataset', {}).get(
            'metainfo', {}).get('classes')
    return list(classes) if classes is not None else []


def anchor_generator_of(cfg: Config) -> Optional[dict]:
    """The head's default-box settings as plain JSON values (None for a
    head without an anchor generator)."""
    head = cfg.model.get('bbox_head') or {}
    if 'anchor_generator' not in head:
        return None
    return json.loads(json.dumps(head.anchor_generator.to_dict()))


def export_onnx(config: Union[str, Config],
                checkpoint: Optional[str],
                out_file: str,
                fold_bn: bool = True,
                opset: int = OPSET,
                overwrite: bool = False) -> str:
    """Export the detector of ``config`` + ``checkpoint`` end to end.

    The graph takes ``images`` ``(batch, 3, H, W)`` float32 (resized, BGR,
    0-255; ``batch`` dynamic) and returns ``dets`` ``(batch, M, 5)`` and
    ``labels`` ``(batch, M)`` (see :class:`EndToEndDetector`). The model's
    config, input size and classes go into the ONNX metadata.

    Args:
        config: Config file, ``mmdet::...`` name or Config.
        checkpoint: Trained weights; None exports random weights (for
            benchmarks).
        out_file: Where the ``.onnx`` goes. An existing file is kept
            unless ``overwrite``.
        fold_bn: Fold BatchNorm into the convolutions first.
        opset: ONNX opset.
        overwrite: Replace an existing ``out_file``.

    Returns:
        str: ``out_file``.

    Raises:
        UnsupportedExportError: for a config or an operation the export
            cannot represent, naming it.
    """
    import onnx
    if osp.exists(out_file) and not overwrite:
        raise FileExistsError(f'{out_file} exists; not overwriting it')
    model, cfg = build_detector(config, checkpoint, fold_bn)
    input_size = input_size_of(cfg)
    wrapper = EndToEndDetector(model, input_size).eval()
    dummy = torch.rand(2, 3, *input_size) * 255
    os.makedirs(osp.dirname(osp.abspath(out_file)) or '.', exist_ok=True)
    tmp = out_file + '.part'
    try:
        with torch.no_grad():
            torch.onnx.export(
                wrapper, (dummy, ),
                tmp,
                dynamo=False,  # TorchScript exporter: data-dependent NMS
                opset_version=opset,
                input_names=['images'],
                output_names=['dets', 'labels'],
                dynamic_axes=dict(
                    images={0: 'batch'},
                    dets={0: 'batch'},
                    labels={0: 'batch'}))
    except Exception as err:  # the exporter raises many kinds
        if osp.exists(tmp):
            os.remove(tmp)
        raise UnsupportedExportError(
            f'{_config_name(config)}: torch.onnx.export failed: '
            f'{type(err).__name__}: {str(err).splitlines()[0]}') from err
    graph = onnx.load(tmp)
    foreign = sorted({(n.domain, n.op_type)
                      for n in graph.graph.node
                      if n.domain not in STANDARD_DOMAINS})
    if foreign:
        os.remove(tmp)
        ops = ', '.join(f'{d}::{t}' for d, t in foreign)
        raise UnsupportedExportError(
            f'{_config_name(config)}: the graph needs operators ONNX '
            f'Runtime does not have: {ops}')
    meta = dict(
        config=_config_name(config),
        input_size=list(input_size),
        classes=_classes(model, cfg),
        anchor_generator=anchor_generator_of(cfg),
        max_per_img=wrapper.max_per_img,
        fold_bn=fold_bn)
    del graph.metadata_props[:]
    entry = graph.metadata_props.add()
    entry.key, entry.value = 'mmdssd', json.dumps(meta)
    onnx.save(graph, tmp)
    os.replace(tmp, out_file)
    return out_file


def _config_name(config) -> str:
    return config.filename if isinstance(config, Config) else str(config)
