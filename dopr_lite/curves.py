"""What a held-out accuracy curve says, measured one way everywhere.

A curve is a run's evaluation rows (``RunResult.evals`` or a benchmark
JSON's copy of them): dicts with ``accuracy`` and the axes ``rollouts``,
``step``, ``updates``.  Between evaluations accuracy is interpolated
linearly and after the run's last one it is held.

One convention for a target never reached: :data:`NOT_REACHED` (infinity),
so that "fewer rollouts is better" orders every run, medians and ranks work
without a special case, and a saving against a run that never got there is
an honest 0.
"""

from __future__ import annotations

import math

import numpy as np

NOT_REACHED = math.inf


def reached(x: float) -> bool:
    """Whether a :func:`first_reach` result is a reach (not NOT_REACHED,
    not nan)."""
    return math.isfinite(x)


def xy(evals: list[dict], axis: str = "rollouts"):
    """The curve as arrays (x along ``axis``, accuracy)."""
    return (np.array([e[axis] for e in evals], dtype=float),
            np.array([e["accuracy"] for e in evals], dtype=float))


def area(evals: list[dict], upto: float | None = None,
         axis: str = "rollouts") -> float:
    """Held-out accuracy averaged along the run over 0..``upto`` (default:
    the run's end): the area under the curve over its width.  A run that
    climbs early scores higher than one that gets to the same end late,
    and one noisy evaluation weighs little."""
    x, y = xy(evals, axis)
    grid = np.linspace(0, upto or x[-1], 257)
    return float(np.interp(grid, x, y).mean())


def tail(evals: list[dict], upto: float, share: float = 0.25,
         axis: str = "rollouts") -> float:
    """Mean accuracy over the last ``share`` of 0..``upto``: where a run
    ends, with less noise than its last evaluation alone."""
    x, y = xy(evals, axis)
    grid = np.linspace((1 - share) * upto, upto, 65)
    return float(np.interp(grid, x, y).mean())


def first_reach(evals: list[dict], target: float,
                axis: str = "rollouts") -> float:
    """Where the run's first evaluation at or above ``target`` was made
    (NOT_REACHED if none was)."""
    x, y = xy(evals, axis)
    hit = np.nonzero(y >= target)[0]
    return float(x[hit[0]]) if len(hit) else NOT_REACHED


def dips(evals: list[dict]) -> dict:
    """How far the run fell: ``end_below_peak`` (its best evaluation minus
    its last) and ``dip`` (the largest fall below its running best), in
    accuracy (0-1)."""
    _, y = xy(evals)
    best = np.maximum.accumulate(y)
    return {"end_below_peak": float(y.max() - y[-1]),
            "dip": float((best - y).max())}


def interval(statistic, *samples, paired: bool = True, level: float = 0.95,
             resamples: int = 10_000, seed: int = 0) -> dict:
    """``statistic(*samples)`` with a bootstrap ``level`` interval over the
    samples' entries (seeds): percentile intervals from
    ``scipy.stats.bootstrap``, resampling the seeds of paired samples
    together.  Percentile, not BCa, because crossings may be NOT_REACHED.
    Returns ``{"value", "low", "high", "n"}``."""
    from scipy.stats import bootstrap

    samples = [np.asarray(s, dtype=float) for s in samples]
    value = float(statistic(*samples))
    n = len(samples[0])
    if n < 2 or len({len(s) for s in samples}) > 1 and paired:
        return {"value": value, "low": math.nan, "high": math.nan, "n": n}
    with np.errstate(invalid="ignore", divide="ignore"):
        res = bootstrap(samples, statistic, paired=paired,
                        vectorized=False, confidence_level=level,
                        n_resamples=resamples, method="percentile",
                        rng=np.random.default_rng(seed))
    ci = res.confidence_interval
    return {"value": value, "low": float(ci.low), "high": float(ci.high),
            "n": n}


def excludes_zero(iv: dict, at: float = 0.0) -> bool:
    """Whether an :func:`interval` lies wholly on one side of ``at``."""
    return iv["low"] > at or iv["high"] < at
