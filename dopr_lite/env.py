"""The run environment: seeds, the preset in use, package versions, paths.

A notebook's first cell calls these three, so that what it ran with is
visible in its output:

    set_seed(0)
    cfg = preset_config()      # DOPR_PRESET=tiny (default) | consumer_gpu
    print(versions())
"""

from __future__ import annotations

import os
import platform
import random
import sys
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

import numpy as np
import torch

from dopr_lite.config import PRESETS, DoprConfig
from dopr_lite.errors import ConfigError

try:
    import resource
except ImportError:  # Windows has no getrusage
    resource = None


def set_seed(seed: int) -> None:
    """Seed Python, NumPy and torch (CPU and CUDA)."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def preset_name() -> str:
    """The preset ``$DOPR_PRESET`` names (default ``tiny``)."""
    name = os.environ.get("DOPR_PRESET", "tiny")
    if name not in PRESETS:
        raise ConfigError(f"DOPR_PRESET={name!r}: use one of "
                          f"{sorted(PRESETS)}")
    return name


def preset_config(**overrides) -> DoprConfig:
    """The preset that ``$DOPR_PRESET`` names, with overrides."""
    return PRESETS[preset_name()](**overrides)


def versions() -> dict:
    """Versions of Python and the packages the results depend on."""
    out = {"python": platform.python_version()}
    for pkg in ("dopr_lite", "torch", "transformers", "peft",
                "bitsandbytes", "datasets", "math-verify"):
        try:
            out[pkg] = version(pkg)
        except PackageNotFoundError:
            out[pkg] = "not installed"
    return out


_CLEAR_REFS = Path("/proc/self/clear_refs")  # Linux: "5" resets VmHWM
_STATUS = Path("/proc/self/status")


def reset_peak_memory() -> None:
    """Start a new peak for :func:`peak_memory_gb`: on CUDA torch's peak
    statistics, on a Linux CPU the process's resident high-water mark
    (``/proc/self/clear_refs``); elsewhere a CPU peak cannot be reset."""
    if torch.cuda.is_available():
        torch.cuda.reset_peak_memory_stats()
    elif _CLEAR_REFS.exists():
        try:
            _CLEAR_REFS.write_text("5")
        except OSError:  # not permitted here: the peak then only grows
            pass


def peak_memory_gb() -> float:
    """Peak memory since the last :func:`reset_peak_memory`: on CUDA the
    peak allocated by torch; on a Linux CPU the process's peak resident
    memory (``VmHWM``); elsewhere the process's peak so far."""
    if torch.cuda.is_available():
        return round(torch.cuda.max_memory_allocated() / 1e9, 3)
    try:
        for line in _STATUS.read_text().splitlines():
            if line.startswith("VmHWM:"):
                return round(int(line.split()[1]) * 1024 / 1e9, 3)
    except OSError:
        pass
    if resource is None:  # Windows
        return float("nan")
    scale = 1 if sys.platform == "darwin" else 1024  # bytes vs KiB
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * scale
    return round(peak / 1e9, 3)


def available_cores() -> int:
    """The cores this process may run on (its affinity where the OS
    reports one: a container's share, not the host's count)."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def hub_offline(datasets: bool = False) -> bool:
    """Whether ``$HF_HUB_OFFLINE`` (for datasets also
    ``$HF_DATASETS_OFFLINE``) forbids downloads, read as huggingface_hub
    reads it."""
    names = ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE")[:2 if datasets else 1]
    return any(os.environ.get(v, "").strip().lower() in (
        "1", "true", "yes", "on") for v in names)


def project_root() -> Path:
    """The repo checkout this package runs from, else the working dir."""
    here = Path(__file__).resolve().parent.parent
    return here if (here / "pyproject.toml").is_file() else Path.cwd()


def runs_dir(name: str) -> str:
    """Where a notebook's run ``name`` writes: ``$DOPR_RUNS/name`` or
    ``<repo>/runs/name`` (never the notebook's working directory)."""
    root = Path(os.environ.get("DOPR_RUNS", project_root() / "runs"))
    return str(root / name)
