"""Eager PyTorch vs the exported model under each runtime, same run.

Every side gets the same packed test-pipeline batch and returns the same
``DetDataSample`` lists: eager is ``model.test_step`` (normalisation,
network, MMDetection's post-processing, fp32, BN as trained), deployed is
a :class:`~mmdssd.deployment.DeployedDetector` ``.test_step`` (BN folded,
the whole graph in ONNX Runtime or OpenVINO, in each precision the CPU
runs). Calls alternate, so load changes on a
shared machine hit both alike; medians are reported with ratios.
"""
import copy
import os
import os.path as osp
import statistics
import tempfile
from typing import Callable, Dict, List, Optional, Sequence, Tuple

import numpy as np
import torch

from ..deployment import (PRECISIONS, ONNXRuntimeDetector, build_detector,
                          export_onnx, input_size_of)
from ..utils.timing import time_in_turns


def _medians(fns: Dict[str, Callable], warmup: int,
             repeat: int) -> Dict[str, float]:
    """Median seconds of each function, called in turn ``repeat`` times."""
    times = time_in_turns(fns, repeat, warmup)
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


def deployed_runtimes(onnx_file: str, work_dir: str,
                      calibration: Sequence[np.ndarray],
                      num_threads: Optional[int] = None,
                      opt_level: str = 'all') -> Tuple[Dict, Dict]:
    """Each runtime and precision this machine runs, as a detector, and
    why the others were skipped: ONNX Runtime fp32, OpenVINO fp32, bf16
    and int8 (quantised here on ``calibration``, no accuracy control:
    these are speed figures)."""
    runtimes = {
        'ONNX RT fp32':
        ONNXRuntimeDetector(onnx_file, num_threads=num_threads,
                            opt_level=opt_level)
    }
    skipped = {}
    try:
        import openvino  # noqa: F401
    except ImportError as err:
        return runtimes, {'OpenVINO': f'not installed ({err})'}
    from ..deployment import (OpenVINODetector, UnsupportedPrecisionError,
                              check_precision)
    from ..deployment.int8 import quantize_plain
    for precision in PRECISIONS:
        name = f'OpenVINO {precision}'
        try:
            check_precision(precision)
        except UnsupportedPrecisionError as err:
            skipped[name] = str(err)
            continue
        model_file = onnx_file
        if precision == 'int8':
            model_file = quantize_plain(
                onnx_file, osp.join(work_dir, 'model_int8.xml'), calibration)
        runtimes[name] = OpenVINODetector(model_file, precision=precision,
                                          num_threads=num_threads)
    return runtimes, skipped


def _time_models(model, runtimes: Dict, call: Callable, warmup: int,
                 repeat: int) -> Dict[str, float]:
    """Median seconds of ``call(detector)`` for eager ``model`` (no grad)
    and each runtime's detector, called in turn."""

    def eager():
        with torch.no_grad():
            call(model)

    fns = dict(eager=eager)
    for name, det in runtimes.items():
        fns[name] = lambda det=det: call(det)
    return _medians(fns, warmup, repeat)


def _random_model_exported(name: str, work_dir: str):
    """The config's model with random weights (seed 0), eager, and its
    export to ``work_dir/model.onnx``."""
    import mmdssd  # noqa: F401
    torch.manual_seed(0)
    model, cfg = build_detector(name, None, fold_bn=False)
    model.cfg = cfg
    os.makedirs(work_dir, exist_ok=True)
    ckpt = osp.join(work_dir, 'weights.pth')
    torch.save(dict(state_dict=model.state_dict(), meta={}), ckpt)
    onnx_file = export_onnx(cfg, ckpt, osp.join(work_dir, 'model.onnx'),
                            overwrite=True)
    return model, cfg, onnx_file


