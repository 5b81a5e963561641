"""Eager PyTorch vs the exported model under ONNX Runtime, same run.

Both sides get the same packed test-pipeline batch and return the same
``DetDataSample`` lists: eager is ``model.test_step`` (normalisation,
network, MMDetection's post-processing, fp32, BN as trained), deployed is
:class:`~mmdssd.deployment.ONNXRuntimeDetector` ``.test_step`` (BN folded,
the whole graph in ONNX Runtime). Calls alternate, so load changes on a
shared machine hit both alike; medians are reported with ratios.
"""
import copy
import os
import os.path as osp
import statistics
import tempfile
import time
from typing import Callable, Dict, List, Optional, Sequence

import numpy as np
import torch

from ..deployment import (ONNXRuntimeDetector, build_detector, export_onnx,
                          input_size_of)


def _interleaved(fns: Dict[str, Callable], warmup: int,
                 repeat: int) -> Dict[str, float]:
    """Median seconds of each function, called in turn ``repeat`` times."""
    for _ in range(warmup):
        for fn in fns.values():
            fn()
    times = {k: [] for k in fns}
    for _ in range(repeat):
        for key, fn in fns.items():
            start = time.perf_counter()
            fn()
            times[key].append(time.perf_counter() - start)
    return {k: statistics.median(v) for k, v in times.items()}


def _image_file(folder: str, seed: int = 0) -> str:
    """A 500x375 JPEG (VOC-like size) of smooth random shapes."""
    import mmcv
    rng = np.random.default_rng(seed)
    img = np.full((375, 500, 3), 127, np.uint8)
    for _ in range(12):
        x, y = rng.integers(0, 450), rng.integers(0, 325)
        w, h = rng.integers(20, 150, size=2)
        img[y:y + h, x:x + w] = rng.integers(0, 255, 3)
    path = osp.join(folder, f'image_{seed}.jpg')
    mmcv.imwrite(img, path)
    return path


def _packed_batch(cfg, images: Sequence[str]) -> dict:
    """The test pipeline's output for ``images``, as a dataloader batch."""
    from mmcv.transforms import Compose
    from mmdet.utils import get_test_pipeline_cfg
    pipeline = Compose(get_test_pipeline_cfg(cfg))
    items = [pipeline(dict(img_path=p, img_id=i)) for i, p in
             enumerate(images)]
    return dict(inputs=[d['inputs'] for d in items],
                data_samples=[d['data_samples'] for d in items])


def benchmark_deployed(name: str,
                       batch_sizes: Sequence[int] = (1, 8),
                       warmup: int = 2,
                       repeat: int = 7,
                       end_to_end: bool = True,
                       num_threads: Optional[int] = None,
                       opt_level: str = 'all',
                       work_dir: Optional[str] = None) -> Dict:
    """Time eager PyTorch and ONNX Runtime on one config (random weights).

    Args:
        name: Config file or ``mmdet::...`` name.
        batch_sizes: Batch sizes of the model-only comparison.
        warmup: Untimed rounds first.
        repeat: Timed rounds (each calls eager then deployed).
        end_to_end: Also time image file to detections at batch 1
            (``mmdet.apis.inference_detector`` on both: decoding, resize,
            model, rescale).
        num_threads: ONNX Runtime intra-op threads (None: one per core,
            as torch uses).
        opt_level: ONNX Runtime graph optimisation level.
        work_dir: Where the ONNX file and the test image go (default: a
            temporary folder, removed afterwards).

    Returns:
        dict: ``eager_b{N}``, ``onnx_b{N}`` (median seconds per batch),
        ``e2e_eager``, ``e2e_onnx`` and the torch/ORT thread counts.
    """
    import mmdssd  # noqa: F401
    from mmdet.apis import inference_detector
    torch.manual_seed(0)
    model, cfg = build_detector(name, None, fold_bn=False)
    model.cfg = cfg
    tmp = None
    if work_dir is None:
        tmp = tempfile.TemporaryDirectory()
        work_dir = tmp.name
    os.makedirs(work_dir, exist_ok=True)
    try:
        ckpt = osp.join(work_dir, 'weights.pth')
        torch.save(dict(state_dict=model.state_dict(), meta={}), ckpt)
        onnx_file = export_onnx(cfg, ckpt, osp.join(work_dir, 'model.onnx'),
                                overwrite=True)
        deployed = ONNXRuntimeDetector(onnx_file, num_threads=num_threads,
                                       opt_level=opt_level)
        deployed.cfg = cfg
        images = [_image_file(work_dir, i) for i in range(max(batch_sizes))]
        result = dict(
            config=name,
            input_size=list(input_size_of(cfg)),
            torch_threads=torch.get_num_threads(),
            ort_threads=num_threads or os.cpu_count(),
            opt_level=opt_level)
        for batch in batch_sizes:
            data = _packed_batch(cfg, images[:batch])

            def eager(data=data):
                with torch.no_grad():
                    model.test_step(copy.copy(data))

            def onnx(data=data):
                deployed.test_step(copy.copy(data))

            times = _interleaved(dict(eager=eager, onnx=onnx), warmup,
                                 repeat)
            result[f'eager_b{batch}'] = times['eager']
            result[f'onnx_b{batch}'] = times['onnx']
        if end_to_end:

            def e2e_eager():
                with torch.no_grad():
                    inference_detector(model, images[0])

            def e2e_onnx():
                inference_detector(deployed, images[0])

            times = _interleaved(dict(eager=e2e_eager, onnx=e2e_onnx),
                                 warmup, repeat)
            result['e2e_eager'] = times['eager']
            result['e2e_onnx'] = times['onnx']
        return result
    finally:
        if tmp is not None:
            tmp.cleanup()


