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

A tool's own runs of ``[sys.executable, script.py, ...]`` (the ablation
runner's trainings, the benchmark's models) and ``[sys.executable, -m,
module, ...]`` (the DDP launchers, whose workers are ``[sys.executable,
-u, script.py, ...]``) fork too: in a fork, ``sys.executable`` is a shim
that sends the run, with its stdin, stdout and stderr, to the warm
interpreter over a socket, passes signals on to it, and exits with its
status; if the shim is killed, so is the run. Any other command the shim
is given is the interpreter itself. A shell script's ``$PYTHON`` can be
the shim too (:meth:`WarmPython.shim`).

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
import socket
import subprocess
import sys
import tempfile
from typing import Dict, List, Optional, Set

# the stack every tool imports; nothing of mmdssd's
PRELOAD = ('torch', 'cv2', 'scipy.optimize', 'matplotlib',
           'pycocotools.cocoeval', 'mmengine.runner', 'mmcv.ops', 'mmcv.cnn',
           'mmdet.models', 'mmdet.datasets', 'mmdet.evaluation',
           'mmdet.visualization', 'mmdet.engine')

# variables that the preloaded libraries read when they are imported
IMPORT_TIME_ENV = ('OMP_', 'GOMP_', 'KMP_', 'MKL_', 'OPENBLAS_', 'DNNL_',
                   'ONEDNN_', 'TORCH_', 'ATEN_', 'OPENCV_', 'MPL', 'PYTHON',
                   'LD_', 'MALLOC_')


# ... but not these: read when they are used (the DDP launcher sets the
# last for its workers, and only NCCL reads it), or not by Python at all
# (a shell script's ``$PYTHON``)
RUN_TIME_ENV = ('PYTHONPATH', 'PYTHON', 'TORCH_NCCL_ASYNC_ERROR_HANDLING')


