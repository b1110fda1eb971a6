#!/usr/bin/env bash
# The README's test command: lint, unit and end-to-end tests, notebooks.
set -euo pipefail
cd "$(dirname "$0")/.."
export HF_HUB_OFFLINE=${HF_HUB_OFFLINE:-1}
ruff check dopr_lite tests bench
python -m pytest -q -m "not gpu" "$@"
if compgen -G "notebooks/*.ipynb" >/dev/null; then
  python -m pytest -q --nbval-lax --nbval-current-env \
    --nbval-cell-timeout=600 notebooks/
fi
