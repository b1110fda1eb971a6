"""Pick the winner of a design protocol: the mean held-out accuracy along
the first ``--upto`` rollouts (the area under the curve over its width, as
``bench/design_table.py`` computes it), averaged over the seeds of each
folder and then over the folders (one per pool mix and B); the highest
wins, a difference under ``--tie`` is a tie broken by the mean final
accuracy.  ``bench/README.md`` ("DoPR re-derived") states the protocol.

    python bench/design_pick.py runs/bench/v2_design_default/B32 \\
        runs/bench/v2_design_default/B128 runs/bench/v2_design_hard/B32 \\
        runs/bench/v2_design_hard/B128 --out bench/results/design_v2.json
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from design_table import read_runs, summarise  # noqa: E402


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("dirs", nargs="+")
    p.add_argument("--upto", type=int, default=512)
    p.add_argument("--tie", type=float, default=0.005)
    p.add_argument("--out", default="")
    a = p.parse_args(argv)
    per_dir = {}
    for d in a.dirs:
        runs = read_runs([d], a.upto)
        if not runs:
            print(f"no finished runs under {d}", file=sys.stderr)
            return 1
        per_dir[d] = {label: summarise(ev, a.upto)
                      for label, ev in runs.items()}
    labels = sorted(set.intersection(*(set(r) for r in per_dir.values())))
    score = {lb: float(np.mean([per_dir[d][lb]["mean_accuracy_to_upto"]
                                for d in a.dirs])) for lb in labels}
    final = {lb: float(np.mean([per_dir[d][lb]["final"] for d in a.dirs]))
             for lb in labels}
    best = max(score.values())
    tied = [lb for lb in labels if best - score[lb] < a.tie]
    winner = max(tied, key=final.get)
    print("| candidate | " + " | ".join(a.dirs) + " | criterion | final |")
    print("|---" * (len(a.dirs) + 3) + "|")
    for lb in sorted(labels, key=score.get, reverse=True):
        cells = [f"{per_dir[d][lb]['mean_accuracy_to_upto']:.3f}"
                 for d in a.dirs]
        print(f"| {lb} | " + " | ".join(cells)
              + f" | **{score[lb]:.3f}** | {final[lb]:.3f} |")
    print(f"\nwinner: {winner} (tied within {a.tie}: {tied})")
    if a.out:
        Path(a.out).write_text(json.dumps({
            "command": " ".join(["python", "bench/design_pick.py",
                                 *(argv if argv is not None
                                   else sys.argv[1:])]),
            "upto": a.upto, "tie": a.tie, "criterion": score,
            "final": final, "tied": tied, "winner": winner,
            "by_folder": per_dir}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
