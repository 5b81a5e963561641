"""The suite's own setup: what ``pytest.ini`` asks of pytest-xdist holds, and
tools run from the warm interpreter as from a new one."""
import json
import os

import pytest

pytestmark = pytest.mark.xdist_group('suite_setup')


def test_xdist_groups_reach_the_scheduler(request):
    """Under ``--dist loadgroup`` pytest-xdist sends a test's
    ``xdist_group`` to the scheduler as a suffix of its node id. A pytest
    that drops the suffix splits every group over the workers without a
    word, and each worker then builds the groups' costly fixtures
    (the exported model, the uninterrupted run) again."""
    if not getattr(request.config.option, 'loadgroup', False):
        pytest.skip('not a pytest-xdist worker under --dist loadgroup')
    import xdist
    assert request.node.nodeid.endswith('@suite_setup'), (
        f'pytest {pytest.__version__} with pytest-xdist '
        f'{xdist.__version__} does not group tests (node id '
        f'{request.node.nodeid}); install requirements/tests.txt')


PROBE = '''\
import atexit, json, os, sys
atexit.register(print, 'atexit ran')
print(json.dumps(dict(
    argv=sys.argv, path=sys.path[:3], cwd=os.getcwd(), name=__name__,
    var=os.environ.get('PROBE_VAR'), mmdssd='mmdssd' in sys.modules)))
print('to stderr', file=sys.stderr)
import mmdssd
print(os.path.dirname(mmdssd.__file__))
if sys.argv[1] == 'raise':
    raise ValueError('probe failed')
sys.exit(int(sys.argv[1]))
'''


@pytest.fixture
def warm():
    """The suite's warm interpreter, or a new one where the suite runs
    without it."""
    from .conftest import WARM, _base_env
    from .warm_python import WarmPython
    return WARM or WarmPython(_base_env())


@pytest.mark.parametrize('arg,merge', [('3', True), ('raise', False)])
def test_warm_run_is_a_new_interpreters_run(tmp_path, warm, arg, merge):
    """A tool run in a fork of the warm interpreter sees what it would see
    in a new one (argv, cwd, sys.path, environment, __main__, mmdssd not
    yet imported and imported from PYTHONPATH), and gives the same exit
    status and the same output, in the same order where the streams share
    a file (their buffering, the traceback, atexit handlers last)."""
    import subprocess
    import sys

    from .conftest import ROOT, _base_env
    script = tmp_path / 'probe.py'
    script.write_text(PROBE)
    env = dict(_base_env(), PYTHONPATH=ROOT + os.pathsep + 'rel',
               PROBE_VAR='set')
    cmd = [sys.executable, str(script), arg]
    assert warm.can_run(cmd, env)
    warmed = warm.run(cmd, str(tmp_path), env, timeout=300, merge=merge)
    new = subprocess.run(
        cmd, cwd=tmp_path, env=env, stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT if merge else subprocess.PIPE, text=True,
        timeout=300)

    def without_frames(out):  # runpy's frames are the warm run's own
        return [line for line in (out or '').splitlines()
                if not line.startswith('  ')]

    assert warmed.returncode == new.returncode == (3 if arg == '3' else 1)
    assert without_frames(warmed.stdout) == without_frames(new.stdout)
    assert without_frames(warmed.stderr) == without_frames(new.stderr)
    lines = without_frames(warmed.stdout)
    assert lines[-1] == 'atexit ran' and f'{ROOT}/mmdssd' in lines
    assert json.loads(next(line for line in lines if line[0] == '{')) == dict(
        argv=[str(script), arg],
        path=[str(tmp_path), ROOT, str(tmp_path / 'rel')],
        cwd=str(tmp_path), name='__main__', var='set', mmdssd=False)
    errors = lines if merge else without_frames(warmed.stderr)
    assert 'to stderr' in errors
    if arg == 'raise':
        start = errors.index('Traceback (most recent call last):')
        assert errors[start + 1] == 'ValueError: probe failed'


INNER = '''\
import os, sys, time
print('preloaded', 'torch' in sys.modules)
print('read', sys.stdin.readline().strip(), sys.argv[1:], os.getcwd())
print('on stderr', file=sys.stderr)
if sys.argv[1] == 'wait':
    print(os.getpid(), flush=True)
    time.sleep(120)
sys.exit(int(sys.argv[1]))
'''

OUTER = '''\
import os, signal, subprocess, sys, time
inner = [sys.executable, os.path.join(sys.argv[1], 'inner.py')]
done = subprocess.run(inner + ['4'], input='fed', capture_output=True,
                      text=True, cwd=sys.argv[1])
print(done.returncode, repr(done.stdout), repr(done.stderr))
for sig in (signal.SIGTERM, signal.SIGKILL):
    waiting = subprocess.Popen(inner + ['wait'], stdin=subprocess.DEVNULL,
                               stdout=subprocess.PIPE, text=True)
    lines = [waiting.stdout.readline() for _ in range(3)]
    print(sig.name, lines[:2])
    waiting.send_signal(sig)
    print(waiting.wait())
    for _ in range(100):  # the run itself ends, not only what was started
        try:
            os.kill(int(lines[2]), 0)
        except ProcessLookupError:
            print('ended')
            break
        time.sleep(0.1)
line = subprocess.run([sys.executable, '-c', 'print(6 * 7)'],
                      capture_output=True, text=True).stdout
print(line.strip())
'''


