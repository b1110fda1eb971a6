#!/usr/bin/env bash
# The README's test command: lint, unit and end-to-end tests, notebooks.
set -euo pipefail
cd "$(dirname "$0")/.."
export HF_HUB_OFFLINE=${HF_HUB_OFFLINE:-1}
ruff check dopr_lite tests bench examples
# Unit tests and notebooks together, one file per worker (--dist loadfile
# keeps a notebook's cells in order on one kernel).  The tiny model runs
# ~20% slower on one thread than on two, so two one-thread workers finish
# sooner on a 2-core machine; DOPR_TEST_WORKERS=auto uses every core.
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1}
# Notebooks: every cell runs; the cells tagged nbval-check-output (their
# results) must print what the committed notebook shows, measured times
# aside (notebooks/nbval_sanitize.cfg); their runs go to a fresh folder,
# so nothing resumes a run left by an earlier session.
runs=$(mktemp -d)
trap 'rm -rf "$runs"' EXIT
export DOPR_RUNS="$runs"
python -m pytest -q -m "not gpu" -n "${DOPR_TEST_WORKERS:-2}" \
  --dist loadfile --nbval-lax --nbval-current-env \
  --nbval-sanitize-with notebooks/nbval_sanitize.cfg \
  --nbval-cell-timeout=600 --durations=12 notebooks tests "$@"
