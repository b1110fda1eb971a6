"""dopr_lite's own loop vs TRL's GRPOTrainer, at equal settings, on CPU.

Arms (embedded tiny model and task, same G, lengths, sampling, learning
rate, loss, clipping, LoRA, seeds; settings mapped by
``dopr_lite.integrations.trl.grpo_args``):

* ``dopr_lite full`` vs ``trl full``: full-batch GRPO (8 prompts x G);
  TRL as it comes (its own shuffled sampler);
* ``dopr_lite dopr`` vs ``trl dopr``: DoPR, one prompt a step; TRL through
  ``DoprGRPOTrainer``; both without probes (``probe=0``: TRL trains on all
  it generates, so it cannot probe).

Each run is a fresh process (so its peak RSS is its own), dopr_lite and TRL
alternating (A, B, A, B...) so that drift on a shared machine hits both.
Per-step wall time is timed around each training step (selection,
generation, rewards, update; not evaluation), the median taken over steps,
and split into the roll-out phase (selection + generation + rewards:
dopr_lite's ``rollout_seconds``, TRL's ``_generate_and_score_completions``)
and the rest (the update and bookkeeping);
held-out accuracy is greedy, on 200 test prompts, by the same evaluator,
after the same number of rollouts.  Writes JSON (``<out>`` and
``bench/results/trl_side_by_side.json``) and prints a table.

    python bench/trl_side_by_side.py                  # 3 seeds, ~6 min
    python bench/trl_side_by_side.py --seeds 0 --full-rollouts 256
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

from dopr_lite.env import peak_memory_gb, runs_dir, versions


def run_dopr_lite(cfg) -> dict:
    from dopr_lite.loop import train

    r = train(cfg, progress=False, resume=False)
    return {"step_seconds": [m["seconds"] for m in r.metrics],
            "rollout_seconds": [m["rollout_seconds"] for m in r.metrics],
            "rollouts": r.counter.cost, "tokens": r.counter.cost_tokens,
            "accuracy": r.final_accuracy, "base_accuracy": r.base_accuracy}


def run_trl(cfg) -> dict:
    from transformers import TrainerCallback
    from trl import GRPOTrainer

    from dopr_lite.data import load_prompts
    from dopr_lite.evaluation import evaluate
    from dopr_lite.integrations.trl import DoprGRPOTrainer, grpo_args
    from dopr_lite.policy import load_policy, lora_config
    from dopr_lite.rewards import get_reward
    from dopr_lite.tiny import EMBEDDED_DIR
    from dopr_lite.loop import EVAL_SEED_OFFSET

    class StepTimer(TrainerCallback):
        def __init__(self):
            self.seconds, self.t0 = [], None

        def on_step_begin(self, args, state, control, **kw):
            self.t0 = time.perf_counter()

        def on_step_end(self, args, state, control, **kw):
            self.seconds.append(time.perf_counter() - self.t0)

    tok = load_policy(cfg, use_lora=False).tokenizer
    data = load_prompts(cfg, tok)
    timer = StepTimer()
    common = dict(model=str(EMBEDDED_DIR), reward_funcs=get_reward(
        cfg.reward), args=grpo_args(cfg, cfg.out_dir, save_strategy="no"),
        train_dataset=data.train, processing_class=tok,
        peft_config=lora_config(cfg), callbacks=[timer])
    if cfg.selector == "full":  # TRL as it comes
        trainer = GRPOTrainer(**common)
    else:
        trainer = DoprGRPOTrainer(**common, selector=cfg.selector,
                                  prompts_per_step=cfg.prompts_per_step)
    rollout_seconds = []
    generate_and_score = trainer._generate_and_score_completions

    def timed(inputs):  # TRL's select (DoPR) + generate + score phase
        t0 = time.perf_counter()
        out = generate_and_score(inputs)
        rollout_seconds.append(time.perf_counter() - t0)
        return out

    trainer._generate_and_score_completions = timed
    trainer.train()
    model = trainer.accelerator.unwrap_model(trainer.model)
    per_step = trainer.args.per_device_train_batch_size
    ev = evaluate(model, tok, data.test, get_reward(cfg.reward), k=0,
                  max_new_tokens=cfg.max_new_tokens,
                  batch_size=cfg.eval_batch,
                  seed=cfg.seed + EVAL_SEED_OFFSET)
    lengths = [h["completions/mean_length"] for h in
               trainer.state.log_history if "completions/mean_length" in h]
    return {"step_seconds": timer.seconds,
            "rollout_seconds": rollout_seconds,
            "rollouts": per_step * len(timer.seconds),
            "tokens": round(per_step * sum(lengths)),
            "accuracy": ev["accuracy"]}


def child(spec: dict) -> dict:
    """One run in this process: ``spec`` = engine, rule, budget, seed."""
    from dopr_lite.config import DoprConfig

    cfg = DoprConfig(selector=spec["rule"],
                     selector_args=({"probe": 0} if spec["rule"] == "dopr"
                                    else {}),
                     max_rollouts=spec["rollouts"], seed=spec["seed"],
                     n_test=spec["n_test"], eval_k=0, save_every=0,
                     eval_every=10_000, out_dir=spec["out"])
    t0 = time.perf_counter()
    out = (run_dopr_lite if spec["engine"] == "dopr_lite" else run_trl)(cfg)
    return {**spec, **out, "wall_s": time.perf_counter() - t0,
            "peak_rss_gb": peak_memory_gb()}


def summarise(runs: list[dict]) -> list[dict]:
    rows = []
    for rule in dict.fromkeys(r["rule"] for r in runs):
        by = {e: [r for r in runs if r["rule"] == rule and r["engine"] == e]
              for e in ("dopr_lite", "trl")}
        row = {"rule": rule}
        for engine, rs in by.items():
            steps = [s for r in rs for s in r["step_seconds"]]
            accs = [r["accuracy"] for r in rs]
            rollout = [s for r in rs for s in r["rollout_seconds"]]
            row[engine] = {
                "median_step_s": statistics.median(steps),
                "median_rollout_s": statistics.median(rollout),
                "median_update_s": statistics.median(
                    s - g for r in rs for s, g in zip(
                        r["step_seconds"], r["rollout_seconds"],
                        strict=True)),
                "rollouts_per_s": statistics.mean(
                    r["rollouts"] / sum(r["step_seconds"]) for r in rs),
                "tokens_per_s": statistics.mean(
                    r["tokens"] / sum(r["step_seconds"]) for r in rs),
                "mean_length": statistics.mean(
                    r["tokens"] / r["rollouts"] for r in rs),
                "peak_rss_gb": max(r["peak_rss_gb"] for r in rs),
                "accuracy": statistics.mean(accs),
                "accuracy_sd": statistics.pstdev(accs),
                "rollouts": rs[0]["rollouts"]}
        row["trl_over_dopr_lite"] = (row["trl"]["median_step_s"]
                                     / row["dopr_lite"]["median_step_s"])
        rows.append(row)
    return rows


def table(rows: list[dict], seeds) -> str:
    lines = ["| rule | engine | median s/step | (roll out + update) "
             "| TRL / dopr_lite | rollouts/s "
             "| tokens/s | mean length | peak RSS GB | held-out acc (mean ± "
             f"sd, {len(seeds)} seeds) | rollouts |",
             "|---|---|---|---|---|---|---|---|---|---|---|"]
    for row in rows:
        for engine in ("dopr_lite", "trl"):
            e = row[engine]
            ratio = f"{row['trl_over_dopr_lite']:.2f}x" \
                if engine == "trl" else ""
            lines.append(
                f"| {row['rule']} | {engine} | {e['median_step_s']:.3f} | "
                f"{e['median_rollout_s']:.3f} + {e['median_update_s']:.3f} | "
                f"{ratio} | {e['rollouts_per_s']:.1f} | "
                f"{e['tokens_per_s']:.0f} | {e['mean_length']:.1f} | "
                f"{e['peak_rss_gb']:.2f} | {e['accuracy']:.3f} ± "
                f"{e['accuracy_sd']:.3f} | {e['rollouts']} |")
    return "\n".join(lines)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--full-rollouts", type=int, default=512)
    p.add_argument("--one-rollouts", type=int, default=256)
    p.add_argument("--n-test", type=int, default=200)
    p.add_argument("--out", default=str(Path(runs_dir("bench")) / "trl"))
    p.add_argument("--child", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.child:  # one run, in this fresh process
        print("RESULT " + json.dumps(child(json.loads(args.child))))
        return 0
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    runs = []
    for seed in args.seeds:
        for rule, budget in (("full", args.full_rollouts),
                             ("dopr", args.one_rollouts)):
            for engine in ("dopr_lite", "trl"):  # alternating A, B
                spec = {"engine": engine, "rule": rule, "rollouts": budget,
                        "seed": seed, "n_test": args.n_test,
                        "out": str(out / f"{engine}-{rule}-{seed}")}
                proc = subprocess.run(
                    [sys.executable, __file__, "--child", json.dumps(spec)],
                    env=env, capture_output=True, text=True)
                line = [s for s in proc.stdout.splitlines()
                        if s.startswith("RESULT ")]
                if proc.returncode or not line:
                    print(proc.stderr[-3000:], file=sys.stderr)
                    return 1
                runs.append(json.loads(line[-1][7:]))
                r = runs[-1]
                print(f"{engine:<9} {rule:<5} seed {seed}: "
                      f"{statistics.median(r['step_seconds']):.3f} s/step, "
                      f"acc {r['accuracy']:.3f}, {r['rollouts']} rollouts, "
                      f"RSS {r['peak_rss_gb']:.2f} GB", flush=True)
    rows = summarise(runs)
    record = json.dumps(
        {"command": " ".join(["python", "bench/trl_side_by_side.py",
                              *(argv if argv is not None else sys.argv[1:])]),
         "versions": versions(), "settings": vars(args), "runs": runs,
         "summary": rows}, indent=1) + "\n"
    results = Path(__file__).resolve().parent / "results"
    for folder in (out, results):
        (folder / "trl_side_by_side.json").write_text(record)
    print()
    print(table(rows, args.seeds))
    print(f"\nwrote {out / 'trl_side_by_side.json'} and "
          f"{results / 'trl_side_by_side.json'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
