#!/usr/bin/env bash
# Download the wheels a GPU machine without internet may lack into .whl/
# (git-ignored), for scripts/device_check.sh.  ~58 MB, mostly bitsandbytes.
set -euo pipefail
cd "$(dirname "$0")/.."
mkdir -p .whl
python -m pip download -q --no-deps -d .whl \
  bitsandbytes==0.50.2 peft==0.21.2 transformers==5.24.0 \
  math-verify==0.9.0 latex2sympy2_extended==1.11.0 \
  antlr4-python3-runtime==4.13.2
ls -la .whl
