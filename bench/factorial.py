"""What the saving is made of: batch size, learning rate and selection,
separated (issue 34).  The protocol, committed before any run, is in
``bench/README.md`` ("What the saving is made of"); this script is its
executable half: the configurations, the grid, the seeds, the budgets, the
pick, and the runs.

    python bench/factorial.py tune --jobs 2      # design seeds 20-22, the grid
    python bench/factorial.py report --jobs 2    # seeds 0-9 at the tuned rates
    python bench/factorial.py shared --jobs 2    # Q1 at one shared rate
    python bench/factorial.py pools --jobs 2     # hard, easy mixes, seeds 0-4
    python bench/factorial.py plan STAGE         # what a stage would run

Every run lives in ``runs/factorial/<pool>/<config>/lr<rate>/s<seed>/`` and
is resumed (a finished run is read back, not retrained), so a stage can be
stopped and rerun across sessions.  Each stage writes
``bench/results/factorial/<stage>.json``: the command, the versions, the
protocol, and every run's evaluation curve.  ``tune`` also picks each
configuration's rate (and grows the grid where the pick is at its edge).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from dopr_lite.compare import train_all
from dopr_lite.config import DoprConfig
from dopr_lite.curves import area
from dopr_lite.env import available_cores, versions

RESULTS = Path(__file__).parent / "results" / "factorial"
RUNS = Path("runs/factorial")

GRID = (5e-4, 1e-3, 2e-3)  # learning rates every configuration starts from
GRID_LIMITS = (1.25e-4, 1.6e-2)  # the grid grows by factors of 2 up to these
DESIGN_SEEDS = (20, 21, 22)
REPORT_SEEDS = tuple(range(10))
POOL_SEEDS = tuple(range(5))
EVAL_ROLLOUTS = 64  # evaluate every 64 training rollouts (or every step)
G = 8  # rollouts per prompt (the config's default)
N_TEST = 300  # held-out problems, the same 300 for every run (data_seed 0)
EVAL_FIELDS = ("step", "rollouts", "updates", "accuracy")  # kept per eval
POOLS = {  # config fields of each pool mix
    "default": {},
    "hard": {"task_families": {"add": 2, "mul": 2, "max": 1, "word": 1},
             "task_easy": 0.05, "task_hard": 0.30},
    "easy": {"task_easy": 0.35, "task_hard": 0.05},
}


@dataclass(frozen=True)
class Config:
    """One cell of the factorial, without its rate and seed."""

    name: str
    question: str  # "q1" (selection) or "q2" (batch size)
    selector: str
    args: dict = field(default_factory=dict)
    batch: int = 128  # candidates drawn a step (prompts_per_step)
    picks: int = 1  # prompts rolled out a step
    budget: int = 1024  # training rollouts

    def config(self, pool: str, rate: float, seed: int) -> DoprConfig:
        every = max(1, EVAL_ROLLOUTS // (self.picks * G))
        return DoprConfig(
            **POOLS[pool], n_test=N_TEST, eval_k=0, save_every=0,
            selector=self.selector, selector_args=dict(self.args),
            prompts_per_step=self.batch, max_rollouts=self.budget,
            max_steps=0, eval_every=every, learning_rate=rate, seed=seed,
            out_dir=str(run_dir(pool, self.name, rate, seed)))


def q1_configs() -> list[Config]:
    """Q1, selection: four rules at k prompts a step out of B = 128."""
    out = []
    for k in (1, 4):
        for name, selector, args in (
                ("random", "random", {}), ("thompson", "thompson", {}),
                ("thompson-eb", "dopr", {"probe": 0}), ("dopr", "dopr", {})):
            out.append(Config(f"{name}-k{k}", "q1", selector,
                              {**args, **({"k": k} if k > 1 else {})},
                              batch=128, picks=k, budget=1024))
    return out


def q2_configs() -> list[Config]:
    """Q2, batch size: GRPO (every candidate rolled out) at B prompts."""
    return [Config(f"grpo-b{B}", "q2", "full", {}, batch=B, picks=B,
                   budget=2048) for B in (1, 2, 4, 8, 16)]


CONFIGS = {c.name: c for c in q1_configs() + q2_configs()}


def run_dir(pool: str, name: str, rate: float, seed: int) -> Path:
    return RUNS / pool / name / f"lr{rate:g}" / f"s{seed}"


def criterion_upto(cfg: Config) -> int:
    """The tuning criterion's width: the area over the question's budget."""
    return cfg.budget


# ---------------------------------------------------------------- runs


def run(cells, jobs: int, log=print) -> dict:
    """Train (or read back) every ``(pool, config, rate, seed)`` cell;
    return ``{cell: evals}``."""
    cells = list(dict.fromkeys(cells))
    tasks = [(f"{p}/{n} lr{r:g} s{s}", CONFIGS[n].config(p, r, s))
             for p, n, r, s in cells]
    results = train_all(tasks, resume=True, log=log, jobs=jobs)
    return {cell: {"evals": [{k: v for k, v in e.items()
                              if k in EVAL_FIELDS or k.startswith("accuracy/")}
                             for e in res.evals],
                   "rollouts": res.counter.cost,
                   "seconds": res.seconds}
            for cell, res in zip(cells, results, strict=True)}


def key(row: dict) -> tuple:
    return row["pool"], row["config"], row["rate"], row["seed"]


def record(stage: str, runs: dict, argv, **extra) -> dict:
    """Merge ``runs`` into ``bench/results/factorial/<stage>.json`` (a
    stage run in parts, or resumed, keeps every run it ever recorded) and
    return all of its runs.  Written atomically: a crash keeps the old."""
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"{stage}.json"
    old = json.loads(path.read_text()) if path.is_file() else {}
    merged = {key(r): {k: v for k, v in r.items()
                       if k not in ("pool", "config", "rate", "seed")}
              for r in old.get("runs", [])}
    merged.update(runs)
    command = "python bench/factorial.py " + " ".join(argv)
    commands = list(dict.fromkeys([*old.get("commands", []), command]))
    body = {"command": " && ".join(commands),  # what regenerates it
            "commands": commands,
            "versions": versions(), "protocol": protocol(), **extra,
            "runs": [{"pool": p, "config": n, "rate": r, "seed": s, **v}
                     for (p, n, r, s), v in sorted(merged.items())]}
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(body, separators=(",", ":")))
    tmp.replace(path)
    return merged


def protocol() -> dict:
    return {"grid": list(GRID), "grid_limits": list(GRID_LIMITS),
            "design_seeds": list(DESIGN_SEEDS),
            "report_seeds": list(REPORT_SEEDS),
            "pool_seeds": list(POOL_SEEDS), "pools": POOLS,
            "eval_rollouts": EVAL_ROLLOUTS,
            "configs": {n: {"question": c.question, "selector": c.selector,
                            "args": c.args, "batch": c.batch,
                            "picks": c.picks, "budget": c.budget}
                        for n, c in CONFIGS.items()}}


# ---------------------------------------------------------------- tuning


def scores(runs: dict, name: str, pool: str = "default") -> dict:
    """``{rate: mean criterion over the design seeds}`` of config ``name``
    (rates whose design seeds all ran)."""
    cfg, by_rate = CONFIGS[name], {}
    for (p, n, r, s), v in runs.items():
        if p == pool and n == name and s in DESIGN_SEEDS:
            by_rate.setdefault(r, []).append(area(v["evals"],
                                                  criterion_upto(cfg)))
    return {r: float(np.mean(a)) for r, a in sorted(by_rate.items())
            if len(a) == len(DESIGN_SEEDS)}


def pick(rate_scores: dict) -> tuple[float, float | None]:
    """The best rate, and the rate to add where it is at the grid's edge
    (None: inside the grid, or at a limit)."""
    rates = sorted(rate_scores)
    best = max(rates, key=lambda r: rate_scores[r])
    if best == rates[0] and best / 2 >= GRID_LIMITS[0]:
        return best, best / 2
    if best == rates[-1] and best * 2 <= GRID_LIMITS[1]:
        return best, best * 2
    return best, None


def tune(jobs: int, argv, names=None) -> dict:
    """Every configuration (or ``names``) on the grid and the design seeds;
    grow the grid where a pick is at its edge, until every pick is inside
    (or at a limit).  Picks are made from every run the stage has recorded.
    Returns ``{config: rate}``."""
    names = names or list(CONFIGS)
    path = RESULTS / "tune.json"
    runs = {key(r): r for r in json.loads(path.read_text())["runs"]} \
        if path.is_file() else {}
    grids = {n: sorted({*GRID, *(r for p, m, r, s in runs if m == n)})
             for n in names}
    while True:
        cells = [("default", n, r, s) for n in names for r in grids[n]
                 for s in DESIGN_SEEDS]
        runs = record("tune", run([c for c in cells if c not in runs], jobs),
                      argv)
        table = {n: scores(runs, n) for n in CONFIGS if scores(runs, n)}
        picks = {n: pick(t)[0] for n, t in table.items()}
        record("tune", {}, argv, picks=picks, shared=shared_rates(table),
               scores={n: {f"{r:g}": v for r, v in t.items()}
                       for n, t in table.items()})
        grow = {n: pick(table[n])[1] for n in names
                if pick(table[n])[1] is not None}
        if not grow:
            return {n: picks[n] for n in names}
        for n, r in grow.items():
            print(f"{n}: best rate {picks[n]:g} at the grid's edge; adding "
                  f"{r:g}", flush=True)
            grids[n].append(r)


def shared_rates(table: dict) -> dict:
    """Q1's shared rate at each k: the rate of the base grid with the
    highest criterion averaged over that k's configurations."""
    out = {}
    for k in (1, 4):
        names = [n for n in table if CONFIGS[n].question == "q1"
                 and CONFIGS[n].picks == k]
        if names and all(set(GRID) <= set(table[n]) for n in names):
            out[f"k{k}"] = max(GRID, key=lambda r: np.mean(
                [table[n][r] for n in names]))
    return out


