"""Writing a file so that a crash never leaves half of it.

:func:`write_atomic` is the one way the package replaces a small file it
keeps (a run's config, its logs, a pre-flight report, the TRL selector's
state): the text goes to a temp file in the same folder, is flushed to disk
(``fsync``), and ``os.replace`` swaps it in, so a reader, or a run resumed
after a crash, sees the old file or the new one, never a torn one.
"""

from __future__ import annotations

import os
from pathlib import Path


def write_atomic(path, text: str) -> Path:
    """Replace ``path`` with ``text`` atomically (temp file in the same
    folder, fsync, ``os.replace``); the folder must exist."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp")  # same folder: same disk
    try:
        with open(tmp, "w") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return path
