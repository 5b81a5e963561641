"""Checkpoints checked before they are used: complete and readable (for
``--resume`` and ``tools/test.py``), and made for the model they are
loaded into (classes, default boxes, tensor shapes)."""
import glob
import json
import os.path as osp
import zipfile
from typing import Dict, List, Optional, Tuple

import torch
from mmengine.config import Config
from mmengine.model import is_model_wrapper

from mmdssd.fileio import TMP_MARK


class CheckpointError(RuntimeError):
    """A checkpoint that is broken, or not for the model at hand."""


def _zip_problem(path: str) -> Optional[str]:
    try:
        with zipfile.ZipFile(path) as archive:
            bad = archive.testzip()
    except zipfile.BadZipFile as err:
        return f'incomplete or damaged ({err})'
    except EOFError as err:
        return f'incomplete ({err})'
    if bad is not None:
        return f'damaged (checksum of its entry {bad} does not match)'
    return None


def load_checked_checkpoint(path: str) -> dict:
    """Load a checkpoint after checking that it is complete and intact.

    torch writes checkpoints as zip archives with a checksum per entry: a
    truncated file lacks the archive's directory, a damaged one fails a
    checksum. Tensors are memory-mapped, so only what is used is read.

    Args:
        path: The ``.pth`` file.

    Returns:
        dict: The checkpoint.

    Raises:
        CheckpointError: naming ``path`` and what is wrong with it.
    """
    if not osp.isfile(path):
        raise CheckpointError(f'{path}: no such checkpoint file')
    with open(path, 'rb') as f:
        zipped = f.read(4) == b'PK\x03\x04'  # else torch's legacy format
    problem = _zip_problem(path) if zipped else None
    if problem is None:
        try:
            ckpt = torch.load(path, map_location='cpu', weights_only=True,
                              mmap=zipped)
        except Exception as err:  # torch raises many kinds here
            problem = (f'unreadable ({type(err).__name__}: '
                       f'{str(err).splitlines()[0] if str(err) else ""})')
        else:
            if not isinstance(ckpt, dict) or 'state_dict' not in ckpt:
                problem = 'not a runner checkpoint (no state_dict)'
    if problem is not None:
        raise CheckpointError(f'{path}: {problem}')
    return ckpt


def _candidates(work_dir: str) -> List[str]:
    """The files ``--resume`` may use, the one ``last_checkpoint`` names
    first, then the others in the same folders, newest first."""
    named, folders = [], [work_dir]
    pointer = osp.join(work_dir, 'last_checkpoint')
    if osp.isfile(pointer):
        with open(pointer) as f:
            last = f.read().strip()
        if last:
            named.append(last)
            folders.append(osp.dirname(last))
    found = set()
    for folder in folders:
        for path in glob.glob(osp.join(glob.escape(folder), '*.pth')):
            name = osp.basename(path)
            if not name.startswith('best_') and TMP_MARK not in name:
                found.add(osp.abspath(path))
    found -= {osp.abspath(p) for p in named}
    newest = sorted(found, key=lambda p: (osp.getmtime(p), p), reverse=True)
    return named + newest


def find_resumable_checkpoint(
        work_dir: str) -> Tuple[Optional[str], List[Tuple[str, str]]]:
    """The newest complete checkpoint of a work dir, for ``--resume``.

    ``best_*.pth`` files are never resumed from (they hold an earlier
    state of the run).

    Args:
        work_dir: The run's work dir.

    Returns:
        tuple: The checkpoint (None if there is no complete one) and the
        ``(file, reason)`` pairs of the newer files that were skipped.
    """
    skipped = []
    for path in _candidates(work_dir):
        if not osp.isfile(path):
            skipped.append((path, 'named by last_checkpoint, but missing'))
            continue
        try:
            load_checked_checkpoint(path)
        except CheckpointError as err:
            skipped.append((path, str(err)[len(path) + 2:]))
            continue
        return path, skipped
    return None, skipped


def _plain(cfg: dict) -> dict:
    return json.loads(json.dumps(cfg))  # tuples and lists compare equal


def _anchor_generator(cfg_text: str) -> Optional[dict]:
    try:
        cfg = Config.fromstring(cfg_text, '.py')
        return _plain(cfg.model.bbox_head.anchor_generator.to_dict())
    except Exception:  # a foreign or older checkpoint: nothing to compare
        return None


def _shape_problems(state: Dict[str, torch.Tensor],
                    model: torch.nn.Module) -> List[str]:
    state = {k[len('module.'):] if k.startswith('module.') else k: v
             for k, v in state.items()}
    own = model.state_dict()
    wrong = [f'{k} {tuple(state[k].shape)} vs {tuple(v.shape)}'
             for k, v in own.items()
             if k in state and state[k].shape != v.shape]
    params = {k for k, _ in model.named_parameters()}
    missing = sorted(params - set(state))
    problems = []
    if wrong:
        problems.append(f'{len(wrong)} tensors differ in shape (checkpoint '
                        f'vs config), e.g. {"; ".join(wrong[:3])}')
    if missing:
        problems.append(f'{len(missing)} parameters of the model are not in '
                        f'the checkpoint, e.g. {", ".join(missing[:3])}')
    return problems


def check_checkpoint_fits(ckpt: dict, path: str, model: torch.nn.Module,
                          cfg: Config, classes: Optional[tuple]) -> None:
    """Refuse a checkpoint made for other classes, other default boxes or
    another architecture than ``cfg``'s model, naming both sides.

    Args:
        ckpt: The loaded checkpoint.
        path: Its file (for the message).
        model: The model built from ``cfg``.
        cfg: The config the checkpoint is to be used with.
        classes: The class names the config's test set uses.

    Raises:
        CheckpointError: listing every difference found.
    """
    meta = ckpt.get('meta') or {}
    problems = []
    theirs = (meta.get('dataset_meta') or {}).get('classes')
    if theirs is not None and classes is not None and \
            tuple(theirs) != tuple(classes):
        problems.append(f'classes: checkpoint {tuple(theirs)}, config '
                        f'{tuple(classes)}')
    boxes = _anchor_generator(meta['cfg']) if 'cfg' in meta else None
    head = cfg.model.get('bbox_head') or {}
    ours = _plain(head.anchor_generator.to_dict()) \
        if 'anchor_generator' in head else None
    if boxes is not None and ours is not None and boxes != ours:
        problems += [f'default boxes, {key}: checkpoint {boxes.get(key)}, '
                     f'config {ours.get(key)}'
                     for key in sorted(set(boxes) | set(ours))
                     if boxes.get(key) != ours.get(key)]
    if is_model_wrapper(model):  # DDP: the runner wraps the model
        model = model.module
    problems += _shape_problems(ckpt['state_dict'], model)
    if problems:
        raise CheckpointError(
            f'{path} was not trained for {cfg.filename}:\n  ' +
            '\n  '.join(problems))
