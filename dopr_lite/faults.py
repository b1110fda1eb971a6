"""Crash-test hooks: kill the process at an exact place, on request.

The reliability tests set ``$DOPR_FAULT`` to ``point:step`` (``checkpoint``,
``metrics`` or ``eval``, and a step number) to SIGKILL a run half way
through a checkpoint or a log line, then check that it resumes exactly.
Unset, a hook costs one dictionary lookup.
"""

from __future__ import annotations

import os
import signal


def fault(point: str, step: int) -> bool:
    """True where ``$DOPR_FAULT`` asks to crash at ``point`` of ``step``."""
    return os.environ.get("DOPR_FAULT") == f"{point}:{step}"


def die() -> None:
    """SIGKILL this process: no cleanup, no flush, as a power cut."""
    os.kill(os.getpid(), signal.SIGKILL)
