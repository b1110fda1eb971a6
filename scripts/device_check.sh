#!/usr/bin/env bash
# The GPU check, in one go (< 8 minutes on one H100, and step 1b up to 6
# more): on a CUDA machine with
# no internet, install what is missing from carried wheels (.whl/, made by
# scripts/fetch_wheels.sh), then run
#   1. bench/gpu_memory.py: Qwen2.5-0.5B and 1.5B architectures (random
#      weights), 4-bit + LoRA, one DoPR and one full-batch step, 512 tokens;
#   1b. bench/gpu_time.py: generate seconds against sequences per call and
#      completion length, update seconds against rows, bf16 and 4-bit, on
#      Qwen2.5-1.5B's architecture, with the step-time model's error on
#      each (a few minutes; also written to bench/results/gpu_time.json);
#   2. the GPU-marked tests;
#   3. notebook 06's cells on the tiny preset, on the GPU.
# Results go to $OUT (default runs/device): JSON, logs, figures.
set -uo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-runs/device}
mkdir -p "$OUT"
export HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1 TOKENIZERS_PARALLELISM=false
export MPLBACKEND=Agg MPLCONFIGDIR="$OUT/mpl" DOPR_FIGURES="$OUT/figures"
export DOPR_RUNS="$OUT/runs" PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
export PIP_DISABLE_PIP_VERSION_CHECK=1
start=$(date +%s)
log() { echo "[$(( $(date +%s) - start )) s] $*" | tee -a "$OUT/summary.txt"; }

nvidia-smi > "$OUT/nvidia-smi.txt" 2>&1 || log "no nvidia-smi"
# --- install only what is missing, only from .whl/ -------------------------
need() {  # need MODULE PIP_NAME [MIN_MAJOR]
  python - "$1" "${3:-0}" <<'PY' && return 0
import importlib, sys
m = importlib.import_module(sys.argv[1])
major = int(str(getattr(m, "__version__", "0")).split(".")[0])
sys.exit(0 if major >= int(sys.argv[2]) else 1)
PY
  log "installing $2 from .whl/"
  python -m pip install -q --no-index --find-links .whl --no-deps "$2" \
    || log "FAILED to install $2 (run scripts/fetch_wheels.sh and carry .whl)"
}
need transformers transformers 5
need peft peft
need bitsandbytes bitsandbytes
need antlr4 antlr4-python3-runtime
need latex2sympy2_extended latex2sympy2_extended
need math_verify math-verify
python -c "from dopr_lite.env import versions; import json, torch; \
print(json.dumps({**versions(), 'cuda': torch.version.cuda, \
'gpu': torch.cuda.get_device_name(0) if torch.cuda.is_available() else None}))" \
  | tee "$OUT/versions.json"

# --- 1. the memory/throughput benchmark ------------------------------------
log "gpu_memory: start"
timeout 300 python bench/gpu_memory.py --out "$OUT/gpu_memory.json" \
  > "$OUT/gpu_memory.log" 2>&1
log "gpu_memory: exit $?"
tail -n 8 "$OUT/gpu_memory.log" | tee -a "$OUT/summary.txt"

# --- 1b. the step-time model against measured GPU seconds -----------------
if python -c "import sys, torch; sys.exit(not torch.cuda.is_available())"
then
  log "gpu_time: start"
  timeout 360 python bench/gpu_time.py --out "$OUT/gpu_time.json" \
    > "$OUT/gpu_time.log" 2>&1
  log "gpu_time: exit $?"
  tail -n 24 "$OUT/gpu_time.log" | tee -a "$OUT/summary.txt"
else
  log "gpu_time: no CUDA device, skipped"
fi

# --- 2. tests that need a GPU ----------------------------------------------
if python -c "import pytest" 2>/dev/null; then
  timeout 120 python -m pytest -q -m gpu -p no:cacheprovider tests \
    > "$OUT/pytest_gpu.log" 2>&1
  log "pytest -m gpu: exit $? ($(tail -n 1 "$OUT/pytest_gpu.log"))"
fi

# --- 3. notebook 06, tiny preset, on the GPU (its cells as one script) ----
log "notebook 06 (tiny preset): start"
DOPR_PRESET=tiny timeout 240 python - > "$OUT/notebook06.log" 2>&1 <<'PY'
import json
import matplotlib
matplotlib.use("Agg")
cells = json.load(open("notebooks/06_dopr_consumer_gpu.ipynb"))["cells"]
namespace = {"__name__": "__main__"}
for i, cell in enumerate(cells):
    if cell["cell_type"] == "code":  # our own notebook's code, in order
        exec(compile("".join(cell["source"]), f"<cell {i}>", "exec"),
             namespace)
PY
log "notebook 06: exit $?"
tail -n 12 "$OUT/notebook06.log" | tee -a "$OUT/summary.txt"
log "done; results in $OUT"
