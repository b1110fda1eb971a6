"""DoPR against its baselines on the embedded model and task.

Runs the seven rules of ``dopr_lite.compare.default_rules`` (full-batch
GRPO, DAPO dynamic sampling, fixed one-shot, random one, Thompson, the old
DoPR and DoPR) for each
seed with identical settings except the selector and the budget; writes
``runs/bench/compare/compare.json`` (settings, versions, the table, every
eval curve) and ``bench_compare.png`` beside it (``--update-figures``: also
the committed ``figures/bench_compare.png``), and prints the markdown table
``bench/README.md`` quotes.  The same as ``dopr-lite compare``:

    python bench/compare.py --update-figures     # 3 seeds, ~15 min, 2 cores
    python bench/compare.py --seeds 0 --full-rollouts 512 --one-rollouts 128
"""

import sys

from dopr_lite.cli import main

if __name__ == "__main__":
    sys.exit(main(["compare", *sys.argv[1:]]))