def format_deploy_table(results: List[Dict]) -> str:
    """Markdown table: medians and deployed/eager ratios per batch size."""
    batches = sorted({
        int(k[len('eager_b'):])
        for r in results for k in r if k.startswith('eager_b')
    })
    head = '| config | input |'
    for b in batches:
        head += f' eager b{b} s | ONNX RT b{b} s | ratio |'
    head += ' image-to-dets eager s | ONNX RT s | ratio |'
    lines = [head, '|' + '---|' * (2 + 3 * len(batches) + 3)]
    for r in results:
        row = f"| {r['config']} | {'x'.join(map(str, r['input_size']))} |"
        for b in batches:
            e, o = r.get(f'eager_b{b}'), r.get(f'onnx_b{b}')
            row += (f' {e:.3f} | {o:.3f} | {o / e:.2f}x |'
                    if e and o else ' - | - | - |')
        e, o = r.get('e2e_eager'), r.get('e2e_onnx')
        row += f' {e:.3f} | {o:.3f} | {o / e:.2f}x |' if e and o else \
            ' - | - | - |'
        lines.append(row)
    return '\n'.join(lines)


def benchmark_variants(name: str,
                       warmup: int = 2,
                       repeat: int = 7,
                       compile_model: bool = True) -> Dict[str, float]:
    """Batch-1 latency of the other ways to make inference faster, in one
    interleaved run: eager (as trained), eager channels-last, eager with
    BN folded, ``torch.compile`` (if it works here), and ONNX Runtime at
    each graph optimisation level and with 1 and all threads. Returns
    median seconds per variant (a failed variant maps to its error)."""
    import mmdssd  # noqa: F401

    from ..models.utils import fuse_bn
    torch.manual_seed(0)
    model, cfg = build_detector(name, None, fold_bn=False)
    with tempfile.TemporaryDirectory() as work_dir:
        ckpt = osp.join(work_dir, 'weights.pth')
        torch.save(dict(state_dict=model.state_dict(), meta={}), ckpt)
        onnx_file = export_onnx(cfg, ckpt, osp.join(work_dir, 'model.onnx'))
        data = _packed_batch(cfg, [_image_file(work_dir)])

        def eager_fn(m):

            def run():
                with torch.no_grad():
                    m.test_step(copy.copy(data))

            return run

        fns = dict(eager=eager_fn(model))
        cl = copy.deepcopy(model).to(memory_format=torch.channels_last)
        fns['eager channels_last'] = eager_fn(cl)
        fns['eager BN folded'] = eager_fn(fuse_bn(copy.deepcopy(model)))
        failed = {}
        if compile_model:
            compiled = copy.deepcopy(model)
            compiled.backbone = torch.compile(compiled.backbone)
            compiled.neck = torch.compile(compiled.neck)
            compiled.bbox_head = torch.compile(compiled.bbox_head)
            try:
                eager_fn(compiled)()  # compiles
                fns['torch.compile (backbone, neck, head)'] = eager_fn(
                    compiled)
            except Exception as err:  # inductor needs a C++ compiler
                failed['torch.compile'] = f'{type(err).__name__}: ' + str(
                    err).splitlines()[0][:120]
        cores = os.cpu_count()
        for level in ('basic', 'extended', 'all'):
            for threads in sorted({1, cores}):
                det = ONNXRuntimeDetector(onnx_file, num_threads=threads,
                                          opt_level=level)
                fns[f'ONNX RT {level}, {threads} thread(s)'] = (
                    lambda det=det: det.test_step(copy.copy(data)))
        times = _interleaved(fns, warmup, repeat)
    times.update(failed)
    return times