def benchmark_deployed(name: str,
                       batch_sizes: Sequence[int] = (1, 8),
                       warmup: int = 2,
                       repeat: int = 7,
                       end_to_end: bool = True,
                       num_threads: Optional[int] = None,
                       opt_level: str = 'all',
                       work_dir: Optional[str] = None) -> Dict:
    """Time eager PyTorch against every deployed runtime and precision on
    one config (random weights), interleaved in one run.

    Args:
        name: Config file or ``mmdet::...`` name.
        batch_sizes: Batch sizes of the model-only comparison.
        warmup: Untimed rounds first.
        repeat: Timed rounds (each calls eager, then each runtime).
        end_to_end: Also time image file to detections at batch 1.
        num_threads: Runtime threads (None: one per core, as torch uses).
        opt_level: ONNX Runtime graph optimisation level.
        work_dir: Where the model files and the test images go (default:
            a temporary folder, removed afterwards).

    Returns:
        dict: ``times`` (``{batch or 'e2e': {runtime: median s}}``, with
        ``eager``), ``precision_ran`` per runtime, ``skipped`` (runtime:
        reason), the CPU, input size and thread counts.
    """
    from ..deployment import cpu_description
    tmp = None
    if work_dir is None:
        tmp = tempfile.TemporaryDirectory()
        work_dir = tmp.name
    try:
        model, cfg, onnx_file = _random_model_exported(name, work_dir)
        images = [_image_file(work_dir, i) for i in range(max(batch_sizes))]
        calibration = [
            _packed_batch(cfg, [p])['inputs'][0].float().numpy()[None]
            for p in images
        ]
        runtimes, skipped = deployed_runtimes(onnx_file, work_dir,
                                              calibration, num_threads,
                                              opt_level)
        for det in runtimes.values():
            det.cfg = cfg
        times = {}
        for batch in batch_sizes:
            data = _packed_batch(cfg, images[:batch])
            times[str(batch)] = _time_models(
                model, runtimes,
                lambda det, data=data: det.test_step(copy.copy(data)),
                warmup, repeat)
        if end_to_end:  # image file to detections: decode, resize, rescale
            from mmdet.apis import inference_detector
            times['e2e'] = _time_models(
                model, runtimes,
                lambda det: inference_detector(det, images[0]), warmup,
                repeat)
        return dict(
            config=name,
            input_size=list(input_size_of(cfg)),
            cpu=cpu_description(),
            torch_threads=torch.get_num_threads(),
            runtime_threads=num_threads or os.cpu_count(),
            opt_level=opt_level,
            times=times,
            precision_ran={k: d.precision_ran for k, d in runtimes.items()},
            skipped=skipped)
    finally:
        if tmp is not None:
            tmp.cleanup()


def format_deploy_table(results: List[Dict]) -> str:
    """Markdown table: one row per config and batch size (``e2e``: image
    file to detections, batch 1), eager seconds, then each runtime's
    seconds and its ratio to eager in the same run."""
    names = []
    for r in results:
        for key in r['times'][next(iter(r['times']))]:
            if key != 'eager' and key not in names:
                names.append(key)
    head = '| config | input | batch | eager fp32 s |' + ''.join(
        f' {n} s | ratio |' for n in names)
    lines = [f"CPU: {results[0]['cpu']}" if results else '', head,
             '|' + '---|' * (4 + 2 * len(names))]
    for r in results:
        size = 'x'.join(map(str, r['input_size']))
        for batch, times in r['times'].items():
            row = f"| {r['config']} | {size} | {batch} | " \
                f"{times['eager']:.3f} |"
            for n in names:
                t = times.get(n)
                row += (f' {t:.3f} | {t / times["eager"]:.2f}x |'
                        if t else ' - | - |')
            lines.append(row)
    notes = {(k, v) for r in results for k, v in r['precision_ran'].items()}
    lines += [f'- {k} ran {v}' for k, v in sorted(notes)]
    skipped = {(k, v) for r in results for k, v in r['skipped'].items()}
    lines += [f'- {k} skipped: {v}' for k, v in sorted(skipped)]
    return '\n'.join(lines)


def _runtime_variants(onnx_file: str) -> Dict:
    """ONNX Runtime at each optimisation level and OpenVINO fp32 with a
    dynamic and a fixed batch, each with 1 and all threads."""
    cores = os.cpu_count()
    variants = {}
    for level in ('basic', 'extended', 'all'):
        for threads in sorted({1, cores}):
            variants[f'ONNX RT {level}, {threads} thread(s)'] = \
                ONNXRuntimeDetector(onnx_file, num_threads=threads,
                                    opt_level=level)
    try:
        from ..deployment import OpenVINODetector
        for static in (False, True):
            for threads in sorted({1, cores}):
                shapes = 'static' if static else 'dynamic'
                variants[f'OpenVINO fp32 {shapes} batch, {threads} '
                         'thread(s)'] = OpenVINODetector(
                             onnx_file, num_threads=threads,
                             static_shapes=static)
    except ImportError:
        pass
    return variants


def benchmark_variants(name: str,
                       warmup: int = 2,
                       repeat: int = 7,
                       compile_model: bool = True) -> Dict[str, float]:
    """Batch-1 latency of the other ways to make inference faster, in one
    interleaved run: eager (as trained), eager channels-last, eager with
    BN folded, ``torch.compile`` (if it works here), ONNX Runtime at
    each graph optimisation level and OpenVINO fp32 with dynamic and fixed
    shapes, with 1 and all threads. Returns
    median seconds per variant (a failed variant maps to its error)."""
    from ..models.utils import fuse_bn
    with tempfile.TemporaryDirectory() as work_dir:
        model, cfg, onnx_file = _random_model_exported(name, work_dir)
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
        for name, det in _runtime_variants(onnx_file).items():
            fns[name] = lambda det=det: det.test_step(copy.copy(data))
        times = _medians(fns, warmup, repeat)
    times.update(failed)
    return times
