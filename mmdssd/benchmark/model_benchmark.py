"""Measure a detector config: size, FLOPs, latency, train step, memory."""
import copy
import resource
from typing import Callable, Dict, List, Optional, Sequence, Tuple

import torch

from ..deployment.onnx_export import input_size_of
from ..utils.config_paths import config_without_download
from ..utils.timing import summarize, time_in_turns


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


def _autocast(device: str, precision: str):
    """The autocast context of ``precision`` (``fp32``: none)."""
    if precision not in ('fp32', 'bf16'):
        raise ValueError(f"precision must be 'fp32' or 'bf16', got "
                         f'{precision!r}')
    return torch.autocast(device.split(':')[0], dtype=torch.bfloat16,
                          enabled=precision == 'bf16')


def _float_outputs(module, args, outputs):
    """Forward hook: the head's maps back in float32, so that the
    post-processing (decoding, mmcv's NMS) runs as deployed."""
    return tuple([t.float() for t in level] for level in outputs)


def _inference_fns(model, batch: dict, precision: str = 'fp32'):
    """``predict`` (network + post-processing) and the network alone; in
    bf16 the network runs under autocast, the post-processing in float32."""
    device = str(batch['inputs'].device)

    def infer():
        # fp32 outputs are float already: the cast-back hook would only add
        # its own cost to the timed predict
        if precision == 'fp32':
            with torch.no_grad():
                model.predict(batch['inputs'], batch['data_samples'])
            return
        hook = model.bbox_head.register_forward_hook(_float_outputs)
        try:
            with torch.no_grad(), _autocast(device, precision):
                model.predict(batch['inputs'], batch['data_samples'])
        finally:
            hook.remove()

    def forward():
        with torch.no_grad(), _autocast(device, precision):
            model(batch['inputs'], mode='tensor')

    return infer, forward


# a training step's operator groups, first match wins: the convolutions'
# kernels are the floor of a step's cost, the rest is what could be removed
STEP_OP_GROUPS = (
    ('conv backward', lambda key: 'conv' in key and 'backward' in key),
    ('conv forward', lambda key: 'conv' in key),
    ('batch norm', lambda key: 'batch_norm' in key),
)


def op_time_shares(fn: Callable[[], None], device: str,
                   groups: Sequence[Tuple[str, Callable[[str], bool]]]
                   ) -> Dict[str, float]:
    """Shares of operator self time during ``fn()`` by group.

    Args:
        fn (callable): What to profile, called once.
        device (str): ``'cuda'`` counts device time, else CPU time.
        groups (sequence): ``(name, match)`` pairs; an operator counts in
            the first group whose ``match`` accepts its lower-cased name.

    Returns:
        dict: Each group's share of the total, and ``'other'``.
    """
    from torch.profiler import ProfilerActivity, profile
    activities = [ProfilerActivity.CPU]
    attr = 'self_cpu_time_total'
    if device == 'cuda':
        activities.append(ProfilerActivity.CUDA)
        attr = 'self_device_time_total'
    with profile(activities=activities) as prof:
        fn()
    times = dict.fromkeys([name for name, _ in groups] + ['other'], 0.)
    for event in prof.key_averages():
        key = event.key.lower()
        name = next((n for n, match in groups if match(key)), 'other')
        times[name] += getattr(event, attr)
    total = sum(times.values())
    return {name: t / total if total else 0. for name, t in times.items()}


def batch_norm_share(fn: Callable[[], None], device: str) -> float:
    """Share of operator time spent in BatchNorm during ``fn()`` (self time
    of ``*batch_norm*`` ops over all ops; device time on CUDA). Folding BN
    can save at most about this share."""
    return op_time_shares(fn, device, STEP_OP_GROUPS)['batch norm']


