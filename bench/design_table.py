"""Summarise finished runs on the design seeds: one row per variant.

Reads the run folders ``<label>-s<seed>/`` under each ``DIR`` (as
``dopr-lite compare --out DIR`` writes them) and reports, per label, the
seeds found, the mean final held-out accuracy (and each seed's), the mean
accuracy along the first ``--upto`` rollouts (the area under the curve
divided by its width: how fast a run climbs) and the worst dip below a
run's running best; with ``--against LABEL``, each variant's paired
difference from LABEL on the seeds both ran (mean and standard error over
seeds; a difference within about two standard errors of 0 is not shown to
matter).  This is how defaults and learning rates are chosen on
design seeds (10-15) before anything runs on the reported ones (0-2);
``bench/README.md`` lists the commands that made the runs.  Writes JSON and
prints a markdown table.

    python bench/design_table.py runs/bench/design_B32 runs/bench/lr_design \\
        runs/bench/lr_design_dynamic --against dopr \\
        --out bench/results/design_B32.json
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path

import numpy as np

from dopr_lite.curves import area, dips, mean_se


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
    final, climb, dip = {}, {}, {}
    for seed, rows in sorted(evals.items()):
        final[seed] = float(rows[-1]["accuracy"])
        climb[seed] = area(rows, upto)
        dip[seed] = dips(rows)["dip"]
    return {"seeds": list(final), "final": float(np.mean(list(final.values()))),
            "final_by_seed": final,
            "mean_accuracy_to_upto": float(np.mean(list(climb.values()))),
            "worst_dip": max(dip.values()), "climb_by_seed": climb}


def paired(row: dict, ref: dict) -> dict | None:
    """``row`` minus ``ref`` on the seeds both ran: mean and standard
    error over seeds of the final accuracy and of the climb (None with
    fewer than 2 shared seeds)."""
    seeds = [s for s in row["final_by_seed"] if s in ref["final_by_seed"]]
    if len(seeds) < 2:
        return None
    out = {"seeds": seeds}
    for key in ("final", "climb"):
        d = mean_se([row[f"{key}_by_seed"][s] - ref[f"{key}_by_seed"][s]
                     for s in seeds])
        out[key], out[f"{key}_se"] = d["mean"], d["se"]
    return out


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("dirs", nargs="+")
    p.add_argument("--upto", type=int, default=512)
    p.add_argument("--out", default="")
    p.add_argument("--against", default="",
                   help="label to pair every variant with, seed by seed")
    a = p.parse_args(argv)
    runs = read_runs(a.dirs, a.upto)
    if not runs:
        print(f"no finished runs under {a.dirs}", file=sys.stderr)
        return 1
    rows = {label: summarise(evals, a.upto)
            for label, evals in sorted(runs.items())}
    if a.against and a.against not in rows:
        print(f"--against {a.against!r}: no finished runs of that label "
              f"(labels: {sorted(rows)})", file=sys.stderr)
        return 1
    extra = (f" | final - {a.against} (± se) | climb - {a.against} (± se)"
             if a.against else "")
    print(f"| variant | seeds | final acc | (per seed) | mean acc over the "
          f"first {a.upto} rollouts | worst dip{extra} |\n"
          + "|---" * (6 + 2 * bool(a.against)) + "|")
    for label, r in rows.items():
        per = " ".join(f"{v:.3f}" for v in r["final_by_seed"].values())
        line = (f"| {label} | {','.join(map(str, r['seeds']))} | "
                f"{r['final']:.3f} | {per} | {r['mean_accuracy_to_upto']:.3f}"
                f" | {100 * r['worst_dip']:.1f} pts")
        if a.against:
            d = paired(r, rows[a.against]) if label != a.against else None
            r["against"] = d and {"label": a.against, **d}
            line += (" | | " if d is None else
                     f" | {100 * d['final']:+.1f} ± {100 * d['final_se']:.1f}"
                     f" pts | {100 * d['climb']:+.1f} ± "
                     f"{100 * d['climb_se']:.1f} pts")
        print(line + " |")
    if a.out:
        Path(a.out).write_text(json.dumps({
            "command": " ".join(["python", "bench/design_table.py",
                                 *(argv if argv is not None
                                   else sys.argv[1:])]),
            "upto": a.upto, "rows": rows}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
