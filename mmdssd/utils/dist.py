"""Distributed training on CPU-only machines (gloo), unchanged on GPUs."""
import os
import warnings
from typing import List

import torch
import torch.distributed as torch_dist
from mmengine.config import Config


def setup_cpu_distributed(cfg: Config, launcher: str) -> bool:
    """Prepare ``cfg`` so MMEngine's Runner can train distributed on CPUs.

    MMEngine 0.10.7's pytorch launcher calls ``torch.cuda.set_device``
    unconditionally and its DDP wrapper passes ``device_ids=[LOCAL_RANK]``,
    both of which fail without CUDA. When CUDA is unavailable this function
    initialises the process group itself with ``gloo`` (the Runner reuses an
    existing group), and sets ``model_wrapper_cfg.device_ids=None`` (config
    keys win over the Runner's defaults). With CUDA it does nothing, so GPU
    runs keep MMEngine's nccl + ``device_ids`` path.

    Args:
        cfg (Config): The config the Runner will be built from. Modified in
            place.
        launcher (str): ``'none'``, ``'pytorch'``, ``'slurm'`` or ``'mpi'``.

    Returns:
        bool: Whether the CPU path was taken.
    """
    if launcher == 'none' or torch.cuda.is_available():
        return False
    replaced = sync_bn_to_bn(cfg.model)
    if replaced:
        warnings.warn(
            'SyncBN needs CUDA (torch refuses CPU tensors once a process '
            'group exists); training on the CPU with plain BN in '
            f'{", ".join(replaced)} instead')
    dist_cfg = cfg.setdefault('env_cfg', {}).setdefault('dist_cfg', {})
    dist_cfg['backend'] = 'gloo'
    wrapper = cfg.get('model_wrapper_cfg') or dict(
        type='MMDistributedDataParallel')
    wrapper['device_ids'] = None
    wrapper.setdefault('broadcast_buffers', False)
    cfg.model_wrapper_cfg = wrapper
    if launcher == 'slurm':
        _slurm_env()
    if not torch_dist.is_initialized():
        torch_dist.init_process_group(backend='gloo', init_method='env://')
    return True


def sync_bn_to_bn(node, path: str = 'model') -> List[str]:
    """Replace every ``norm_cfg`` of type ``SyncBN`` under ``node`` (a
    config dict) by plain ``BN``, in place; returns the keys changed."""
    changed = []
    if isinstance(node, dict):
        if node.get('type') == 'SyncBN':
            node['type'] = 'BN'
            changed.append(path)
        for key, value in node.items():
            changed += sync_bn_to_bn(value, f'{path}.{key}')
    elif isinstance(node, (list, tuple)):
        for i, value in enumerate(node):
            changed += sync_bn_to_bn(value, f'{path}[{i}]')
    return changed


def _slurm_env() -> None:
    """Translate slurm variables into the env:// rendezvous variables."""
    import subprocess
    env = os.environ
    env.setdefault('RANK', env['SLURM_PROCID'])
    env.setdefault('WORLD_SIZE', env['SLURM_NTASKS'])
    env.setdefault('LOCAL_RANK', env.get('SLURM_LOCALID', '0'))
    if 'MASTER_ADDR' not in env:
        node_list = env['SLURM_NODELIST']
        env['MASTER_ADDR'] = subprocess.getoutput(
            f'scontrol show hostname {node_list} | head -n1')
    env.setdefault('MASTER_PORT', '29500')
