#!/usr/bin/env bash
# Execute notebooks from scratch, in place, the way CI re-runs them: one
# thread, offline, fresh run folders (no resumed run), figures into
# figures/.  Usage: bash scripts/execute_notebooks.sh [NN_name ...]
# (default: all: the chapters, then solutions/NN_name_solutions).  Then
# `bash scripts/test.sh notebooks` checks them.
set -euo pipefail
cd "$(dirname "$0")/.."
runs=$(mktemp -d)
trap 'rm -rf "$runs"' EXIT
export HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1 TOKENIZERS_PARALLELISM=false
export OMP_NUM_THREADS=1 DOPR_RUNS="$runs" DOPR_PRESET=tiny
names=("$@")
if [ ${#names[@]} -eq 0 ]; then
  names=($(cd notebooks && ls [0-9][0-9]_*.ipynb solutions/[0-9][0-9]_*.ipynb \
    | sed 's/\.ipynb$//'))
fi
for name in "${names[@]}"; do
  start=$(date +%s)
  jupyter nbconvert --to notebook --execute --inplace \
    --ExecutePreprocessor.timeout=1200 "notebooks/${name%.ipynb}.ipynb"
  echo "${name%.ipynb}: $(( $(date +%s) - start )) s"
done
