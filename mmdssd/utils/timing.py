"""Wall-clock timing: calls taken in turns, and the process's start."""
import contextlib
import os
import statistics
import time
from typing import (Any, Callable, Dict, Iterable, Iterator, List, Mapping,
                    Optional, Sequence)


def time_in_turns(fns: Mapping[str, Callable[[], Any]],
                  rounds: int,
                  warmup: int = 0,
                  prepare: Optional[Mapping[str, Callable[[], Any]]] = None,
                  sync: Optional[Callable[[], Any]] = None
                  ) -> Dict[str, List[float]]:
    """Seconds of every timed call of each function, the functions taking
    turns: each round calls each function once, so that a change of load
    on a shared machine hits all of them alike.

    Args:
        fns (Mapping[str, Callable]): Functions without arguments, by name.
        rounds (int): Timed calls of each function.
        warmup (int): Untimed rounds before the first timed one.
            Defaults to 0.
        prepare (Mapping[str, Callable], optional): By name, an untimed
            call right before each timed call of that function (to re-warm
            what the others evicted).
        sync (Callable, optional): Called before a timed call starts and
            before it is read (``torch.cuda.synchronize`` on a GPU).

    Returns:
        dict: The seconds of each timed call, in order, by name; the i-th
        entries of all lists come from the same round.
    """
    sync = sync or (lambda: None)
    for _ in range(warmup):
        for fn in fns.values():
            fn()
    times: Dict[str, List[float]] = {name: [] for name in fns}
    for _ in range(rounds):
        for name, fn in fns.items():
            if prepare and name in prepare:
                prepare[name]()
            sync()
            start = time.perf_counter()
            fn()
            sync()
            times[name].append(time.perf_counter() - start)
    return times


def process_start_time() -> float:
    """When this process started, as a :func:`time.time` timestamp.

    Read from the kernel's record of the process (Linux: the start time in
    ``/proc/self/stat``, in clock ticks on the boot-based clock), so that
    it covers the interpreter's start and the imports that ran before the
    caller could take the time itself; where there is no such record, the
    time of the call.
    """
    try:
        with open('/proc/self/stat') as f:
            # the command name, field 2, may hold spaces and parentheses:
            # the fields after its last ')' start at field 3
            fields = f.read().rsplit(')', 1)[1].split()
        ticks = int(fields[22 - 3])
        age = (time.clock_gettime(time.CLOCK_BOOTTIME) -
               ticks / os.sysconf('SC_CLK_TCK'))
    except (OSError, ValueError, IndexError, AttributeError):
        return time.time()
    return time.time() - max(age, 0.0)


def time_calls(fn: Callable[[], Any], rounds: int, warmup: int = 0,
               sync: Optional[Callable[[], Any]] = None) -> List[float]:
    """Seconds of ``rounds`` timed calls of ``fn`` after ``warmup`` untimed
    ones (:func:`time_in_turns` with one function)."""
    return time_in_turns({'fn': fn}, rounds, warmup, sync=sync)['fn']


def summarize(times: Sequence[float]) -> Dict[str, float]:
    """``median``, ``min`` and ``max`` of some timings."""
    return dict(median=statistics.median(times), min=min(times),
                max=max(times))


def endless(loader: Iterable) -> Iterator:
    """The items of ``loader`` pass after pass (a new iterator each pass,
    so a shuffling dataloader reshuffles), for timing more steps than one
    pass holds."""
    while True:
        empty = True
        for item in loader:
            empty = False
            yield item
        if empty:
            raise ValueError('endless: the loader yields nothing')


@contextlib.contextmanager
def runner_environment(cfg) -> Iterator[None]:
    """Set up the process as MMEngine's runner does for ``cfg``
    (``env_cfg.mp_cfg``: OpenCV's threads, the start method), so that
    what is timed inside loads data as training will; OpenCV's threads and
    the start method are put back afterwards.

    Args:
        cfg (Config): The training config whose ``env_cfg`` to apply.
    """
    import cv2
    import torch.multiprocessing as mp
    from mmengine.utils.dl_utils import set_multi_processing
    threads = cv2.getNumThreads()
    method = mp.get_start_method(allow_none=True)
    set_multi_processing(**cfg.get('env_cfg', {}).get('mp_cfg', {}))
    try:
        yield
    finally:
        cv2.setNumThreads(threads)
        if method is not None:
            mp.set_start_method(method, force=True)
