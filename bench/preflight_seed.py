"""Does a pre-flight help DoPR and Thompson when it starts their posterior?

For each seed: a pre-flight of the whole RL pool (256 prompts) at k = 2
and at k = 8 (the command's default), sampled with the run's seed; then
DoPR and Thompson with and without the counts, and full-batch GRPO as the
reference.  A started run is charged the pre-flight's rollouts (they are
its probes) and gets the same 512 training rollouts on top, so the table
answers two questions: at equal *training* rollouts, do the counts help
(final accuracy)?  And counting everything, does it pay (rollouts to 80%
and 95% of full-batch GRPO's gain)?

Writes ``bench/results/preflight_seed.json`` (with the command that made
it, the table and every curve).

    python bench/preflight_seed.py                 # seeds 0 1 2, ~20 min
    python bench/preflight_seed.py --seeds 0 --ks 2
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from dopr_lite.compare import (REFERENCE_FACTOR, Rule, comparison,
                               format_table, full_batch_rule)
from dopr_lite.config import DoprConfig
from dopr_lite.data import load_prompts
from dopr_lite.env import runs_dir, versions
from dopr_lite.loop import train
from dopr_lite.policy import load_policy
from dopr_lite.preflight import preflight

ROOT = Path(__file__).resolve().parent.parent
ONE_ROLLOUTS, EVAL_EVERY = 512, 4


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--ks", type=int, nargs="+", default=[2, 8],
                   help="pre-flight rollouts per prompt (default: 2 8)")
    p.add_argument("--out", default=runs_dir("bench/preflight_seed"))
    args = p.parse_args(argv)
    t0, out = time.time(), Path(args.out)
    base = DoprConfig(n_test=300, eval_k=0, save_every=0)
    data = load_prompts(base)
    rules = [full_batch_rule(REFERENCE_FACTOR * ONE_ROLLOUTS, EVAL_EVERY)]
    for name in ("thompson", "dopr"):
        rules.append(Rule(name, name, ONE_ROLLOUTS, EVAL_EVERY))
        rules += [Rule(f"{name}+pf{k}", name, ONE_ROLLOUTS, EVAL_EVERY)
                  for k in args.ks]
    results, preflights = {}, {}
    for seed in args.seeds:
        for k in args.ks:
            report = preflight(base, k=k, seed=seed, data=data,
                               progress=False)
            path = report.save(out / f"preflight-k{k}-s{seed}.json")
            preflights[(k, seed)] = (path, report.rollouts)
            print(f"pre-flight k={k} seed {seed}: {report.rollouts} "
                  f"rollouts, mixed at G=8 {report.shares()['mixed']:.0%}",
                  flush=True)
        for rule in rules:
            extra = {}
            if "+pf" in rule.label:
                path, cost = preflights[(int(rule.label.split("pf")[1]),
                                         seed)]
                extra = {"preflight": str(path),
                         "max_rollouts": rule.max_rollouts + cost}
            cfg = rule.config(base, seed=seed, out_dir=str(
                out / f"{rule.label}-s{seed}"), **extra)
            r = train(cfg, policy=load_policy(cfg), data=data, resume=True,
                      progress=False, log=lambda *a: None)
            results.setdefault(rule.label, []).append(r)
            print(f"{rule.label:<14} seed {seed}: {r.base_accuracy:.3f} -> "
                  f"{r.final_accuracy:.3f} in {r.counter.cost} rollouts "
                  f"({r.counter.sequences['probe']} probes)", flush=True)
    rows = comparison(results)
    table = format_table(rows)
    print(table)
    record = {"command": " ".join(["python", "bench/preflight_seed.py", *(
                  sys.argv[1:] if argv is None else argv)]),
              "seconds": round(time.time() - t0), "versions": versions(),
              "config": base.to_dict(), "seeds": args.seeds, "ks": args.ks,
              "one_rollouts": ONE_ROLLOUTS, "table": rows,
              "markdown": table,
              "curves": {label: [r.evals for r in runs]
                         for label, runs in results.items()}}
    results_dir = ROOT / "bench" / "results"
    results_dir.mkdir(parents=True, exist_ok=True)
    (results_dir / "preflight_seed.json").write_text(
        json.dumps(record, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