def test_a_tools_own_python_runs_fork_too(tmp_path, warm):
    """A tool's ``subprocess`` run of ``sys.executable script.py`` forks
    from the warm interpreter as well, and is what a new interpreter's
    would be: its streams (stdin too), cwd, exit status, and its end when
    what the tool started gets a signal; other commands start the
    interpreter itself."""
    import subprocess
    import sys

    from .conftest import _base_env
    (tmp_path / 'inner.py').write_text(INNER)
    (tmp_path / 'outer.py').write_text(OUTER)
    (tmp_path / 'cwd').mkdir()
    cmd = [sys.executable, str(tmp_path / 'outer.py'), str(tmp_path)]
    env = _base_env()
    warmed = warm.run(cmd, str(tmp_path / 'cwd'), env, timeout=300)
    new = subprocess.run(cmd, cwd=tmp_path / 'cwd', env=env, timeout=300,
                         stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                         text=True)
    assert warmed.returncode == new.returncode == 0, warmed.stdout
    # the three runs of inner.py forked (torch was there before they ran)
    assert warmed.stdout.count('preloaded True') == 3, warmed.stdout
    assert warmed.stdout.replace('preloaded True',
                                 'preloaded False') == new.stdout
    assert new.stdout.splitlines() == [
        f"4 \"preloaded False\\nread fed ['4'] {tmp_path}\\n\" "
        "'on stderr\\n'", 'on stderr',
        f"SIGTERM ['preloaded False\\n', \"read  ['wait'] {tmp_path / 'cwd'}"
        "\\n\"]", '-15', 'ended', 'on stderr',
        f"SIGKILL ['preloaded False\\n', \"read  ['wait'] {tmp_path / 'cwd'}"
        "\\n\"]", '-9', 'ended', '42'
    ]


MODULE = '''\
import os, sys
print('preloaded', 'torch' in sys.modules)
print(__name__, sys.argv, sys.path[0] == os.getcwd(), sys.stdout.write_through)
'''

LAUNCHER = '''\
import subprocess, sys
for flags in ([], ['-u']):
    done = subprocess.run([sys.executable, *flags, '-m', 'probe_module', 'a'],
                          capture_output=True, text=True)
    print(done.returncode, repr(done.stderr))
    print(done.stdout, end='')
'''


def test_a_tools_module_runs_fork_too(tmp_path, warm):
    """``sys.executable -m module`` (a DDP launcher) and ``-u`` (its
    workers) fork as well, with the ``__name__``, argv, ``sys.path`` and
    unbuffered output a new interpreter gives them."""
    import subprocess
    import sys

    from .conftest import _base_env
    (tmp_path / 'probe_module.py').write_text(MODULE)
    (tmp_path / 'launcher.py').write_text(LAUNCHER)
    cmd = [sys.executable, str(tmp_path / 'launcher.py')]
    env = _base_env()
    warmed = warm.run(cmd, str(tmp_path), env, timeout=300)
    new = subprocess.run(cmd, cwd=tmp_path, env=env, timeout=300,
                         stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                         text=True)
    assert warmed.stdout.count('preloaded True') == 2, warmed.stdout
    assert warmed.stdout.replace('preloaded True',
                                 'preloaded False') == new.stdout
    module = tmp_path / 'probe_module.py'
    # unbuffered without -u only where the environment says so
    unbuffered = bool(env.get('PYTHONUNBUFFERED'))
    assert new.stdout.splitlines() == [
        "0 ''", 'preloaded False',
        f"__main__ ['{module}', 'a'] True {unbuffered}",
        "0 ''", 'preloaded False', f"__main__ ['{module}', 'a'] True True"
    ]


def test_warm_run_refuses_what_it_cannot_run_and_times_out(tmp_path, warm):
    """Runs whose environment differs in what the stack reads at import,
    and commands other than ``python script.py``, are refused; a run past
    its timeout is killed, as is a started one, and the next run is
    served."""
    import signal
    import subprocess
    import sys

    from .conftest import _base_env
    env = _base_env()
    (tmp_path / 'sleep.py').write_text('import time\ntime.sleep(60)\n')
    (tmp_path / 'quick.py').write_text('print("served")\n')
    sleep = [sys.executable, str(tmp_path / 'sleep.py')]
    threads = str(int(env['OMP_NUM_THREADS']) + 1)
    assert warm.can_run(sleep, env)
    assert not warm.can_run(sleep, dict(env, OMP_NUM_THREADS=threads))
    # not read at import: a script's $PYTHON, what the DDP launcher sets
    assert warm.can_run(sleep, dict(env, PYTHON='/x/python',
                                    TORCH_NCCL_ASYNC_ERROR_HANDLING='1'))
    assert not warm.can_run([sys.executable, '-c', 'pass'], env)
    # a console script whose #! line names this interpreter runs too
    from .conftest import MIM
    assert warm.can_run([sys.executable, MIM, '--version'], env)
    (tmp_path / 'other').write_text('#!/bin/sh\necho other\n')
    assert not warm.can_run([sys.executable, str(tmp_path / 'other')], env)
    with pytest.raises(subprocess.TimeoutExpired):
        warm.run(sleep, str(tmp_path), env, timeout=2)
    proc = warm.start(sleep, str(tmp_path), env, str(tmp_path / 'out'))
    assert proc.poll() is None
    with pytest.raises(RuntimeError, match='one tool at a time'):
        warm.start(sleep, str(tmp_path), env, str(tmp_path / 'out2'))
    proc.send_signal(signal.SIGKILL)
    assert proc.wait(timeout=60) == -signal.SIGKILL == proc.poll()
    served = warm.run([sys.executable, str(tmp_path / 'quick.py')],
                      str(tmp_path), env, timeout=300, merge=False)
    assert (served.returncode, served.stdout, served.stderr) == (
        0, 'served\n', '')
