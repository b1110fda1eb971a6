import threading

import pytest

from dopr_lite.sandbox import (Sandbox, SandboxCrash, SandboxError,
                               SandboxTimeout)

HANG = 600  # seconds: only a hung call waits this long (a guard, not a bound)


def test_deadline_kills_the_worker_and_the_next_call_gets_a_new_one():
    """The mechanism, not the clock: a call that outlives the deadline
    raises SandboxTimeout (it does not wait for the hour-long sleep), its
    worker process is killed, and the next call starts a new one."""
    box = Sandbox("time:sleep", deadline=5)
    try:
        assert box(0) is None
        worker = box._proc
        with pytest.raises(SandboxTimeout):
            box(3600)
        assert worker.poll() is not None  # killed, not left sleeping
        assert box(0) is None
        assert box._proc is not worker
        assert (box.starts, box.timeouts) == (2, 1)
    finally:
        box.close()


def test_an_error_in_the_call_is_reported_and_the_worker_survives():
    box = Sandbox("math:sqrt", deadline=10)
    try:
        assert box(4.0) == 2.0
        with pytest.raises(SandboxCrash, match="ValueError"):
            box(-1.0)
        assert box(9.0) == 3.0 and box.starts == 1
    finally:
        box.close()


def test_a_worker_that_cannot_start_raises():
    box = Sandbox("no_such_module_xyz:f", startup=30)
    with pytest.raises(SandboxError, match="failed to start"):
        box(1)


def test_calls_from_threads_are_serialised():
    box = Sandbox("math:factorial", deadline=10)
    out = {}

    def call(n):
        out[n] = box(n)

    try:
        threads = [threading.Thread(target=call, args=(n,)) for n in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(HANG)
        assert out == {0: 1, 1: 1, 2: 2, 3: 6, 4: 24, 5: 120, 6: 720,
                       7: 5040}
    finally:
        box.close()
