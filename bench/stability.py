"""One-prompt stability: does a DoPR run keep what it learned?

Trains DoPR on the main job's settings (``DoprConfig.tiny()``: the embedded
model and task, 512 rollouts) on several seeds, in dopr_lite's own loop and
in the TRL integration (``DoprGRPOTrainer``, where DoPR runs without probes
as TRL trains on all it generates), evaluating the held-out accuracy every
``--eval-every`` steps with the same evaluator in both.  For each run it
reports the peak, the end, how far the end is below the peak and the
largest dip below the running peak at any evaluation
(:func:`dopr_lite.compare.stability`); the goal (issue 17): no run ends more
than 10 points below its peak or dips more than 10 points, and none
collapses.  Each run is a fresh process.  Writes JSON to
``<out>/stability.json`` and ``bench/results/<name of out>.json``.

    python bench/stability.py                     # seeds 0-5, both engines
    python bench/stability.py --seeds 0 --engines trl --set learning_rate=4e-3
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

LIMIT = 0.10  # the largest fall (accuracy points, 0-1) the goal allows


def parse_set(items: list[str]) -> dict:
    out = {}
    for item in items:
        key, _, value = item.partition("=")
        try:
            out[key] = json.loads(value)
        except ValueError:
            out[key] = value
    return out


def run_loop(cfg) -> list[dict]:
    from dopr_lite.loop import train

    r = train(cfg, progress=False, resume=False, log=lambda *a: None)
    return [{"step": e["step"], "rollouts": e["rollouts"],
             "accuracy": e["accuracy"]} for e in r.evals]


def run_trl(cfg) -> list[dict]:
    from transformers import TrainerCallback

    from dopr_lite.data import load_prompts
    from dopr_lite.evaluation import evaluate
    from dopr_lite.integrations.trl import dopr_trainer
    from dopr_lite.loop import EVAL_SEED_OFFSET
    from dopr_lite.policy import load_tokenizer
    from dopr_lite.rewards import get_reward

    tok = load_tokenizer(cfg)
    data, reward = load_prompts(cfg, tok), get_reward(cfg.reward)
    evals = []

    def score(model, step):
        model.eval()
        ev = evaluate(model, tok, data.test, reward, k=0,
                      max_new_tokens=cfg.max_new_tokens,
                      batch_size=cfg.eval_batch,
                      seed=cfg.seed + EVAL_SEED_OFFSET)
        model.train()
        evals.append({"step": step, "rollouts": step * cfg.num_generations,
                      "accuracy": ev["accuracy"]})

    class Evaluate(TrainerCallback):
        def on_step_end(self, args, state, control, model=None, **kw):
            if state.global_step % cfg.eval_every == 0:
                score(model, state.global_step)

    trainer = dopr_trainer(cfg, data.train, tok, cfg.out_dir,
                           save_strategy="no")
    trainer.add_callback(Evaluate())
    score(trainer.model, 0)
    trainer.train()
    if evals[-1]["step"] != trainer.state.global_step:
        score(trainer.model, trainer.state.global_step)
    return evals


def child(spec: dict) -> dict:
    from dopr_lite.compare import stability
    from dopr_lite.config import DoprConfig
    from dopr_lite.runlog import RunResult

    cfg = DoprConfig.tiny(**spec["settings"], seed=spec["seed"],
                          save_every=0, eval_every=spec["eval_every"],
                          out_dir=spec["out"])
    t0 = time.perf_counter()
    evals = (run_loop if spec["engine"] == "loop" else run_trl)(cfg)
    falls = stability(RunResult(None, [], evals, None))
    acc = [e["accuracy"] for e in evals]
    return {**spec, "evals": evals, **falls, "peak": max(acc),
            "end": acc[-1], "seconds": time.perf_counter() - t0}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--seeds", type=int, nargs="+", default=list(range(6)))
    p.add_argument("--engines", nargs="+", default=["loop", "trl"],
                   choices=["loop", "trl"])
    p.add_argument("--set", action="append", default=[],
                   metavar="FIELD=VALUE", help="config fields for every run")
    p.add_argument("--eval-every", type=int, default=4)
    p.add_argument("--out", default="runs/bench/stability")
    p.add_argument("--child", help=argparse.SUPPRESS)
    a = p.parse_args(argv)
    if a.child:
        print("RESULT " + json.dumps(child(json.loads(a.child))))
        return 0
    out, env = Path(a.out), {**os.environ, "HF_HUB_OFFLINE": "1"}
    runs = []
    for seed in a.seeds:
        for engine in a.engines:
            spec = {"engine": engine, "seed": seed,
                    "settings": parse_set(a.set),
                    "eval_every": a.eval_every,
                    "out": str(out / f"{engine}-s{seed}")}
            proc = subprocess.run([sys.executable, __file__, "--child",
                                   json.dumps(spec)], env=env,
                                  capture_output=True, text=True)
            line = [s for s in proc.stdout.splitlines()
                    if s.startswith("RESULT ")]
            if proc.returncode or not line:
                print(proc.stderr[-3000:], file=sys.stderr)
                return 1
            r = json.loads(line[-1][7:])
            runs.append(r)
            print(f"{engine:<5} seed {seed}: {r['evals'][0]['accuracy']:.3f}"
                  f" -> peak {r['peak']:.3f}, end {r['end']:.3f}; end below "
                  f"peak {100 * r['end_below_peak']:.1f} pts, worst dip "
                  f"{100 * r['dip']:.1f} pts ({r['seconds']:.0f} s)",
                  flush=True)
    summary = {}
    for engine in a.engines:
        rs = [r for r in runs if r["engine"] == engine]
        summary[engine] = {
            "runs": len(rs),
            "worst_end_below_peak": max(r["end_below_peak"] for r in rs),
            "worst_dip": max(r["dip"] for r in rs),
            "lowest_end": min(r["end"] for r in rs),
            "meets_goal": all(r["end_below_peak"] <= LIMIT
                              and r["dip"] <= LIMIT for r in rs)}
        s = summary[engine]
        print(f"{engine}: {s['runs']} runs, worst end below peak "
              f"{100 * s['worst_end_below_peak']:.1f} pts, worst dip "
              f"{100 * s['worst_dip']:.1f} pts, lowest end "
              f"{s['lowest_end']:.3f}: goal (<= {100 * LIMIT:.0f} pts) "
              f"{'met' if s['meets_goal'] else 'NOT met'}")
    record = {"command": " ".join(["python", "bench/stability.py",
                                   *(argv if argv is not None
                                     else sys.argv[1:])]),
              "settings": vars(a), "summary": summary, "runs": runs}
    out.mkdir(parents=True, exist_ok=True)
    (out / "stability.json").write_text(json.dumps(record, indent=1))
    results = Path(__file__).resolve().parent / "results"
    (results / f"{out.name}.json").write_text(json.dumps(record, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
