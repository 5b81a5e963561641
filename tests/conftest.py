import os
import os.path as osp
import sys

import pytest
import torch
from mmengine.config import Config

import mmdssd  # noqa: F401  (registers components)
from mmdet.utils import register_all_modules

from .warm_python import WarmPython

register_all_modules(init_default_scope=True)

# The suite checks that checkpoints load with torch's weights_only safety;
# a user's TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD would turn it off in the
# subprocesses the tests start (in-process loads pass weights_only=True).
os.environ.pop('TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD', None)

# The first multi-threaded exp() of a process is sometimes off by ~1e-4
# relative (seen with torch 2.13, 2 threads, AVX-512; never with 1 thread
# or on later calls), which flaked float32-exactness tests at random.
# One warm-up call removes it: the tests measure our arithmetic, not that.
torch.randn(1 << 16).exp_()

# Under pytest-xdist the workers share the cores: each worker, and every
# process it starts, gets its share of threads instead of all of them, so
# that two workers do not oversubscribe the CPU.
if os.environ.get('PYTEST_XDIST_WORKER_COUNT'):
    _THREADS = max(1, (os.cpu_count() or 1) //
                   int(os.environ['PYTEST_XDIST_WORKER_COUNT']))
    torch.set_num_threads(_THREADS)
    os.environ['OMP_NUM_THREADS'] = str(_THREADS)

# Modules whose tests train or run tools, slowest first: started first,
# they keep both workers busy, and the quick tests fill the end of the run
# instead of one long test running alone. The order within a module is
# kept; a module whose fixtures are costly to build is an ``xdist_group``,
# so that one worker builds them once instead of each worker building them.
SLOW_FIRST = ('test_analysis_tools', 'test_resume', 'test_interop',
              'test_train_test', 'test_mim', 'test_run_synthetic',
              'test_make_dataset_config', 'test_onnx', 'test_openvino',
              'test_configs')


def pytest_collection_modifyitems(session, config, items):
    def rank(item):
        name = item.module.__name__.rsplit('.', 1)[-1]
        return SLOW_FIRST.index(name) if name in SLOW_FIRST else len(
            SLOW_FIRST)

    items.sort(key=rank)  # stable: the order within a module is kept


ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
CONFIGS = osp.join(ROOT, 'configs')
TOOLS = osp.join(ROOT, 'tools')
PYTHON = sys.executable
MIM = osp.join(osp.dirname(sys.executable), 'mim')


def load_cfg(name: str) -> Config:
    return Config.fromfile(osp.join(CONFIGS, name))


def load_tool(*parts: str):
    """A script under ``tools/`` imported as a module (its ``main`` is not
    run), so that tests can call its functions."""
    import importlib.util
    path = osp.join(TOOLS, *parts)
    spec = importlib.util.spec_from_file_location(
        osp.splitext(osp.basename(path))[0] + '_tool', path)
    tool = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tool)
    return tool


@pytest.fixture(scope='session')
def synthetic_root(tmp_path_factory):
    """A small synthetic set shared by the tests that train or evaluate."""
    from mmdssd.datasets import SyntheticSpec, generate_synthetic_dataset
    root = tmp_path_factory.mktemp('synthetic')
    generate_synthetic_dataset(
        str(root), SyntheticSpec(num_trainval=16, num_test=8, seed=1))
    return str(root) + '/'


def free_port() -> int:
    """A TCP port nothing listens on now (for a rendezvous)."""
    import socket
    with socket.socket() as sock:
        sock.bind(('127.0.0.1', 0))
        return sock.getsockname()[1]


def _base_env() -> dict:
    env = dict(os.environ)
    env.pop('TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD', None)
    env.setdefault('OMP_NUM_THREADS', '2')
    return env


# ``python tool.py`` runs fork from a warm interpreter (tests/warm_python.py)
# instead of importing the stack anew each time;
# MMDSSD_TEST_NEW_INTERPRETERS=1 starts a new interpreter for every run.
WARM = None if os.environ.get('MMDSSD_TEST_NEW_INTERPRETERS') == '1' else (
    WarmPython(_base_env()))


def _tool_env(env):
    full_env = _base_env()
    full_env['PYTHONPATH'] = ROOT + os.pathsep + full_env.get(
        'PYTHONPATH', '')
    full_env.update(env or {})
    return full_env


def _warm(cmd, full_env):
    """The warm interpreter and the command for it, where it can run
    ``cmd``; else None, None. ``mim`` runs as ``python mim``, as its
    ``#!`` line names the interpreter."""
    if cmd[0] == MIM:
        cmd = [PYTHON] + cmd
    if WARM is not None and WARM.can_run(cmd, full_env):
        return WARM, cmd
    return None, None


def shell_python() -> str:
    """``$PYTHON`` for the shell scripts the tests run (tools/dist_*.sh):
    the warm interpreter's shim, whose ``python -m`` and ``python
    script.py`` runs fork from it too, or this interpreter."""
    return WARM.shim() if WARM is not None else PYTHON


