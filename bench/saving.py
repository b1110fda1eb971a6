"""Rollouts to a target accuracy, against the strongest full-batch GRPO.

Reads the ``compare.json`` files that ``dopr-lite compare`` wrote for one
or more pool mixes and, for each mix:

* the **target**: the base accuracy plus 95% of the best full-batch
  GRPO's final gain among every full-batch configuration of the mix (the
  rule ``full`` at each B), so no rule is measured against an
  under-trained reference;
* per B and rule: final accuracy (± sd over seeds), the rollouts its
  seed-mean curve needs to reach the target, the saving against
  full-batch GRPO at the same B and against the *strongest* full-batch
  configuration (the one that needs the fewest rollouts to the target),
  how much the last quarter of the budget added (a flat curve: "not
  reached" means a plateau, not a cut-off), and the worst dip;
* each rule paired with random-one seed by seed: the mean accuracy along
  the budget (the area under the curve over its width), rule minus
  random-one, ± its standard error over the pairs of every B and mix.

It prints markdown tables and the issue's goals as met / not met with
their numbers, and writes JSON with the command that made it.

    python bench/saving.py \\
        --mix default=bench/results/compare_scale.json:full,runs/bench/x.json \\
        --mix hard=runs/bench/y.json --out bench/results/dopr_v2.json

A (B, rule) pair found in two files of a mix is taken from the later one;
``FILE:LABEL+LABEL`` takes only those labels from a file.  ``--rows-from
bench/results/dopr_v2.json`` ships a record's default-mix rows to the
pre-flight (``dopr_lite/assets/benchmark_rows.json``).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from dopr_lite.curves import reached
from dopr_lite.savings import (BENCHMARK_ROWS, benchmark_rows, markdown,
                               paired_with, reach, read, read_mix, table,
                               times)

ROWS = Path(__file__).resolve().parent.parent / "dopr_lite" / "assets" \
    / BENCHMARK_ROWS


def goals(tables: dict, rule: str = "dopr") -> list[str]:
    """The issue's goals for ``rule``, each met or not, with numbers."""
    out = []
    for mix, t in tables.items():
        rows = {(r["B"], r["rule"]): r for r in t["rows"]}
        Bs = sorted({B for B, lab in rows if lab == rule})
        if 128 in Bs:
            r = rows[(128, rule)]
            same, strong = r["saving_vs_same_B"], r["saving_vs_strongest"]
            out.append(
                f"{mix}, B = 128: {rule} to the target: "
                f"{reach(r['to_target'])}; {times(same)} fewer than full "
                f"at 128 (goal >= 10x), {times(strong)} fewer than the "
                f"strongest (goal >= 3x): "
                + ("met" if same and strong and same >= 10 and strong >= 3
                   else "not met"))
        for B in Bs:
            r = rows[(B, rule)]
            for other in ("thompson", "random"):
                o = rows.get((B, other))
                if o is None:
                    continue
                mine, theirs = r["to_target"], o["to_target"]
                fewer = reached(mine) and (not reached(theirs)
                                           or mine <= theirs)
                spread = r["final_sd"] <= 1.5 * o["final_sd"]
                out.append(
                    f"{mix}, B = {B}: to the target, {rule} "
                    f"{reach(mine)} vs {other} {reach(theirs)}; final sd "
                    f"{r['final_sd']:.3f} vs {o['final_sd']:.3f}: "
                    + ("met" if fewer and spread else "not met"))
            out.append(f"{mix}, B = {B}: {rule}'s worst dip "
                       f"{100 * r['worst_dip']:.1f} pts, worst end below "
                       f"peak {100 * r['worst_end_below_peak']:.1f} pts: "
                       + ("met" if max(r["worst_dip"],
                                       r["worst_end_below_peak"]) <= 0.10
                          else "not met"))
    return out


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--mix", action="append", metavar="NAME=FILE[,FILE...]")
    p.add_argument("--rule", default="dopr")
    p.add_argument("--out", default="")
    p.add_argument("--figure", default="",
                   help="also draw the rollouts to the target against B "
                   "(plots.plot_to_target) into this PNG")
    p.add_argument("--rows-from", metavar="RECORD",
                   help="only ship a saved record's default-mix rows to the "
                   f"pre-flight (dopr_lite/assets/{BENCHMARK_ROWS})")
    a = p.parse_args(argv)
    command = " ".join(["python", "bench/saving.py",
                        *(argv if argv is not None else sys.argv[1:])])
    if a.rows_from:
        rows = benchmark_rows(read(a.rows_from))
        ROWS.write_text(json.dumps({"command": command, "rows": rows},
                                   indent=1))
        print(f"wrote {len(rows)} rows to {ROWS}")
        return 0
    if not a.mix:
        p.error("give --mix NAME=FILE[,FILE...] (or --rows-from RECORD)")
    runs_by_mix = {}
    for spec in a.mix:
        name, _, files = spec.partition("=")
        missing = [f for f in files.split(",")
                   if not Path(f.partition(":")[0]).is_file()]
        if not name or not files or missing:
            print(f"--mix {spec!r}: give NAME=FILE[:LABEL+...][,FILE...] of "
                  f"existing compare.json files (missing: {missing})",
                  file=sys.stderr)
            return 2
        runs_by_mix[name] = read_mix(files.split(","))
    tables = {mix: table(runs) for mix, runs in runs_by_mix.items()}
    for mix, t in tables.items():
        print(markdown(mix, t) + "\n")
    pairs = [paired_with(runs_by_mix, r, "random")
             for r in ("thompson", a.rule, f"{a.rule}-v1")]
    for d in pairs:
        if d["pairs"]:
            print(f"{d['rule']} - random, mean accuracy along the budget: "
                  f"{100 * d['mean']:+.1f} ± {100 * d['se']:.1f} pts "
                  f"({d['pairs']} seed pairs over {', '.join(d['where'])})")
    met = goals(tables, a.rule)
    print("\n" + "\n".join(met))
    if a.figure:
        from dopr_lite.plots import plot_to_target
        plot_to_target(tables).savefig(a.figure, dpi=110,
                                       bbox_inches="tight")
    if a.out:
        Path(a.out).write_text(json.dumps({
            "command": command, "tables": tables,
            "paired_with_random": pairs, "goals": met}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
