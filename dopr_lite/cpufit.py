"""A CPU timed as a card: the step-time model's two parameters fitted to
measured steps.

A CPU has no public spec sheet to read, so :func:`fit_cpu` treats it as
:data:`dopr_lite.steptime.CPU_NOMINAL` with its bandwidth and throughput
both scaled by one fitted factor, and the host's per-layer overhead the
other parameter; the passes are :func:`dopr_lite.steptime.passes`, as on a
card.  ``bench/time_model.py`` and ``bench/gpu_time.py`` fit on one
setting and predict the rest.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import numpy as np

from dopr_lite.steptime import CPU_NOMINAL, Card, Efficiency, Workload, passes


@dataclass(frozen=True)
class Fit:
    """A CPU fitted as a card: the card, the efficiency (the overhead
    fitted, the shares 1: the scale holds them) and the fit's root mean
    square error in seconds per part."""

    card: Card
    eff: Efficiency
    rms_s: float


def _grid_loss(works: list, measured: np.ndarray, scales: np.ndarray,
               overheads: np.ndarray) -> np.ndarray:
    """Squared error of every (scale, overhead) pair on the grid."""
    loss = np.zeros((len(scales), len(overheads)))
    for w, target in zip(works, measured, strict=True):
        parts = {"rollout": 0.0, "update": 0.0}
        for p in passes(w):
            base = max(p.flops / (CPU_NOMINAL.bf16_tflops * 1e12),
                       p.bytes / (CPU_NOMINAL.bandwidth_gbs * 1e9))
            floor = w.dims.layers * overheads[None, :] * p.floor
            key = "update" if p.part == "update" else "rollout"
            parts[key] = parts[key] + p.count * np.maximum(
                base / scales[:, None], floor)
        loss += ((parts["rollout"] - target[0]) ** 2
                 + (parts["update"] - target[1]) ** 2)
    return loss


def fit_cpu(workloads: list[Workload], rollout_seconds, update_seconds,
            points: int = 97) -> Fit:
    """Fit a CPU as a card to measured steps: ``rollout_seconds`` (the
    generate calls and the entropy pass) and ``update_seconds`` per
    workload.

    Two parameters, no others: a throughput scale ``s`` (the card is
    :data:`CPU_NOMINAL` with bandwidth and TFLOPS both times ``s``, the
    efficiency shares 1) and the per-layer overhead.  Least squares on a
    log grid of ``points`` x ``points`` values (scale 1e-3..1e3, overhead
    1 us..100 ms), then the same grid again over a quarter decade around
    the best pair; one setting's steps suffice, the others are for
    prediction.
    """
    measured = np.column_stack([rollout_seconds, update_seconds])
    scales, overheads = np.logspace(-3, 3, points), np.logspace(-6, -1,
                                                                points)
    for _ in range(2):
        loss = _grid_loss(workloads, measured, scales, overheads)
        i, j = np.unravel_index(np.argmin(loss), loss.shape)
        s, o = scales[i], overheads[j]
        scales = s * np.logspace(-0.125, 0.125, points)
        overheads = o * np.logspace(-0.125, 0.125, points)
    card = replace(CPU_NOMINAL, bandwidth_gbs=CPU_NOMINAL.bandwidth_gbs * s,
                   bf16_tflops=CPU_NOMINAL.bf16_tflops * s)
    rms = math.sqrt(float(loss.min()) / (2 * len(workloads)))
    return Fit(card, Efficiency(1.0, 1.0, float(o)), rms)
