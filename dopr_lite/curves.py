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
from scipy.stats import bootstrap

NOT_REACHED = math.inf


def reached(x) -> bool:
    """Whether a crossing is a reach: not NOT_REACHED, and not the nan
    (or None) that records made before this convention hold."""
    return x is not None and math.isfinite(x)


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


def on_grid(runs: list[list[dict]], points: int = 401,
            axis: str = "rollouts"):
    """(grid, accuracy per run on it): ``points`` points from 0 to the
    longest run's end."""
    xys = [xy(e, axis) for e in runs]
    grid = np.linspace(0, max(x[-1] for x, _ in xys), points)
    return grid, np.stack([np.interp(grid, x, y) for x, y in xys])


def mean_reach(runs: list[list[dict]], target: float,
               per_seed: bool = False, points: int = 401,
               axis: str = "rollouts"):
    """Where the seed-mean curve of ``runs`` (with ``per_seed``: each
    run's curve) first reaches ``target`` on :func:`on_grid`'s grid,
    between evaluations by interpolation (NOT_REACHED where it never
    does).  The seed mean needs the seeds there at once: a statistic of
    the mean run, not the mean of the seeds' crossings."""
    grid, acc = on_grid(runs, points, axis)
    rows = acc if per_seed else acc.mean(0, keepdims=True)
    out = []
    for row in rows:
        hit = np.nonzero(row >= target)[0]
        out.append(float(grid[hit[0]]) if len(hit) else NOT_REACHED)
    return out if per_seed else out[0]


def late_gain(runs: list[list[dict]], share: float = 0.25) -> float:
    """What the seed-mean curve gained over its last ``share`` of the
    budget (a flat curve: a target not reached is a plateau, not a
    cut-off)."""
    grid, acc = on_grid(runs)
    m = acc.mean(0)
    return float(m[-1] - np.interp((1 - share) * grid[-1], grid, m))


def fmt_reach(x, spec: str = ".0f", missing: str = "not reached") -> str:
    """A crossing (or anything that may be NOT_REACHED, nan or None) as
    text: the one formatter of "not reached"."""
    return missing if x is None or not reached(x) else format(x, spec)


def dips(evals: list[dict]) -> dict:
    """How far the run fell: ``end_below_peak`` (its best evaluation minus
    its last) and ``dip`` (the largest fall below its running best), in
    accuracy (0-1)."""
    _, y = xy(evals)
    best = np.maximum.accumulate(y)
    return {"end_below_peak": float(y.max() - y[-1]),
            "dip": float((best - y).max())}


def mean_se(diffs) -> dict:
    """The mean of paired differences (one a seed) and its standard error
    over the pairs (ddof = 1; nan with fewer than two pairs):
    ``{"mean", "se", "pairs"}``.  The quick reading beside :func:`interval`'s
    bootstrap, for the small seed counts of notebooks and design tables."""
    d = np.asarray(diffs, dtype=float)
    return {"mean": float(d.mean()) if len(d) else math.nan,
            "se": float(d.std(ddof=1) / np.sqrt(len(d))) if len(d) > 1
            else math.nan,
            "pairs": len(d)}


def interval(statistic, *samples, paired: bool = True, level: float = 0.95,
             resamples: int = 10_000, seed: int = 0) -> dict:
    """``statistic(*samples)`` with a bootstrap ``level`` interval over the
    samples' entries (seeds): percentile intervals from
    ``scipy.stats.bootstrap``, resampling the seeds of paired samples
    together.  Percentile, not BCa, because crossings may be NOT_REACHED.
    Returns ``{"value", "low", "high", "n"}``."""
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
    low, high = res.confidence_interval
    if not (low == low and high == high):  # some resamples undefined
        dist = res.bootstrap_distribution  # (e.g. two medians not reached)
        tail_ = 100 * (1 - level) / 2
        low, high = np.nanpercentile(dist, [tail_, 100 - tail_])
    return {"value": value, "low": float(low), "high": float(high), "n": n}


def excludes_zero(iv: dict, at: float = 0.0) -> bool:
    """Whether an :func:`interval` lies wholly on one side of ``at``."""
    return iv["low"] > at or iv["high"] < at
