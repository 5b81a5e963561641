"""The benchmarks' one timing helper, and the main job's clock."""
import itertools
import os.path as osp
import time

import pytest

from mmdssd.utils.timing import (endless, process_start_time, summarize,
                                 time_calls, time_in_turns)

from ..conftest import PYTHON, run


def test_turns_alternate_and_time_each_call():
    calls = []
    fns = dict(a=lambda: calls.append('a'),
               b=lambda: (calls.append('b'), time.sleep(0.02)))
    times = time_in_turns(fns, rounds=3, warmup=1,
                          prepare=dict(b=lambda: calls.append('pb')))
    # one warm-up round, then each round: a, then b after its preparation
    assert calls == ['a', 'b'] + ['a', 'pb', 'b'] * 3
    assert len(times['a']) == len(times['b']) == 3
    assert all(t >= 0.02 for t in times['b'])  # the sleep is timed ...
    assert all(t < 0.02 for t in times['a'])   # ... where it happens


def test_sync_brackets_every_timed_call():
    events = []
    time_calls(lambda: events.append('call'), rounds=2,
               sync=lambda: events.append('sync'))
    assert events == ['sync', 'call', 'sync'] * 2


def test_summarize_and_endless():
    assert summarize([3.0, 1.0, 2.0]) == dict(median=2.0, min=1.0, max=3.0)
    passes = []

    class Loader:  # a new iterator each pass, as a dataloader gives

        def __iter__(self):
            passes.append(1)
            return iter([1, 2])

    assert list(itertools.islice(endless(Loader()), 5)) == [1, 2, 1, 2, 1]
    assert len(passes) == 3
    with pytest.raises(ValueError, match='yields nothing'):
        next(endless([]))


@pytest.mark.skipif(not osp.exists('/proc/self/stat'),
                    reason="the kernel's record of the process (Linux)")
def test_process_start_time_is_the_start_not_the_call():
    """A process that sleeps a second before asking still gets the time it
    started: before its first line ran, not when it asked."""
    out = run([
        PYTHON, '-c', 'import time; first = time.time(); time.sleep(1); '
        'from mmdssd.utils.timing import process_start_time; '
        'print(first - process_start_time())'
    ])
    before_first_line = float(out.strip().splitlines()[-1])
    # one clock tick (10 ms) of rounding either way; the interpreter starts
    # in well under the 10 s allowed even beside other tests
    assert -0.02 <= before_first_line < 10


def test_process_start_time_is_the_same_at_every_call():
    first = process_start_time()
    assert first <= time.time()
    assert process_start_time() == pytest.approx(first, abs=0.02)
