"""Measure a detector config: size, FLOPs, latency, train step, memory."""
import copy
import resource
import statistics
import time
from typing import Dict, List, Optional, Sequence

import torch

from ..deployment.onnx_export import input_size_of
from ..utils.cli import config_without_download


def _samples(num: int, size: tuple, num_classes: int, seed: int = 0):
    from mmdet.structures import DetDataSample
    from mmengine.structures import InstanceData
    g = torch.Generator().manual_seed(seed)
    h, w = size
    out = []
    for _ in range(num):
        s = DetDataSample(
            metainfo=dict(img_shape=size, ori_shape=size, pad_shape=size,
                          scale_factor=(1., 1.), batch_input_shape=size))
        n = 5
        xy = torch.rand(n, 2, generator=g) * torch.tensor([w, h]) * 0.6
        wh = torch.rand(n, 2, generator=g) * torch.tensor([w, h]) * 0.35 + 8
        s.gt_instances = InstanceData(
            bboxes=torch.cat([xy, xy + wh], 1),
            labels=torch.randint(num_classes, (n, ), generator=g))
        out.append(s)
    return out


def _inference_fns(model, batch: dict):
    """``predict`` (network + post-processing) and the network alone."""

    def infer():
        with torch.no_grad():
            model.predict(batch['inputs'], batch['data_samples'])

    def forward():
        with torch.no_grad():
            model(batch['inputs'], mode='tensor')

    return infer, forward


def _time(fn, warmup: int, repeat: int, sync) -> List[float]:
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeat):
        sync()
        start = time.perf_counter()
        fn()
        sync()
        times.append(time.perf_counter() - start)
    return times


def _time_pairs(fn_a, fn_b, warmup: int, repeat: int, sync):
    """Times of two functions called alternately, so that load changes on a
    shared machine hit both alike."""
    for _ in range(warmup):
        fn_a()
        fn_b()
    times_a, times_b = [], []
    for _ in range(repeat):
        times_a += _time(fn_a, 0, 1, sync)
        times_b += _time(fn_b, 0, 1, sync)
    return times_a, times_b


def batch_norm_share(fn, device: str) -> float:
    """Share of operator time spent in BatchNorm during ``fn()`` (profiler:
    self time of ``*batch_norm*`` ops over all ops; device time on CUDA).
    Folding BN can save at most about this share."""
    from torch.profiler import ProfilerActivity, profile
    activities = [ProfilerActivity.CPU]
    attr = 'self_cpu_time_total'
    if device == 'cuda':
        activities.append(ProfilerActivity.CUDA)
        attr = 'self_device_time_total'
    with profile(activities=activities) as prof:
        fn()
    events = prof.key_averages()
    total = sum(getattr(e, attr) for e in events)
    bn = sum(getattr(e, attr) for e in events if 'batch_norm' in e.key)
    return bn / total if total else 0.


def _stats(times: Sequence[float]) -> Dict[str, float]:
    return dict(
        median=statistics.median(times), min=min(times), max=max(times))


