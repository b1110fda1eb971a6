"""The run environment: seeds, the active profile, package versions.

A notebook's first cell calls these three, so that what it ran with is
visible in its output:

    set_seed(0)
    cfg = profile_config()      # DOPR_PROFILE=tiny (default) | consumer_gpu
    print(versions())
"""

from __future__ import annotations

import os
import platform
import random
import sys
from pathlib import Path

from dopr_lite.config import ConfigError, DoprConfig

PROFILES = {"tiny": DoprConfig.tiny, "consumer_gpu": DoprConfig.consumer_gpu}


def set_seed(seed: int) -> None:
    """Seed Python, NumPy (if present) and torch (CPU and CUDA)."""
    import torch

    random.seed(seed)
    try:
        import numpy as np

        np.random.seed(seed % 2**32)
    except ImportError:
        pass
    torch.manual_seed(seed)


def profile_name() -> str:
    return os.environ.get("DOPR_PROFILE", "tiny")


def profile_config(**overrides) -> DoprConfig:
    """The preset that ``DOPR_PROFILE`` names, with overrides."""
    name = profile_name()
    if name not in PROFILES:
        raise ConfigError(f"DOPR_PROFILE={name!r}: use one of "
                          f"{sorted(PROFILES)}")
    return PROFILES[name](**overrides)


def versions() -> dict:
    """Versions of Python and the packages the results depend on."""
    from importlib.metadata import PackageNotFoundError, version

    out = {"python": platform.python_version()}
    for pkg in ("dopr_lite", "torch", "transformers", "peft",
                "bitsandbytes", "datasets", "math-verify"):
        try:
            out[pkg] = version(pkg)
        except PackageNotFoundError:
            out[pkg] = "not installed"
    return out


def reset_peak_memory() -> None:
    """Start a new peak for :func:`peak_memory_gb` (CUDA only: a process's
    peak resident memory cannot be reset)."""
    import torch

    if torch.cuda.is_available():
        torch.cuda.reset_peak_memory_stats()


def peak_memory_gb() -> float:
    """Peak device memory since the last reset on CUDA (allocated by
    torch); on CPU the process's peak resident memory so far."""
    import torch

    if torch.cuda.is_available():
        return round(torch.cuda.max_memory_allocated() / 1e9, 3)
    try:
        import resource
    except ImportError:  # Windows
        return float("nan")
    scale = 1 if sys.platform == "darwin" else 1024  # bytes vs KiB
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * scale
    return round(peak / 1e9, 3)


def project_root() -> Path:
    """The repo checkout this package runs from, else the working dir."""
    here = Path(__file__).resolve().parent.parent
    return here if (here / "pyproject.toml").is_file() else Path.cwd()


def runs_dir(name: str) -> str:
    """Where a notebook's run ``name`` writes: ``$DOPR_RUNS/name`` or
    ``<repo>/runs/name`` (never the notebook's working directory)."""
    root = Path(os.environ.get("DOPR_RUNS", project_root() / "runs"))
    return str(root / name)
