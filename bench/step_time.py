"""Seconds per training step: DoPR against random-one, at equal settings.

Builds one run per rule (same model, data, seed, candidate batch) and steps
them in rotating order (A, B, C; B, C, A; ...) so that drift on a shared machine
hits every side; reports the median seconds per step after a warm-up and
each rule's ratio to random-one, with the step's parts (generate, update,
the rest: the rule's own work, such as DoPR's entropy pass), the generate
calls per step and the completion tokens generated per step (a rule that
picks prompts with longer answers, or adds probe rows whose answers run
longer, pays for it in a latency-bound call).  Writes JSON to ``--out`` and
``bench/results/step_time.json``.

    python bench/step_time.py                  # B = 32, 40 steps, CPU
    python bench/step_time.py --batch 8 128 --steps 30
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from pathlib import Path

import torch

from dopr_lite.config import DoprConfig
from dopr_lite.loop import Run, train_step
from dopr_lite.steprow import ROW_KEYS

SIDES = {"random": ("random", {}),
         "thompson": ("thompson", {}),
         "dopr": ("dopr", {}),  # the default rule
         # a second copy of the default, measured alongside it, shows the
         # measurement's own noise
         "dopr-again": ("dopr", {}),
         "dopr-no-entropy": ("dopr", {"entropy": False}),
         "dopr-no-probes": ("dopr", {"probe": 0}),
         "dopr-own-call": ("dopr", {"ahead": False}),  # probes: 2nd call
         "dopr-v1": ("dopr-v1", {})}
FULL_UPTO = 32  # full-batch GRPO is measured too at B up to this (its
#                 step at B = 128 would dominate the run)


def measure(batch: int, steps: int, warmup: int) -> dict:
    sides = {**SIDES, **({"full": ("full", {})} if batch <= FULL_UPTO
                         else {})}
    runs = {side: Run.start(DoprConfig.tiny(
        selector=rule, selector_args=args, prompts_per_step=batch,
        out_dir="/dev/null"), log=lambda *a: None)
        for side, (rule, args) in sides.items()}
    rows = {side: [] for side in runs}
    order = list(runs)
    for step in range(steps):
        calls = {s: r.counter.calls for s, r in runs.items()}
        for side in order[step % len(order):] + order[:step % len(order)]:
            row = train_step(runs[side], step)
            row["calls"] = runs[side].counter.calls - calls[side]
            if step >= warmup:
                rows[side].append(row)
    out = {}
    for side, rs in rows.items():
        med = {k: statistics.median(r[k] for r in rs)
               for k in ("seconds", "rollout_seconds", "update_seconds")}
        out[side] = {**{f"median_{k}": v for k, v in med.items()},
                     "generate_calls_per_step":
                         statistics.mean(r["calls"] for r in rs),
                     # the rows carry the run's running totals
                     **{f"{k}_per_step": statistics.mean(
                         r[k] - p[k] for p, r in zip(rs, rs[1:], strict=False))
                        for k in ("rollouts", "tokens")},
                     # each measured step's shape and seconds, for the
                     # step-time model (bench/time_model.py)
                     "steps": [{k: r[k] for k in (*ROW_KEYS,
                                                  "rollout_seconds",
                                                  "update_seconds", "seconds")}
                               for r in rs]}
    base = out["random"]["median_seconds"]
    for side in out:
        out[side]["ratio_to_random"] = out[side]["median_seconds"] / base
    return out


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--batch", type=int, nargs="+", default=[32],
                   help="candidate batch sizes (default: 32)")
    p.add_argument("--steps", type=int, default=40)
    p.add_argument("--warmup", type=int, default=5)
    p.add_argument("--out", default="runs/bench/step_time.json")
    a = p.parse_args(argv)
    torch.set_num_threads(torch.get_num_threads())
    res = {"command": " ".join(["python", "bench/step_time.py",
                                *(argv if argv is not None
                                  else sys.argv[1:])]),
           "model": "embedded:tiny", "steps": a.steps, "warmup": a.warmup,
           "torch": torch.__version__,
           "torch_threads": torch.get_num_threads(),
           "by_batch": {}}
    for B in a.batch:
        res["by_batch"][str(B)] = measure(B, a.steps, a.warmup)
        for side, r in res["by_batch"][str(B)].items():
            print(f"B={B:<4} {side:<14} {r['median_seconds']:.3f} s/step "
                  f"({r['ratio_to_random']:.2f}x random; pick+generate "
                  f"{r['median_rollout_seconds']:.3f}, update "
                  f"{r['median_update_seconds']:.3f}; "
                  f"{r['generate_calls_per_step']:.1f} calls/step, "
                  f"{r['tokens_per_step']:.0f} tokens/step)")
    Path(a.out).parent.mkdir(parents=True, exist_ok=True)
    Path(a.out).write_text(json.dumps(res, indent=1))
    results = Path(__file__).resolve().parent / "results"
    (results / "step_time.json").write_text(json.dumps(res, indent=1))


if __name__ == "__main__":
    main()