def benchmark_config(name: str,
                     device: Optional[str] = None,
                     warmup: int = 2,
                     repeat: int = 5,
                     train_batch: int = 2,
                     train_steps: int = 3,
                     fuse_conv_bn: bool = False,
                     flops: bool = True,
                     precision: str = 'fp32',
                     profile_step: bool = False) -> Dict:
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
            step), each in turns with a batch-1 forward; 0 skips training.
        fuse_conv_bn (bool): Also time inference with BN folded
            (:func:`mmdssd.models.utils.fuse_bn`), alternating calls of
            the folded and unfolded models, and measure ``bn_share``
            (:func:`batch_norm_share` of the unfolded forward).
        flops (bool): Count FLOPs with MMEngine's analysis.
        precision (str): ``'fp32'``, or ``'bf16'`` to run the forward
            passes and the loss under bfloat16 autocast (as
            :class:`~mmdssd.engine.CPUAmpOptimWrapper` trains; emulated,
            and slow, where the CPU has no native bf16).
        profile_step (bool): Also profile one more training step:
            ``train_step_profile``, the operator self time's shares
            (:func:`op_time_shares` over :data:`STEP_OP_GROUPS`).

    Returns:
        dict: ``params``, ``flops``, ``input_size``, ``latency``,
        ``forward`` (and ``*_fused``), ``train_step`` and the
        ``step_forward`` timed in turns with it (seconds: median/min/max),
        ``step_cost`` (per round, the step per image in those forwards:
        median/min/max), ``train_step_profile`` if asked for, and
        ``peak_mem_mb`` (CPU: peak RSS of this process; CUDA: max
        allocated).
    """
    import mmdssd  # noqa: F401
    from mmdet.registry import MODELS
    from mmdet.utils import register_all_modules
    register_all_modules(init_default_scope=True)
    device = device or ('cuda' if torch.cuda.is_available() else 'cpu')
    sync = torch.cuda.synchronize if device == 'cuda' else None
    cfg = config_without_download(name)
    size = input_size_of(cfg)
    torch.manual_seed(0)
    model = MODELS.build(cfg.model).to(device)
    result = dict(
        config=name,
        device=device,
        precision=precision,
        input_size=list(size),
        params=sum(p.numel() for p in model.parameters()))
    if train_steps > 0:
        result['train_batch'] = train_batch
        step, optimizer = _train_step(model, size, train_batch, precision)
        result.update(
            _step_in_forwards(model, step, size, device, train_batch,
                              train_steps, precision, sync))
        if profile_step:
            result['train_step_profile'] = op_time_shares(
                step, device, STEP_OP_GROUPS)
        optimizer.zero_grad(set_to_none=True)
    result.update(
        _inference_figures(model, size, device, warmup, repeat, sync,
                           fuse_conv_bn, flops, precision))
    return result


def _train_step(model, size: tuple, batch: int,
                precision: str = 'fp32') -> Tuple[Callable[[], None],
                                                  torch.optim.Optimizer]:
    """A training step (forward, loss, backward, SGD update) on one fixed
    batch of random images, and its optimiser."""
    model.train()
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.SGD(params, lr=1e-4, momentum=0.9)
    inputs = [
        torch.randint(0, 255, (3, *size), dtype=torch.uint8)
        for _ in range(batch)
    ]
    data = model.data_preprocessor(
        dict(inputs=inputs,
             data_samples=_samples(batch, size, model.bbox_head.num_classes)),
        True)

    def step():
        with _autocast(str(data['inputs'].device), precision):
            losses = model.loss(data['inputs'], data['data_samples'])
        loss = sum(v if torch.is_tensor(v) else sum(v)
                   for v in losses.values())
        opt.zero_grad()
        loss.backward()
        opt.step()

    return step, opt


def _batch_of_one(model, size: tuple, device: str) -> dict:
    """One random image, preprocessed for ``predict``."""
    image = torch.rand(1, 3, *size, device=device) * 255
    samples = _samples(1, size, model.bbox_head.num_classes)
    return model.data_preprocessor(
        dict(inputs=[image[0]], data_samples=samples), False)


def _in_mode(model, training: bool, fn: Callable[[], None]):
    """``fn`` called with ``model`` in training or eval mode."""

    def call():
        model.train(training)
        fn()

    return call


def _step_in_forwards(model, step: Callable[[], None], size: tuple,
                      device: str, batch: int, steps: int, precision: str,
                      sync) -> Dict:
    """``train_step``, a batch-1 ``step_forward`` timed in turns with it,
    and ``step_cost``: each round's step per image over that round's
    forward. Timed in blocks, the two were compared across whatever the
    machine did in between, and its speed drifts from minute to minute."""
    _, forward = _inference_fns(model, _batch_of_one(model, size, device),
                                precision)
    forward = _in_mode(model, False, forward)
    # an untimed forward first re-warms what the step evicted, as the
    # latency block's forwards find it
    times = time_in_turns(
        dict(train_step=_in_mode(model, True, step), step_forward=forward),
        steps, warmup=1, prepare=dict(step_forward=forward), sync=sync)
    model.train()
    costs = [s / batch / f
             for s, f in zip(times['train_step'], times['step_forward'])]
    return dict(train_step=summarize(times['train_step']),
                step_forward=summarize(times['step_forward']),
                step_cost=summarize(costs))


def _inference_figures(model, size: tuple, device: str, warmup: int,
                       repeat: int, sync, fuse_conv_bn: bool,
                       flops: bool, precision: str = 'fp32') -> Dict:
    """``flops``, ``peak_mem_mb``, ``latency`` and ``forward`` at batch 1
    (with ``*_fused`` and ``bn_share`` when ``fuse_conv_bn``)."""
    from mmengine.analysis import get_model_complexity_info

    from ..models.utils import fuse_bn
    model.eval()
    batch = _batch_of_one(model, size, device)
    result = {}
    if flops:
        with torch.no_grad():
            info = get_model_complexity_info(
                model, inputs=(batch['inputs'], ), show_table=False,
                show_arch=False)
        result['flops'] = info['flops']
    infer, forward = _inference_fns(model, batch, precision)
    infer()
    forward()
    # peak memory of the model as used, before a folded copy exists
    if device == 'cuda':
        result['peak_mem_mb'] = torch.cuda.max_memory_allocated() / 2**20
    else:
        result['peak_mem_mb'] = resource.getrusage(
            resource.RUSAGE_SELF).ru_maxrss / 1024
    fns = dict(latency=infer, forward=forward)
    if fuse_conv_bn:
        result['bn_share'] = batch_norm_share(forward, device)
        infer_folded, forward_folded = _inference_fns(
            fuse_bn(copy.deepcopy(model)), batch, precision)
        fns.update(latency_fused=infer_folded, forward_fused=forward_folded)
    times = time_in_turns(fns, repeat, warmup, sync=sync)
    result.update({key: summarize(t) for key, t in times.items()})
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

    def step_cost(r):
        # a training step per image, in batch-1 forwards timed in turns
        # with it: forward plus a backward of about twice its cost make ~3
        if 'step_cost' not in r:
            return '-'
        c = r['step_cost']
        return f"{c['median']:.2f} ({c['min']:.2f}-{c['max']:.2f})"

    def share(r):
        return f"{100 * r['bn_share']:.1f}%" if 'bn_share' in r else '-'

    head = ('| config | input | params (M) | GFLOPs | forward b1 s (min-max) '
            '| ratio | folded/unfolded | BN share | predict b1 s (min-max) '
            '| ratio | folded/unfolded | train step s (min-max) | ratio '
            '| step/image in forwards (min-max) | precision | peak mem MB |')
    lines = [head, '|' + '---|' * 16]
    for r in results:
        flops = f"{r['flops'] / 1e9:.1f}" if 'flops' in r else '-'
        lines.append(
            f"| {r['config']} | {'x'.join(map(str, r['input_size']))} "
            f"| {r['params'] / 1e6:.1f} | {flops} | {secs(r, 'forward')} "
            f"| {ratio(r, 'forward')} | {folded(r, 'forward')} "
            f"| {share(r)} | {secs(r, 'latency')} | {ratio(r, 'latency')} "
            f"| {folded(r, 'latency')} | {secs(r, 'train_step')} "
            f"| {ratio(r, 'train_step')} | {step_cost(r)} "
            f"| {r.get('precision', 'fp32')} | {r['peak_mem_mb']:.0f} |")
    return '\n'.join(lines)


def format_step_profiles(results: List[Dict]) -> str:
    """One line per result with a ``train_step_profile``: the step's
    operator time by group, and the convolutions' backward over their
    forward (about 2 where the backward costs what the arithmetic says)."""
    lines = []
    for r in results:
        shares = r.get('train_step_profile')
        if not shares:
            continue
        parts = ', '.join(f'{name} {100 * share:.1f}%'
                          for name, share in shares.items())
        forward = shares.get('conv forward', 0.)
        if forward:
            ratio = shares['conv backward'] / forward
            parts += f'; conv backward {ratio:.2f}x conv forward'
        lines.append(f"{r['config']} ({r.get('precision', 'fp32')}) "
                     f'training step, operator self time: {parts}')
    return '\n'.join(lines)
