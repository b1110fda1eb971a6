"""Held-out gain of GRPO on the embedded model, over seeds, with a control.

For each seed: one GRPO run with real rewards and one whose rewards are
shuffled across the batch (should learn nothing).  Prints and saves the base
accuracy, the gains (mean and sd), rollouts used and wall time.

    python bench/grpo_gain.py                       # 3 seeds, 1024 rollouts
    python bench/grpo_gain.py --seeds 0 1 --max-rollouts 384
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

from dopr_lite.config import DoprConfig
from dopr_lite.loop import train


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--max-rollouts", type=int, default=1024)
    p.add_argument("--n-test", type=int, default=300)
    p.add_argument("--out", default="runs/bench/grpo_gain")
    a = p.parse_args(argv)
    rows = []
    for seed in a.seeds:
        for control in (False, True):
            cfg = DoprConfig(
                selector="full", max_rollouts=a.max_rollouts, seed=seed,
                n_test=a.n_test,
                eval_every=10_000, eval_k=0, save_every=0,
                out_dir=f"{a.out}/{'shuffled' if control else 'grpo'}-{seed}")
            t0 = time.time()
            r = train(cfg, progress=False, resume=False,
                      shuffle_rewards=control)
            rows.append({"seed": seed, "control": control,
                         "base": r.base_accuracy, "final": r.final_accuracy,
                         "gain": r.final_accuracy - r.base_accuracy,
                         "rollouts": r.counter.cost,
                         "seconds": time.time() - t0})
            print(json.dumps(rows[-1]))

    def stats(control):
        g = [r["gain"] for r in rows if r["control"] == control]
        return {"mean": statistics.mean(g),
                "sd": statistics.stdev(g) if len(g) > 1 else 0.0, "n": len(g)}

    out = {"command": " ".join(["python", "bench/grpo_gain.py",
                                *(argv if argv is not None
                                  else sys.argv[1:])]),
           "runs": rows, "base_accuracy": rows[0]["base"],
           "grpo_gain": stats(False), "shuffled_gain": stats(True),
           "max_rollouts": a.max_rollouts, "n_test": a.n_test}
    Path(a.out).mkdir(parents=True, exist_ok=True)
    Path(a.out, "summary.json").write_text(json.dumps(out, indent=1))
    results = Path(__file__).resolve().parent / "results"
    results.mkdir(exist_ok=True)
    (results / "grpo_gain.json").write_text(json.dumps(out, indent=1))
    print(json.dumps({k: v for k, v in out.items() if k != "runs"}, indent=1))


if __name__ == "__main__":
    main()