def _import_time_items(env: Dict[str, str]) -> Dict[str, str]:
    return {
        key: value
        for key, value in env.items()
        if key.startswith(IMPORT_TIME_ENV) and key not in RUN_TIME_ENV
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


def _open_streams(out: str, err: Optional[str]) -> List[int]:
    """stdin from /dev/null, stdout on ``out``, stderr on ``err`` (or on
    ``out``)."""
    flags = os.O_WRONLY | os.O_CREAT | os.O_TRUNC
    fds = [os.open(os.devnull, os.O_RDONLY), os.open(out, flags)]
    return fds + [os.open(err, flags) if err else fds[1]]


def _unbuffered() -> None:
    """stdout and stderr written through at once, as ``python -u`` has
    them."""
    import io
    for name in ('stdout', 'stderr'):
        stream = getattr(sys, name)
        setattr(sys, name, io.TextIOWrapper(
            io.FileIO(stream.fileno(), 'w', closefd=False),
            encoding=stream.encoding, errors=stream.errors,
            write_through=True))


def _run_main(argv: List[str], base_path: List[str]) -> None:
    """``python script.py ...`` or ``python -m module ...`` as
    ``__main__``, with the ``sys.argv`` and ``sys.path`` a new interpreter
    gives it: first the script's folder (the cwd for a module), then
    ``PYTHONPATH``."""
    import importlib
    import runpy
    pythonpath = os.environ.get('PYTHONPATH')
    extra = [osp.abspath(p) for p in pythonpath.split(os.pathsep)
             ] if pythonpath else []
    module = argv[1] if argv[0] == '-m' else None
    first = os.getcwd() if module else osp.dirname(osp.realpath(argv[0]))
    sys.path[:] = [first] + extra + base_path
    # for a module, runpy puts its file in sys.argv[0] while it runs
    sys.argv[:] = argv[1:] if module else argv
    importlib.invalidate_caches()
    if module:
        runpy.run_module(module, run_name='__main__', alter_sys=True)
    else:
        runpy.run_path(argv[0], run_name='__main__')


def _redirect(fds: List[int], owned: Set[int]) -> None:
    """``fds`` become stdin, stdout and stderr, and none of the server's
    own descriptors stays open, as in a new process."""
    for target, fd in enumerate(fds):
        os.dup2(fd, target)
    for fd in (set(fds) | owned) - {0, 1, 2}:
        os.close(fd)


def _run_in_fork(request: dict, fds: List[int], owned: Set[int],
                 server: '_Server') -> None:
    """The forked child: become ``python argv...`` and exit; never
    returns into the server's loop."""
    code = 1
    try:
        _redirect(fds, owned)
        os.chdir(request['cwd'])
        os.environ.clear()
        os.environ.update(request['env'])
        os.environ.update(server.set_by_imports)
        if request.get('unbuffered'):
            _unbuffered()
        # the tool's own runs of this interpreter fork too
        sys.executable = server.shim_path
        try:
            _run_main(request['argv'], server.base_path)
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


def _shim_path(folder: str) -> str:
    """Where the server writes the shim, in the client's folder."""
    return osp.join(folder, 'python')


SHIM = """#!{python} -S
import sys
sys.path.insert(0, {folder!r})
import warm_python
warm_python.shim({socket!r}, {python!r})
"""


class _Shim:
    """A shim's connection to the server, and the run it asked for."""

    def __init__(self, conn: socket.socket) -> None:
        self.conn, self.fd = conn, conn.fileno()
        self.data = b''
        self.fds: List[int] = []  # its stdin, stdout, stderr, until forked
        self.pid: Optional[int] = None  # the run, until it is reaped
        self.watched = True  # until the shim ends: then its run is killed


class _Server:
    """One loop, in the main thread, over the requests on stdin (the
    suite's) and on a socket (a tool's ``subprocess`` runs through the
    shim); each request forks, and its exit status goes back to where it
    came from."""

    def __init__(self, folder: str) -> None:
        import importlib
        started = dict(os.environ)
        for name in PRELOAD:
            importlib.import_module(name)
        self.base_path = sys.path[1:]  # started without PYTHONPATH
        # what the imports set (cv2 its library path, torch KMP_*): a new
        # interpreter's tool has it from its own imports, and passes it on
        self.set_by_imports = {
            key: value
            for key, value in os.environ.items() if started.get(key) != value
        }
        self.env_items = (_import_time_items(started),
                          _import_time_items(dict(os.environ)))
        self.listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.listener.bind(osp.join(folder, 'socket'))
        self.listener.listen()
        self.shim_path = _shim_path(folder)
        with open(self.shim_path, 'w') as f:
            f.write(SHIM.format(python=sys.executable,
                                folder=osp.dirname(osp.abspath(__file__)),
                                socket=self.listener.getsockname()))
        os.chmod(self.shim_path, 0o755)
        self.stdin = b''
        self.shims: Dict[int, _Shim] = {}  # by descriptor
        self.children: Dict[int, tuple] = {}  # pidfd: (pid, _Shim or None)

    def owned(self) -> Set[int]:
        fds = {self.listener.fileno(), *self.shims, *self.children}
        for each in self.shims.values():
            fds.update(each.fds)
        return fds

    def fork(self, request: dict, fds: List[int],
             shim: Optional[_Shim]) -> int:
        _flush()  # nothing buffered to be written twice
        pid = os.fork()
        if pid == 0:
            _run_in_fork(request, fds, self.owned(), self)
        self.children[os.pidfd_open(pid)] = (pid, shim)
        return pid

    def serve(self) -> None:
        print(json.dumps(dict(ready=True)), flush=True)
        while True:
            watched = [fd for fd, each in self.shims.items() if each.watched]
            # one at a time: handling one closes and opens descriptors,
            # so the others' numbers may no longer mean what select saw
            fd = select.select([0, self.listener, *watched, *self.children],
                               [], [])[0][0]
            if fd is self.listener:
                shim = _Shim(self.listener.accept()[0])
                self.shims[shim.fd] = shim
            elif fd == 0:
                if not self.from_stdin():
                    return
            elif fd in self.children:
                self.reap(fd)
            else:
                shim = self.shims[fd]
                try:
                    self.from_shim(shim)
                except (OSError, ValueError):
                    if self.shims.get(fd) is shim:
                        self.close(shim)  # the shim execs instead

    def from_stdin(self) -> bool:
        chunk = os.read(0, 1 << 16)
        if not chunk:
            return False
        self.stdin += chunk
        while b'\n' in self.stdin:
            line, self.stdin = self.stdin.split(b'\n', 1)
            request = json.loads(line)
            fds = _open_streams(request['out'], request['err'])
            pid = self.fork(request, fds, None)
            for fd in set(fds):
                os.close(fd)
            print(json.dumps(dict(pid=pid)), flush=True)
        return True

    def from_shim(self, shim: _Shim) -> None:
        if shim.pid is not None:  # the shim ended or was killed: so does
            if not shim.conn.recv(1):  # its run
                os.kill(shim.pid, signal.SIGKILL)
                shim.watched = False
            return
        chunk, fds, _, _ = socket.recv_fds(shim.conn, 1 << 16, 3)
        shim.fds += fds
        shim.data += chunk
        if not chunk:  # gone before it asked
            self.close(shim)
            return
        if b'\n' not in shim.data:
            return
        request = json.loads(shim.data)
        if _import_time_items(request['env']) not in self.env_items:
            shim.conn.sendall(b'{"refused": true}\n')
            self.close(shim)
            return
        shim.pid = self.fork(request, shim.fds, shim)
        for fd in set(shim.fds):
            os.close(fd)
        shim.fds = []
        shim.conn.sendall(json.dumps(dict(pid=shim.pid)).encode() + b'\n')

    def reap(self, pidfd: int) -> None:
        pid, shim = self.children.pop(pidfd)
        os.close(pidfd)
        reply = json.dumps(dict(rc=os.waitstatus_to_exitcode(
            os.waitpid(pid, 0)[1])))
        if shim is None:
            print(reply, flush=True)
        elif self.shims.get(shim.fd) is shim:
            shim.pid = None  # reaped: nothing left to kill
            try:
                shim.conn.sendall(reply.encode() + b'\n')
            except OSError:
                pass  # the shim is gone
            self.close(shim)

    def close(self, shim: _Shim) -> None:
        del self.shims[shim.fd]
        if shim.pid is not None:  # its shim can no longer hear how it ends
            os.kill(shim.pid, signal.SIGKILL)
        for fd in set(shim.fds):
            os.close(fd)
        shim.conn.close()


def serve() -> None:
    """Import the stack, then fork once per request read from stdin (or
    from the shim); write the child's pid, then its exit status, each as
    a line of JSON."""
    _Server(sys.argv[1]).serve()


# ----------------------------------------------------------------- the shim


def shim(address: str, python: str) -> None:
    """``python [-u] script.py args`` or ``python [-u] -m module args``
    started by a tool in a fork: run as a fork of the warm interpreter
    too, on this process's stdin, stdout and stderr, and exit as it exits;
    anything else, or a refused run, is the interpreter itself
    (``exec``)."""
    argv = sys.argv[1:]
    unbuffered = argv[:1] == ['-u']
    run = argv[1:] if unbuffered else argv
    if run and (run[0] == '-m' and len(run) > 1 or
                run[0].endswith('.py') and osp.isfile(run[0])):
        started = _request(address, run, unbuffered)
        if started is not None:
            _follow(*started)
    os.execv(python, [python] + argv)


def _request(address: str, argv: List[str], unbuffered: bool):
    """The forked run's pid and the server's replies, or None where the
    server refused it or cannot be asked."""
    try:
        conn = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        conn.connect(address)
        request = dict(argv=argv, cwd=os.getcwd(), env=dict(os.environ),
                       unbuffered=unbuffered)
        socket.send_fds(conn, [json.dumps(request).encode() + b'\n'],
                        [0, 1, 2])
        replies = conn.makefile('rb')
        reply = json.loads(replies.readline() or b'{}')
    except OSError:  # no server, or a closed stdin/stdout/stderr
        return None
    return (reply['pid'], replies) if 'pid' in reply else None


def _follow(pid: int, replies) -> None:
    """Pass signals on to the run ``pid``, and exit with its status."""
    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP,
                signal.SIGQUIT, signal.SIGUSR1, signal.SIGUSR2):
        signal.signal(sig, lambda sig, _: os.kill(pid, sig))
    line = replies.readline()
    code = json.loads(line)['rc'] if line else -signal.SIGKILL
    if code < 0:
        signal.signal(-code, signal.SIG_DFL)
        os.kill(os.getpid(), -code)
    os._exit(code)


