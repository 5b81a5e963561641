"""The benchmarks' one timing helper."""
import itertools
import time

import pytest

from mmdssd.utils.timing import endless, summarize, time_calls, time_in_turns


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
