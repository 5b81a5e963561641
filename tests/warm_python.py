"""Run ``python tool.py args`` in forks of one interpreter that has the
stack imported.

A new interpreter spends seconds importing torch, mmcv's ops and mmdet
before a tool runs its first line, more than many of the suite's tool runs
take after it. The warm interpreter imports that stack once per test worker
and forks for each run. The fork then sets up what a new interpreter would
have: the tool's argv, cwd, environment and ``sys.path`` (the script's
folder, then ``PYTHONPATH``); the tool runs as ``__main__``; its exit status,
``SystemExit`` code, uncaught traceback, atexit handlers and output
streams are as they would be. mmdssd and everything else the
tool imports beyond the preloaded stack are imported afresh in the fork.

What a fork cannot redo is the preloaded modules' reading of the
environment at import time, so :meth:`WarmPython.can_run` refuses a run
whose environment differs from the warm interpreter's in such variables;
the caller then starts a new interpreter. Nor does a fork start without
the preloaded modules, whose registrations a tool that forgot an import
would find here and not in a new interpreter.
"""
import atexit
import json
import os
import os.path as osp
import select
import signal
import subprocess
import sys
import tempfile
from typing import Dict, List, Optional

# the stack every tool imports; nothing of mmdssd's
PRELOAD = ('torch', 'cv2', 'scipy.optimize', 'matplotlib',
           'pycocotools.cocoeval', 'mmengine.runner', 'mmcv.ops', 'mmcv.cnn',
           'mmdet.models', 'mmdet.datasets', 'mmdet.evaluation',
           'mmdet.visualization', 'mmdet.engine')

# variables that the preloaded libraries read when they are imported
IMPORT_TIME_ENV = ('OMP_', 'GOMP_', 'KMP_', 'MKL_', 'OPENBLAS_', 'DNNL_',
                   'ONEDNN_', 'TORCH_', 'ATEN_', 'OPENCV_', 'MPL', 'PYTHON',
                   'LD_', 'MALLOC_')


def _import_time_items(env: Dict[str, str]) -> Dict[str, str]:
    return {
        key: value
        for key, value in env.items()
        if key.startswith(IMPORT_TIME_ENV) and key != 'PYTHONPATH'
    }


# ---------------------------------------------------------------- the server


def _exit_code(code) -> int:
    """The status ``sys.exit(code)`` gives a new interpreter."""
    if code is None:
        return 0
    if isinstance(code, int):
        return code & 0xFF
    print(code, file=sys.stderr)
    return 1


def _flush() -> None:
    sys.stderr.flush()
    sys.stdout.flush()


def _redirect(out: str, err: Optional[str]) -> None:
    """stdin from /dev/null, stdout on ``out``, stderr on ``err`` (or on
    ``out``), and no other descriptor left open, as in a new process."""
    flags = os.O_WRONLY | os.O_CREAT | os.O_TRUNC
    fds = [os.open(os.devnull, os.O_RDONLY), os.open(out, flags)]
    fds.append(os.open(err, flags) if err else fds[1])
    for target, fd in enumerate(fds):
        os.dup2(fd, target)
    for fd in set(fds):
        os.close(fd)


def _run_in_fork(request: dict, base_path: List[str]) -> None:
    """The forked child: become ``python argv...`` and exit; never
    returns into the server's loop."""
    code = 1
    try:
        _redirect(request['out'], request['err'])
        os.chdir(request['cwd'])
        os.environ.clear()
        os.environ.update(request['env'])
        script = request['argv'][0]
        pythonpath = request['env'].get('PYTHONPATH')
        extra = [osp.abspath(p) for p in pythonpath.split(os.pathsep)
                 ] if pythonpath else []
        sys.path[:] = [osp.dirname(osp.realpath(script))] + extra + base_path
        sys.argv[:] = request['argv']
        import importlib
        import runpy
        importlib.invalidate_caches()
        try:
            runpy.run_path(script, run_name='__main__')
            code = 0
        except SystemExit as exc:
            _flush()
            code = _exit_code(exc.code)
        except BaseException:
            _flush()  # the interpreter's order: output, then traceback
            sys.excepthook(*sys.exc_info())
            code = 1
        _flush()
        import threading
        threading._shutdown()  # wait for non-daemon threads, as at exit
        atexit._run_exitfuncs()
        _flush()
    finally:
        os._exit(code)


def serve() -> None:
    """Import the stack, then fork once per request read from stdin; write
    the child's pid, then its exit status, each as a line of JSON."""
    import importlib
    for name in PRELOAD:
        importlib.import_module(name)
    base_path = sys.path[1:]  # started without PYTHONPATH: the site's path
    print(json.dumps(dict(ready=True)), flush=True)
    for line in sys.stdin:
        request = json.loads(line)
        _flush()  # nothing buffered to be written twice
        pid = os.fork()
        if pid == 0:
            _run_in_fork(request, base_path)
        print(json.dumps(dict(pid=pid)), flush=True)
        _, status = os.waitpid(pid, 0)
        print(json.dumps(dict(rc=os.waitstatus_to_exitcode(status))),
              flush=True)