def run_status(cmd, cwd=None, env=None, timeout=900, merge=False):
    """Run a command with the repo on PYTHONPATH: a ``CompletedProcess``
    with its text output, stdout and stderr apart unless ``merge``."""
    import subprocess
    full_env, cmd = _tool_env(env), [str(c) for c in cmd]
    warm, warm_cmd = _warm(cmd, full_env)
    if warm:
        return warm.run(warm_cmd, cwd, full_env, timeout, merge=merge)
    return subprocess.run(
        cmd,
        cwd=cwd,
        env=full_env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT if merge else subprocess.PIPE,
        text=True,
        timeout=timeout)


def start_tool(cmd, out, cwd=None, env=None):
    """Start a command as ``run`` does, its stdout and stderr on the file
    ``out``, without waiting: a ``subprocess.Popen`` or its like."""
    import subprocess
    full_env, cmd = _tool_env(env), [str(c) for c in cmd]
    warm, warm_cmd = _warm(cmd, full_env)
    if warm:
        return warm.start(warm_cmd, cwd, full_env, str(out))
    with open(out, 'w') as f:
        return subprocess.Popen(
            cmd, cwd=cwd, env=full_env, stdout=f, stderr=subprocess.STDOUT)


def run(cmd, cwd=None, env=None, timeout=900):
    """Run a command with the repo on PYTHONPATH; fail with its output,
    return it (stdout and stderr as one)."""
    proc = run_status(cmd, cwd, env, timeout, merge=True)
    if proc.returncode != 0:
        raise AssertionError(
            f'command failed ({proc.returncode}): {" ".join(proc.args)}'
            f'\n{proc.stdout[-6000:]}')
    return proc.stdout


@pytest.fixture(scope='session')
def data_cwd(tmp_path_factory):
    """A working directory holding ``data/synthetic`` (the configs' root)."""
    from mmdssd.datasets import SyntheticSpec, generate_synthetic_dataset
    cwd = tmp_path_factory.mktemp('cwd')
    generate_synthetic_dataset(
        str(cwd / 'data' / 'synthetic'),
        SyntheticSpec(num_trainval=16, num_test=8, seed=1))
    return cwd


TINY = osp.join(CONFIGS, 'synthetic', 'dssd_tiny_synthetic.py')


@pytest.fixture(scope='session')
def trained_tiny(data_cwd, tmp_path_factory):
    """Train the tiny DSSD for 2 epochs (2 iterations each) via
    tools/train.py; returns the work dir, which tests only read.

    Trained once per suite run: under pytest-xdist the workers share the
    run's temporary folder, and the first to ask trains while the others
    wait on a file lock (pytest-xdist's recipe for session fixtures).
    Seeded, so that a test that fails on this model fails again.
    """
    from filelock import FileLock
    shared = tmp_path_factory.getbasetemp()
    if os.environ.get('PYTEST_XDIST_WORKER'):
        shared = shared.parent
    work_dir = shared / 'trained_tiny'
    with FileLock(str(shared / 'trained_tiny.lock')):
        if not (work_dir / 'epoch_2.pth').is_file():
            run([
                PYTHON,
                osp.join(TOOLS, 'train.py'), TINY, '--work-dir', work_dir,
                '--cfg-options', 'train_cfg.max_epochs=2',
                'train_cfg.val_interval=1', 'randomness.seed=0',
                'default_hooks.checkpoint.interval=1',
                'default_hooks.checkpoint.max_keep_ckpts=3'
            ], cwd=data_cwd)
    return work_dir


CLASSES = '(circle,square,triangle,cross,ring)'


def voc0712_synthetic_options(data_cwd, num_images: int = 4) -> list:
    """``--cfg-options`` that point a real VOC07+12 config (ours or
    MMDetection's) at the synthetic set, with a tiny schedule: the user's
    exact command, only the data and duration differ."""
    root = osp.join(str(data_cwd), 'data', 'synthetic', 'VOCdevkit')
    voc12 = osp.join(root, 'VOC2012')
    if not osp.exists(voc12):  # the synthetic set stands in for VOC2012 too
        import os
        os.symlink('VOC2007', voc12)
    opts = []
    for i in (0, 1):
        ds = f'train_dataloader.dataset.dataset.datasets.{i}.'
        opts += [
            ds + f'data_root={root}/', ds + f'metainfo.classes={CLASSES}',
            ds + f'indices={num_images // 2}'
        ]
    for loader in ('val_dataloader', 'test_dataloader'):
        opts += [
            f'{loader}.dataset.data_root={root}/',
            f'{loader}.dataset.metainfo.classes={CLASSES}',
            f'{loader}.dataset.indices={num_images}',
            f'{loader}.batch_size=2', f'{loader}.num_workers=0',
            f'{loader}.persistent_workers=False'
        ]
    return opts + [
        'model.bbox_head.num_classes=5', 'model.backbone.init_cfg=None',
        'train_dataloader.batch_size=2', 'train_dataloader.num_workers=0',
        'train_dataloader.persistent_workers=False',
        'train_cfg.max_epochs=1', 'train_cfg.val_interval=1',
        'default_hooks.checkpoint.interval=1'
    ]
