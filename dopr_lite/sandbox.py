"""Run a scoring function in a child process with a hard deadline.

Symbolic checkers can hang on model text: math-verify hands ``9^{9^{9^9}}``
to sympy, which then computes a gigantic integer in C.  Its own timeouts use
``signal.alarm``, which works on the main thread only and cannot interrupt
C code that holds the GIL; a thread cannot be stopped at all.  A child
process can: :class:`Sandbox` keeps one worker (``python -m
dopr_lite.sandbox module:function``), sends it one call at a time as a JSON
line, and if no answer comes within ``deadline`` seconds it kills the worker,
starts a new one for the next call and raises :class:`SandboxTimeout`.

Only JSON crosses the boundary (model text in, a number out); nothing is
evaluated.  The worker runs on its own main thread, so the function's own
signal-based timeouts work there too.  Calls are serialised by a lock, so
one sandbox can be shared by threads.
"""

from __future__ import annotations

import atexit
import importlib
import json
import os
import queue
import subprocess
import sys
import threading


class SandboxTimeout(TimeoutError):
    """The call did not finish within the deadline; the worker was killed."""


class SandboxError(RuntimeError):
    """The worker could not start: scoring cannot work at all."""


class SandboxCrash(RuntimeError):
    """The call raised in the worker, or the worker died answering it."""


class Sandbox:
    """Call ``target`` ("module:function") in a child process.

    ``deadline`` bounds one call (seconds); ``startup`` bounds importing the
    target in a fresh worker.
    """

    def __init__(self, target: str, deadline: float = 4.0,
                 startup: float = 120.0):
        self.target, self.deadline, self.startup = target, deadline, startup
        self._proc: subprocess.Popen | None = None
        self._out: queue.Queue | None = None
        self._lock = threading.Lock()
        self.timeouts = 0  # calls killed at the deadline, over the lifetime
        self.starts = 0  # workers started (1 + restarts)
        atexit.register(self.close)

    def _start(self) -> None:
        self._proc = subprocess.Popen(
            [sys.executable, "-m", "dopr_lite.sandbox", self.target],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
            encoding="utf-8", bufsize=1,
            env={**os.environ, "PYTHONIOENCODING": "utf-8"})
        self.starts += 1
        self._out = queue.Queue()
        threading.Thread(target=_pump, args=(self._proc.stdout, self._out),
                         daemon=True).start()
        if self._read(self.startup) != {"ready": True}:
            self.close()
            raise SandboxError(f"sandbox worker for {self.target} failed to "
                               "start (see its stderr above)")

    def _read(self, timeout: float):
        try:
            line = self._out.get(timeout=timeout)
        except queue.Empty:
            return None
        return json.loads(line) if line else {"died": True}

    def __call__(self, *args):
        with self._lock:
            if self._proc is None or self._proc.poll() is not None:
                self._start()
            self._proc.stdin.write(json.dumps(args) + "\n")
            self._proc.stdin.flush()
            reply = self._read(self.deadline)
            if reply is None:
                self.timeouts += 1
                self.close()
                raise SandboxTimeout(
                    f"{self.target} took longer than {self.deadline} s")
            if "ok" in reply:
                return reply["ok"]
            if "err" not in reply:  # it died; the next call starts another
                self.close()
            raise SandboxCrash(f"{self.target} worker: "
                               f"{reply.get('err', 'died without answering')}")

    def close(self) -> None:
        proc, self._proc = self._proc, None
        if proc is not None and proc.poll() is None:
            proc.kill()
            proc.wait()
        if proc is not None:
            for stream in (proc.stdin, proc.stdout):
                try:
                    stream.close()
                except OSError:
                    pass


def _pump(stream, out: queue.Queue) -> None:
    """Move the worker's reply lines onto a queue (b'' when it exits)."""
    for line in stream:
        out.put(line)
    out.put("")


def _serve(target: str) -> None:
    """The worker: JSON-line calls in, ``{"ok": result}`` lines out."""
    # replies go to a private copy of stdout; stray prints go to stderr
    replies = os.fdopen(os.dup(1), "w", encoding="utf-8", buffering=1)
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    module, name = target.split(":")
    fn = getattr(importlib.import_module(module), name)
    replies.write(json.dumps({"ready": True}) + "\n")
    for line in sys.stdin:
        try:
            reply = {"ok": fn(*json.loads(line))}
        except Exception as err:  # reported to the parent, which decides
            reply = {"err": f"{type(err).__name__}: {err}"}
        replies.write(json.dumps(reply) + "\n")


if __name__ == "__main__":
    _serve(sys.argv[1])