# ---------------------------------------------------------------- the client


class WarmPython:
    """The warm interpreter of this process, started on first use.

    Args:
        env (dict): the environment it starts with; runs whose
            environment differs from it in import-time variables are
            refused (:meth:`can_run`).
    """

    def __init__(self, env: Dict[str, str]) -> None:
        self.env = dict(env)
        self.env.pop('PYTHONPATH', None)
        self._proc: Optional[subprocess.Popen] = None
        self._log = None
        self._buffer = b''
        self._running: Optional[WarmProcess] = None

    def can_run(self, cmd: List[str], env: Dict[str, str]) -> bool:
        return (len(cmd) >= 2 and cmd[0] == sys.executable
                and cmd[1].endswith('.py') and osp.isfile(cmd[1])
                and _import_time_items(env) == _import_time_items(self.env))

    def start(self,
              cmd: List[str],
              cwd: Optional[str],
              env: Dict[str, str],
              out: str,
              err: Optional[str] = None) -> 'WarmProcess':
        """Start ``cmd`` (``python script.py args``) in a fork, as
        ``subprocess.Popen`` would with stdout on the file ``out`` and
        stderr on ``err`` (or on ``out`` too); one at a time."""
        if self._running is not None and self._running.poll() is None:
            raise RuntimeError('the warm interpreter runs one tool at a time')
        proc = self._server()
        request = dict(argv=cmd[1:], cwd=osp.abspath(cwd or os.getcwd()),
                       env=env, out=str(out), err=err and str(err))
        proc.stdin.write((json.dumps(request) + '\n').encode())
        proc.stdin.flush()
        self._running = WarmProcess(self, cmd, self._reply(None)['pid'])
        return self._running

    def run(self,
            cmd: List[str],
            cwd: Optional[str],
            env: Dict[str, str],
            timeout: float,
            merge: bool = True) -> subprocess.CompletedProcess:
        """Run ``cmd`` in a fork, as ``subprocess.run(cmd, ...,
        stdout=PIPE, stderr=STDOUT if merge else PIPE, text=True)``
        would."""
        with tempfile.TemporaryDirectory() as tmp:
            out, err = osp.join(tmp, 'out'), osp.join(tmp, 'err')
            proc = self.start(cmd, cwd, env, out, None if merge else err)
            try:
                code = proc.wait(timeout)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
                raise subprocess.TimeoutExpired(cmd, timeout, _read(out),
                                                None if merge else _read(err))
            return subprocess.CompletedProcess(cmd, code, _read(out),
                                               None if merge else _read(err))

    def _server(self) -> subprocess.Popen:
        if self._proc is None or self._proc.poll() is not None:
            self._log = tempfile.TemporaryFile()
            self._buffer = b''
            self._proc = subprocess.Popen(
                [sys.executable, osp.abspath(__file__)],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=self._log,
                env=self.env,
                cwd=osp.dirname(osp.abspath(__file__)),
                bufsize=0)
            atexit.register(self._proc.kill)
            if (self._reply(600) or {}).get('ready') is not True:
                raise RuntimeError('the warm interpreter did not start')
        return self._proc

    def _reply(self, timeout: Optional[float]) -> Optional[dict]:
        """The server's next line, or None after ``timeout`` seconds."""
        fd = self._proc.stdout.fileno()
        while b'\n' not in self._buffer:
            if not select.select([fd], [], [], timeout)[0]:
                return None
            chunk = os.read(fd, 4096)
            if not chunk:
                self._log.seek(0)
                raise RuntimeError(
                    f'the warm interpreter exited ({self._proc.wait()}):\n'
                    + self._log.read().decode(errors='replace')[-3000:])
            self._buffer += chunk
        line, self._buffer = self._buffer.split(b'\n', 1)
        return json.loads(line)


class WarmProcess:
    """A tool running in a fork of the warm interpreter: what tests use of
    ``subprocess.Popen`` (``pid``, ``poll``, ``wait``, ``send_signal``,
    ``kill``, ``returncode``)."""

    def __init__(self, warm: WarmPython, args: List[str], pid: int) -> None:
        self.args, self.pid, self._warm = args, pid, warm
        self.returncode: Optional[int] = None

    def poll(self) -> Optional[int]:
        if self.returncode is None:
            reply = self._warm._reply(0)
            if reply is not None:
                self.returncode = reply['rc']
        return self.returncode

    def wait(self, timeout: Optional[float] = None) -> int:
        if self.returncode is None:
            reply = self._warm._reply(timeout)
            if reply is None:
                raise subprocess.TimeoutExpired(self.args, timeout)
            self.returncode = reply['rc']
        return self.returncode

    def send_signal(self, sig: int) -> None:
        if self.poll() is None:
            os.kill(self.pid, sig)

    def kill(self) -> None:
        self.send_signal(signal.SIGKILL)


def _read(path: str) -> str:
    if not osp.exists(path):
        return ''
    with open(path, errors='replace') as f:
        return f.read()


if __name__ == '__main__':
    serve()
