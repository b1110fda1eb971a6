"""What a run leaves behind, and how to read it.

* :class:`RunLog`: a run folder's ``metrics.jsonl`` (one row per step) and
  ``eval.jsonl`` (one row per evaluation), appended line by line as the run
  goes, and ``metrics.csv`` at the end;
* :class:`RunResult`: those rows and the rollout counts, in memory;
* :func:`summary_table`, :func:`curves`: a text table of runs, and their
  held-out accuracy on a common grid of rollouts, updates or seconds;
* :class:`Progress`: the console's progress bar over the budget.
"""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from tqdm.auto import tqdm

from dopr_lite.faults import die, fault
from dopr_lite.files import write_atomic
from dopr_lite.rollout import RolloutCounter

AXES = {"rollouts": "rollouts (train + probe)",
        "updates": "policy updates", "train_seconds": "training time (s)"}


@dataclass
class RunResult:
    out_dir: Path
    metrics: list = field(default_factory=list)  # one row per step
    evals: list = field(default_factory=list)  # one row per evaluation
    counter: RolloutCounter = field(default_factory=RolloutCounter)
    seconds: float = 0.0

    @property
    def base_accuracy(self) -> float:
        return self.evals[0]["accuracy"]

    @property
    def final_accuracy(self) -> float:
        return self.evals[-1]["accuracy"]


def read_log(path: Path, max_step: int, log=print) -> list[dict]:
    """A log's rows up to ``max_step``, leniently: a torn line (a crash
    mid-write) is dropped with a warning, not an error (data files are
    read strictly: :func:`dopr_lite.data.read_jsonl`)."""
    if not path.is_file():
        return []
    rows = []
    for n, line in enumerate(path.read_text().splitlines(), 1):
        try:
            rows.append(json.loads(line))
        except ValueError:
            if line.strip():
                log(f"warning: {path}: line {n} is incomplete (a crash "
                    "mid-write); dropped")
    return [r for r in rows if r["step"] <= max_step]


def write_jsonl(path: Path, rows: list[dict]) -> None:
    """Replace ``path`` with ``rows``, atomically."""
    write_atomic(path, "".join(json.dumps(r) + "\n" for r in rows))


def write_csv(path: Path, rows: list[dict]) -> None:
    keys = list(dict.fromkeys(k for r in rows for k in r))
    with open(path, "w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=keys)
        w.writeheader()
        w.writerows(rows)


class RunLog:
    """The logs of a run folder, resumed at ``step``.

    Rows written after that step belong to a run that crashed after its
    last checkpoint and are dropped, as is a torn last line; ``step=0``
    with ``fresh=True`` starts empty logs.
    """

    def __init__(self, out_dir: Path, step: int, fresh: bool, log=print):
        self.out = Path(out_dir)
        if fresh:
            for name in ("metrics.jsonl", "eval.jsonl"):
                (self.out / name).unlink(missing_ok=True)
        self.metrics = read_log(self.out / "metrics.jsonl", step, log)
        self.evals = read_log(self.out / "eval.jsonl", step, log)
        write_jsonl(self.out / "metrics.jsonl", self.metrics)
        write_jsonl(self.out / "eval.jsonl", self.evals)

    def _append(self, name: str, rows: list, row: dict) -> None:
        rows.append(row)
        line = json.dumps(row) + "\n"
        with open(self.out / f"{name}.jsonl", "a") as fh:
            if fault(name, row["step"]):  # a torn line, then death
                fh.write(line[:len(line) // 2])
                fh.flush()
                die()
            fh.write(line)

    @property
    def last_metrics(self) -> dict:
        """The newest metrics row ({} before the first step)."""
        return self.metrics[-1] if self.metrics else {}

    def add_metrics(self, row: dict) -> None:
        self._append("metrics", self.metrics, row)

    def add_eval(self, row: dict) -> None:
        self._append("eval", self.evals, row)

    def write_csv(self) -> None:
        write_csv(self.out / "metrics.csv", self.metrics)


class Progress:
    """A progress bar over the budget (rollouts if set, else steps), with
    the last train reward and held-out accuracy; silent when off."""

    def __init__(self, cfg, counter: RolloutCounter, step: int, on: bool):
        by_rollouts = bool(cfg.max_rollouts)
        self.counter, self.by_rollouts = counter, by_rollouts
        self.bar = tqdm(
            total=cfg.max_rollouts if by_rollouts else cfg.max_steps,
            initial=counter.cost if by_rollouts else step,
            desc="rollouts" if by_rollouts else "steps",
            unit="ro" if by_rollouts else "step") if on else None
        self.last = counter.cost

    def update(self, row: dict, accuracy: float) -> None:
        if self.bar is not None:
            self.bar.update(self.counter.cost - self.last
                            if self.by_rollouts else 1)
            self.bar.set_postfix(reward=f"{row['reward_mean']:.2f}",
                                 acc=f"{accuracy:.3f}")
        self.last = self.counter.cost

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


def summary_table(results: dict[str, RunResult], seconds: bool = True) -> str:
    """A short text table: base/final accuracy, gain, rollouts, steps and
    (``seconds``) wall time; a ``pass@k`` column only where a run measured
    it."""
    def pass_at_k(r):
        return next((v for k, v in r.evals[-1].items()
                     if k.startswith("pass@")), None)

    with_pk = any(pass_at_k(r) is not None for r in results.values())
    head = (f"{'run':<14}{'base acc':>9}{'final acc':>10}{'gain':>7}"
            + (f"{'pass@k':>8}" if with_pk else "")
            + f"{'rollouts':>10}{'tokens':>9}{'steps':>6}"
            + (f"{'time s':>8}" if seconds else ""))
    lines = [head, "-" * len(head)]
    for name, r in results.items():
        pk = pass_at_k(r)
        lines.append(
            f"{name:<14}{r.base_accuracy:>9.3f}{r.final_accuracy:>10.3f}"
            f"{r.final_accuracy - r.base_accuracy:>+7.3f}"
            + (f"{pk if pk is not None else float('nan'):>8.3f}"
               if with_pk else "")
            + f"{r.counter.cost:>10d}{r.counter.cost_tokens:>9d}"
            f"{len(r.metrics):>6d}"
            + (f"{r.seconds:>8.1f}" if seconds else ""))
    return "\n".join(lines)


def curves(runs: list[RunResult], axis: str = "rollouts",
           grid: np.ndarray | None = None, points: int = 101):
    """(grid, accuracy per seed on the grid) along ``axis`` (one of
    :data:`AXES`): linear interpolation between evaluations, held at the
    last value after a run's end."""
    xs = [np.array([e[axis] for e in r.evals], dtype=float) for r in runs]
    ys = [np.array([e["accuracy"] for e in r.evals]) for r in runs]
    if grid is None:
        grid = np.linspace(0, max(x[-1] for x in xs), points)
    return grid, np.stack([np.interp(grid, x, y) for x, y in zip(
        xs, ys, strict=True)])
