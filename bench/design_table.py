"""Summarise finished runs on the design seeds: one row per variant.

Reads the run folders ``<label>-s<seed>/`` under each ``DIR`` (as
``dopr-lite compare --out DIR`` writes them) and reports, per label, the
seeds found, the mean final held-out accuracy (and each seed's), the mean
accuracy along the first ``--upto`` rollouts (the area under the curve
divided by its width: how fast a run climbs) and the worst dip below a
run's running best.  This is how defaults and learning rates are chosen on
design seeds (10-15) before anything runs on the reported ones (0-2);
``bench/README.md`` lists the commands that made the runs.  Writes JSON and
prints a markdown table.

    python bench/design_table.py runs/bench/design_B32 runs/bench/lr_design \\
        --out bench/results/design_B32.json
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path

import numpy as np


def read_runs(folders: list[str], upto: int) -> dict:
    """label -> seed -> eval rows, for runs that spent ``upto`` rollouts."""
    runs: dict = {}
    for folder in folders:
        for path in sorted(Path(folder).glob("*-s*/eval.jsonl")):
            m = re.fullmatch(r"(.+)-s(\d+)", path.parent.name)
            rows = [json.loads(line) for line in path.read_text().splitlines()]
            if m and rows and rows[-1]["rollouts"] >= upto:
                runs.setdefault(m.group(1), {})[int(m.group(2))] = rows
    return runs


def summarise(evals: dict, upto: int) -> dict:
    grid = np.linspace(0, upto, 257)
    final, climb, dip = {}, {}, {}
    for seed, rows in sorted(evals.items()):
        x = [e["rollouts"] for e in rows]
        acc = np.array([e["accuracy"] for e in rows])
        final[seed] = float(acc[-1])
        climb[seed] = float(np.interp(grid, x, acc).mean())
        dip[seed] = float((np.maximum.accumulate(acc) - acc).max())
    return {"seeds": list(final), "final": float(np.mean(list(final.values()))),
            "final_by_seed": final,
            "mean_accuracy_to_upto": float(np.mean(list(climb.values()))),
            "worst_dip": max(dip.values())}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("dirs", nargs="+")
    p.add_argument("--upto", type=int, default=512)
    p.add_argument("--out", default="")
    a = p.parse_args(argv)
    runs = read_runs(a.dirs, a.upto)
    if not runs:
        print(f"no finished runs under {a.dirs}", file=sys.stderr)
        return 1
    rows = {label: summarise(evals, a.upto)
            for label, evals in sorted(runs.items())}
    print(f"| variant | seeds | final acc | (per seed) | mean acc over the "
          f"first {a.upto} rollouts | worst dip |\n|---|---|---|---|---|---|")
    for label, r in rows.items():
        per = " ".join(f"{v:.3f}" for v in r["final_by_seed"].values())
        print(f"| {label} | {','.join(map(str, r['seeds']))} | "
              f"{r['final']:.3f} | {per} | {r['mean_accuracy_to_upto']:.3f}"
              f" | {100 * r['worst_dip']:.1f} pts |")
    if a.out:
        Path(a.out).write_text(json.dumps({
            "command": " ".join(["python", "bench/design_table.py",
                                 *(argv if argv is not None
                                   else sys.argv[1:])]),
            "upto": a.upto, "rows": rows}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