def benchmark_config(name: str,
                     device: Optional[str] = None,
                     warmup: int = 2,
                     repeat: int = 5,
                     train_batch: int = 2,
                     train_steps: int = 3,
                     fuse_conv_bn: bool = False,
                     flops: bool = True) -> Dict:
    """Benchmark one config with random weights (no download).

    Args:
        name (str): Config file or ``mmdet::ssd/ssd300_coco.py``.
        device (str, optional): ``'cpu'`` or ``'cuda'``; default: CUDA if
            available.
        warmup (int): Untimed runs first.
        repeat (int): Timed inference runs at batch 1: ``latency`` is
            ``model.predict`` (network + post-processing), ``forward`` the
            network alone (``mode='tensor'``).
        train_batch (int): Images per training step.
        train_steps (int): Timed training steps (forward, backward, SGD
            step); 0 skips training.
        fuse_conv_bn (bool): Also time inference with BN folded
            (:func:`mmdssd.models.utils.fuse_bn`), alternating calls of
            the folded and unfolded models, and measure ``bn_share``
            (:func:`batch_norm_share` of the unfolded forward).
        flops (bool): Count FLOPs with MMEngine's analysis.

    Returns:
        dict: ``params``, ``flops``, ``input_size``, ``latency``,
        ``forward`` (and ``*_fused``), ``train_step`` (seconds:
        median/min/max) and ``peak_mem_mb`` (CPU: peak RSS of this
        process; CUDA: max allocated).
    """
    import mmdssd  # noqa: F401
    from mmdet.registry import MODELS
    from mmdet.utils import register_all_modules
    from mmengine.analysis import get_model_complexity_info

    from ..models.utils import fuse_bn
    register_all_modules(init_default_scope=True)
    device = device or ('cuda' if torch.cuda.is_available() else 'cpu')
    sync = torch.cuda.synchronize if device == 'cuda' else (lambda: None)
    cfg = config_without_download(name)
    size = input_size_of(cfg)
    torch.manual_seed(0)
    model = MODELS.build(cfg.model).to(device)
    num_classes = model.bbox_head.num_classes
    result = dict(
        config=name,
        device=device,
        input_size=list(size),
        params=sum(p.numel() for p in model.parameters()))

    if train_steps > 0:
        model.train()
        params = [p for p in model.parameters() if p.requires_grad]
        opt = torch.optim.SGD(params, lr=1e-4, momentum=0.9)
        inputs = [
            torch.randint(0, 255, (3, *size), dtype=torch.uint8)
            for _ in range(train_batch)
        ]
        data = model.data_preprocessor(
            dict(inputs=inputs,
                 data_samples=_samples(train_batch, size, num_classes)),
            True)

        def step():
            losses = model.loss(data['inputs'], data['data_samples'])
            loss = sum(v if torch.is_tensor(v) else sum(v)
                       for v in losses.values())
            opt.zero_grad()
            loss.backward()
            opt.step()

        result['train_step'] = _stats(
            _time(step, 1, train_steps, sync))
        opt.zero_grad(set_to_none=True)
        del opt

    model.eval()
    image = torch.rand(1, 3, *size, device=device) * 255
    samples = _samples(1, size, num_classes)
    batch = model.data_preprocessor(
        dict(inputs=[image[0]], data_samples=samples), False)
    if flops:
        with torch.no_grad():
            info = get_model_complexity_info(
                model, inputs=(batch['inputs'], ), show_table=False,
                show_arch=False)
        result['flops'] = info['flops']

    infer, forward = _inference_fns(model, batch)
    infer()
    forward()
    # peak memory of the model as used, before a folded copy exists
    if device == 'cuda':
        result['peak_mem_mb'] = torch.cuda.max_memory_allocated() / 2**20
    else:
        result['peak_mem_mb'] = resource.getrusage(
            resource.RUSAGE_SELF).ru_maxrss / 1024
    if fuse_conv_bn:
        result['bn_share'] = batch_norm_share(forward, device)
        infer_folded, forward_folded = _inference_fns(
            fuse_bn(copy.deepcopy(model)), batch)
        for key, fn, fn_folded in (('latency', infer, infer_folded),
                                   ('forward', forward, forward_folded)):
            times, times_folded = _time_pairs(fn, fn_folded, warmup, repeat,
                                              sync)
            result[key] = _stats(times)
            result[key + '_fused'] = _stats(times_folded)
    else:
        result['latency'] = _stats(_time(infer, warmup, repeat, sync))
        result['forward'] = _stats(_time(forward, warmup, repeat, sync))
    return result


def format_table(results: List[Dict]) -> str:
    """Markdown table; times also as a ratio to the first row."""
    base = results[0]

    def ratio(r, key):
        if key not in r or key not in base:
            return '-'
        return f"{r[key]['median'] / base[key]['median']:.2f}x"

    def secs(r, key):
        if key not in r:
            return '-'
        s = r[key]
        return f"{s['median']:.3f} ({s['min']:.3f}-{s['max']:.3f})"

    def folded(r, key):
        if key + '_fused' not in r:
            return '-'
        return f"{r[key + '_fused']['median'] / r[key]['median']:.2f}x"

    def share(r):
        return f"{100 * r['bn_share']:.1f}%" if 'bn_share' in r else '-'

    head = ('| config | input | params (M) | GFLOPs | forward b1 s (min-max) '
            '| ratio | folded/unfolded | BN share | predict b1 s (min-max) '
            '| ratio | folded/unfolded | train step s (min-max) | ratio '
            '| peak mem MB |')
    lines = [head, '|' + '---|' * 14]
    for r in results:
        flops = f"{r['flops'] / 1e9:.1f}" if 'flops' in r else '-'
        lines.append(
            f"| {r['config']} | {'x'.join(map(str, r['input_size']))} "
            f"| {r['params'] / 1e6:.1f} | {flops} | {secs(r, 'forward')} "
            f"| {ratio(r, 'forward')} | {folded(r, 'forward')} "
            f"| {share(r)} | {secs(r, 'latency')} | {ratio(r, 'latency')} "
            f"| {folded(r, 'latency')} | {secs(r, 'train_step')} "
            f"| {ratio(r, 'train_step')} | {r['peak_mem_mb']:.0f} |")
    return '\n'.join(lines)