# ---------------------------------------------------------------- the client


def _python_script(cmd: List[str]) -> bool:
    """Whether ``cmd`` is ``python script.py ...``, or this interpreter
    and a console script (``mim``) whose ``#!`` line names it."""
    if cmd[0] != sys.executable or not osp.isfile(cmd[1]):
        return False
    if cmd[1].endswith('.py'):
        return True
    with open(cmd[1], 'rb') as f:
        return f.readline().rstrip() == b'#!' + sys.executable.encode()


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
        self._folder: Optional[str] = None
        self._log = None
        self._buffer = b''
        self._running: Optional[WarmProcess] = None

    def can_run(self, cmd: List[str], env: Dict[str, str]) -> bool:
        return (len(cmd) >= 2 and _python_script(cmd)
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

    def shim(self) -> str:
        """The shim as a ``python`` for commands that start one themselves
        (a shell script's ``$PYTHON``): their ``python script.py`` and
        ``python -m module`` runs fork from the warm interpreter too."""
        self._server()
        return _shim_path(self._folder)

    def _server(self) -> subprocess.Popen:
        if self._proc is None or self._proc.poll() is not None:
            self._log = tempfile.TemporaryFile()
            self._buffer = b''
            folder = tempfile.mkdtemp(prefix='warm_python_')  # socket, shim
            self._folder = folder
            self._proc = subprocess.Popen(
                [sys.executable, osp.abspath(__file__), folder],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=self._log,
                env=self.env,
                cwd=osp.dirname(osp.abspath(__file__)),
                bufsize=0)
            atexit.register(_stop, self._proc, folder)
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


def _stop(proc: subprocess.Popen, folder: str) -> None:
    import shutil
    proc.kill()
    proc.wait()
    shutil.rmtree(folder, ignore_errors=True)


def _read(path: str) -> str:
    if not osp.exists(path):
        return ''
    with open(path, errors='replace') as f:
        return f.read()


if __name__ == '__main__':
    serve()