def tuned() -> dict:
    """The committed picks and shared rates (``tune`` must have run)."""
    path = RESULTS / "tune.json"
    if not path.is_file():
        sys.exit(f"{path} is missing: run `python bench/factorial.py tune` "
                 "first")
    body = json.loads(path.read_text())
    return body["picks"], body["shared"]


# ---------------------------------------------------------------- stages


def stage_cells(stage: str, names=None) -> list:
    names = names or list(CONFIGS)
    if stage == "report":
        picks, _ = tuned()
        return [("default", n, picks[n], s) for n in names
                for s in REPORT_SEEDS]
    if stage == "shared":
        _, shared = tuned()
        return [("default", n, shared[f"k{CONFIGS[n].picks}"], s)
                for n in names if CONFIGS[n].question == "q1"
                for s in REPORT_SEEDS]
    if stage == "pools":
        picks, _ = tuned()
        return [(p, n, picks[n], s) for p in ("hard", "easy") for n in names
                for s in POOL_SEEDS]
    raise ValueError(f"unknown stage {stage!r}")


def main(argv=None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("stage", choices=["tune", "report", "shared", "pools",
                                     "plan"])
    p.add_argument("what", nargs="?", help="plan: the stage to list")
    p.add_argument("--configs", nargs="+", choices=sorted(CONFIGS),
                   help="only these configurations (default: all)")
    p.add_argument("--jobs", type=int, default=available_cores())
    a = p.parse_args(argv)
    t0 = time.time()
    if a.stage == "plan":
        cells = ([("default", n, r, s) for n in (a.configs or CONFIGS)
                  for r in GRID for s in DESIGN_SEEDS]
                 if a.what == "tune" else stage_cells(a.what, a.configs))
        for c in cells:
            print(*c)
        print(f"{len(cells)} runs", file=sys.stderr)
        return 0
    if a.stage == "tune":
        picks = tune(a.jobs, argv, a.configs)
        print(json.dumps({n: f"{r:g}" for n, r in picks.items()}))
    else:
        record(a.stage, run(stage_cells(a.stage, a.configs), a.jobs), argv)
        print(RESULTS / f"{a.stage}.json")
    print(f"{time.time() - t0:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
