"""The step-time model (``dopr_lite.steptime``) checked on the CPU, and
used to turn a benchmark's rollouts into estimated GPU time.

(a) CPU validation.  Reads ``bench/results/step_time.json`` (made by
``python bench/step_time.py --batch 8 32 128``), whose sides must carry
their steps as logged (``steps``: each with :data:`steprow.ROW_KEYS` and
the seconds of its parts), fits the CPU as a card on ONE setting, the
random-one rule at B = 8 (``cpufit.fit_cpu``: a throughput scale and
the per-layer overhead), and reports the model's error on the mean seconds
per step of every side at every B (the goal: within 25%).

(b) GPU tables.  Reads a ``dopr-lite compare`` JSON
(``bench/results/compare_scale.json`` format) and prints, for each B and
rule, the rollouts to a share (95%) of full-batch GRPO's gain, the steps
that makes, and the estimated time to it on a 12 GB card, a 24 GB card and
an H100, with the ``consumer_gpu`` preset's settings (Qwen2.5-1.5B, 4-bit
+ LoRA, G = 8, completions to 768 tokens, a ~200-token prompt): what the
same run shape would cost on a real model, if it needed the same rollouts.
Every time printed is an estimate.

Writes both to ``--out`` (default ``bench/results/time_model.json``) with
the command that made it.

    python bench/time_model.py
    python bench/time_model.py --compare runs/bench/scale/compare.json
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from pathlib import Path

from dopr_lite import archs, cpufit, steplog, steprow, steptime
from dopr_lite.savings import gpu_table, gpu_tables
from dopr_lite.config import DoprConfig

ROOT = Path(__file__).resolve().parent.parent
FIT_SIDE, FIT_BATCH = "random", "8"  # the one setting the CPU is fitted on
GOAL = 0.25  # the model's error on a side's mean seconds per step
STEP_TIMES = ("rollout_seconds", "update_seconds", "seconds")
CARDS = ("rtx3060", "rtx4090", "h100-sxm")


# --- (a) CPU validation ----------------------------------------------------
def missing_fields(record: dict) -> list[str]:
    """What a step_time.json lacks for the validation (empty: nothing)."""
    need = set(steprow.ROW_KEYS) | set(STEP_TIMES)
    missing = set()
    for sides in record["by_batch"].values():
        for side in sides.values():
            steps = side.get("steps")
            missing |= need if not steps else need - set(steps[0])
    return sorted(missing)


def side_workloads(side: dict, dims, settings) -> list:
    return [steplog.workload_from_row(r, dims, **settings)
            for r in side["steps"]]


def validate(record: dict) -> dict:
    """Fit the CPU on random-one at B = 8, predict every side at every B:
    measured and estimated mean seconds per step, and the error."""
    cfg = DoprConfig.tiny()
    dims = archs.model_dims(record.get("model", cfg.model))
    settings = steplog.run_settings(cfg)
    fit_side = record["by_batch"][FIT_BATCH][FIT_SIDE]
    fit = cpufit.fit_cpu(side_workloads(fit_side, dims, settings),
                           [r["rollout_seconds"] for r in fit_side["steps"]],
                           [r["update_seconds"] for r in fit_side["steps"]])
    rows = []
    for B, sides in record["by_batch"].items():
        for name, side in sides.items():
            est = [steptime.step_seconds(w, fit.card, fit.eff)
                   for w in side_workloads(side, dims, settings)]
            measured = statistics.mean(r["seconds"] for r in side["steps"])
            estimate = statistics.mean(e["total"] for e in est)
            rows.append({
                "batch": int(B), "side": name, "measured_s": measured,
                "estimate_s": estimate, "error": estimate / measured - 1,
                "measured_rollout_s": statistics.mean(
                    r["rollout_seconds"] for r in side["steps"]),
                "estimate_rollout_s": statistics.mean(
                    e["generate"] + e["entropy"] for e in est),
                "measured_update_s": statistics.mean(
                    r["update_seconds"] for r in side["steps"]),
                "estimate_update_s": statistics.mean(e["update"]
                                                     for e in est),
                "fitted": (B, name) == (FIT_BATCH, FIT_SIDE)})
    return {"fit": {"card": vars(fit.card), "efficiency": vars(fit.eff),
                    "rms_s": fit.rms_s, "on": f"{FIT_SIDE} at B = "
                    f"{FIT_BATCH}"},
            "goal": GOAL, "rows": rows}


def validation_table(result: dict) -> str:
    lines = ["| B | side | measured s/step (mean) | estimate | error | "
             "pick+generate measured / estimate | update measured / "
             "estimate |", "|---|---|---|---|---|---|---|"]
    for r in result["rows"]:
        mark = " (fitted here)" if r["fitted"] else ""
        lines.append(
            f"| {r['batch']} | {r['side']}{mark} | {r['measured_s']:.3f} | "
            f"{r['estimate_s']:.3f} | {r['error']:+.0%} | "
            f"{r['measured_rollout_s']:.3f} / {r['estimate_rollout_s']:.3f}"
            f" | {r['measured_update_s']:.4f} / "
            f"{r['estimate_update_s']:.4f} |")
    within = sum(abs(r["error"]) <= GOAL for r in result["rows"])
    lines.append(f"\n{within} of {len(result['rows'])} sides within "
                 f"{GOAL:.0%}; fitted on {result['fit']['on']}: overhead "
                 f"{1e3 * result['fit']['efficiency']['layer_overhead_s']:.2f}"
                 f" ms per layer per pass, throughput "
                 f"{1e3 * result['fit']['card']['bf16_tflops']:.1f} GFLOPS")
    return "\n".join(lines)


def _found(path: str) -> Path:
    """``path`` as given, or under the repository if it is not there."""
    return Path(path) if Path(path).exists() else ROOT / path


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--step-time", default="bench/results/step_time.json",
                   help="bench/step_time.py's JSON (default: %(default)s)")
    p.add_argument("--saving", default="bench/results/dopr_v2.json",
                   help="bench/saving.py's JSON: rollouts to the target "
                   "per mix, B and rule (default: %(default)s)")
    p.add_argument("--cards", nargs="+", default=list(CARDS),
                   choices=sorted(steptime.CARDS))
    p.add_argument("--out", default="bench/results/time_model.json")
    a = p.parse_args(argv)
    out = {"command": " ".join(["python", "bench/time_model.py",
                                *(sys.argv[1:] if argv is None else argv)]),
           "step_time": a.step_time, "saving": a.saving}
    record = json.loads(_found(a.step_time).read_text())
    missing = missing_fields(record)
    if missing:
        out["validation"] = {"missing": missing}
        print(f"(a) {a.step_time} lacks {missing}: bench/step_time.py "
              "should keep, for each side, its measured steps as "
              "'steps': [{k: row[k] for k in steprow.ROW_KEYS + "
              f"{STEP_TIMES}}} for row in rows]")
    else:
        out["validation"] = validate(record)
        print("(a) the step-time model on the CPU (embedded model):\n"
              + validation_table(out["validation"]))
    saving = json.loads(_found(a.saving).read_text())
    out["gpu"] = gpu_tables(saving, a.cards)
    print(f"\n(b) estimated GPU time to the target, with {a.saving}'s "
          "rollouts on the consumer_gpu preset's model and settings:")
    for mix, t in out["gpu"].items():
        print("\n" + gpu_table(mix, t, a.cards))
    Path(a.out).parent.mkdir(parents=True, exist_ok=True)
    Path(a.out).write_text(json.dumps(out, indent=1, default=str) + "\n")
    print(f"\nwrote {a.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
