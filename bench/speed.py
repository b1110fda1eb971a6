"""Issue 32's speed goals, measured as ratios against an older checkout.

Every measurement runs in a fresh process on one side, then the other, in
alternating order (old, new; new, old; ...), so that drift on a shared
machine hits both; each side imports its own package
(``PYTHONPATH=<checkout>``) and runs its own command line.  Measured:

* ``run``: the benchmark's one-prompt run (Thompson, B = 128, 1024
  rollouts, 17 evaluations) on one thread, with its FLOP floor
  (``bench/profile_run.py``, this checkout's script on both sides);
* ``evaluation``: one greedy evaluation of the 300 held-out problems
  against a plain matmul loop doing the same model FLOPs (prompt and
  completion tokens, no padding) in the same process (:func:`child_eval`);
* ``main_job``: ``dopr-lite train --fresh`` (each side's own default
  threads: the old CLI took every core);
* ``busy``: a 96-rollout ``dopr-lite train --no-reference`` alone and
  beside one CPU-bound process;
* ``compare`` (with ``--compare``): ``dopr-lite compare`` (default rules,
  seeds 0-2), once a side (old first), the new side with ``--jobs`` = the
  cores.

Writes ``--out`` (default ``bench/results/speed.json``) with the command,
every measured time and the ratios (old / new: > 1 is faster).

    python bench/speed.py --old 576a6aa              # ~10 minutes
    python bench/speed.py --old 576a6aa --compare    # + ~25 minutes
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def side_env(checkout: Path) -> dict:
    """The environment of a side's process: its own package, offline, and
    torch's thread count left to the side's code."""
    env = {**os.environ, "PYTHONPATH": str(checkout),
           "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}
    env.pop("OMP_NUM_THREADS", None)
    return env


def timed(cmd: list[str], env: dict, cwd: Path) -> float:
    """Wall seconds of ``cmd``; its output is kept only if it fails."""
    t0 = time.perf_counter()
    out = subprocess.run(cmd, env=env, cwd=cwd, capture_output=True,
                         text=True)
    if out.returncode:
        raise RuntimeError(f"{' '.join(cmd)} failed:\n{out.stderr[-3000:]}")
    return time.perf_counter() - t0


def json_of(cmd: list[str], env: dict, cwd: Path) -> dict:
    out = subprocess.run(cmd, env=env, cwd=cwd, capture_output=True,
                         text=True)
    if out.returncode:
        raise RuntimeError(f"{' '.join(cmd)} failed:\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def child_eval() -> dict:
    """(In a child process, one thread.)  Seconds of one greedy evaluation
    of the held-out split on the embedded policy (median of 3, after a
    warm-up), and of a plain matmul loop over the same model FLOPs: the
    linear layers applied to every prompt token at once, then decoding
    step t on the rows whose completion is still going at t."""
    import torch

    from dopr_lite.config import DoprConfig
    from dopr_lite.evaluation import evaluate
    from dopr_lite.inputs import load_inputs
    from dopr_lite.rewards import exact_answer_reward
    from dopr_lite.rollout import generate_rollouts, sampling_config

    torch.set_num_threads(1)
    cfg = DoprConfig.tiny()
    pol, data, _ = load_inputs(cfg)
    model, tok, test = pol.model, pol.tokenizer, data.test
    times, acc = [], None
    for _ in range(4):
        t0 = time.perf_counter()
        acc = evaluate(model, tok, test, exact_answer_reward, k=0,
                       generation_config=sampling_config(
                           cfg.max_new_tokens, do_sample=False))["accuracy"]
        times.append(time.perf_counter() - t0)
    ro = generate_rollouts(model, tok, [r["prompt"] for r in test], 1,
                           generation_config=sampling_config(
                               cfg.max_new_tokens, do_sample=False))
    prompt_tokens = int(ro.prompt_mask.sum())
    lengths = ro.completion_mask.sum(1)
    alive = [int((lengths > t).sum()) for t in range(int(lengths.max()))]
    base = model.get_base_model()
    weights = [m.weight.detach().clone() for name, m in
               base.named_modules() if isinstance(m, torch.nn.Linear)
               and "lora_" not in name]

    def matmuls():
        for rows in [prompt_tokens] + alive:
            for w in weights:
                torch.ones(rows, w.shape[1]) @ w.T
    matmuls()
    loop = []
    for _ in range(3):
        t0 = time.perf_counter()
        matmuls()
        loop.append(time.perf_counter() - t0)
    tokens = prompt_tokens + int(lengths.sum())
    return {"eval_seconds": statistics.median(times[1:]),
            "first_eval_seconds": times[0], "accuracy": acc,
            "matmul_seconds": statistics.median(loop), "tokens": tokens,
            "gflop": tokens * sum(2 * w.numel() for w in weights) / 1e9}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--old", required=True,
                    help="git revision (or checkout folder) to beat")
    ap.add_argument("--pairs", type=int, default=2,
                    help="alternating old/new pairs of each measurement")
    ap.add_argument("--compare", action="store_true",
                    help="also time dopr-lite compare (default rules, "
                    "seeds 0-2): ~25 more minutes on 2 cores")
    ap.add_argument("--only", nargs="+", choices=[
        "evaluation", "run", "main_job", "busy", "compare"])
    ap.add_argument("--out", default=str(ROOT / "bench/results/speed.json"))
    ap.add_argument("--child", choices=["eval"], help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.child:
        print(json.dumps(child_eval()))
        return 0
    py, jobs = sys.executable, os.cpu_count() or 1
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        old = Path(args.old)
        if not old.is_dir():
            old = tmp / "old"
            subprocess.run(["git", "-C", str(ROOT), "worktree", "add",
                            "--detach", str(old), args.old], check=True,
                           capture_output=True)
        sides = {"old": old, "new": ROOT}
        chosen = args.only or ["evaluation", "run", "main_job", "busy"] + (
            ["compare"] if args.compare else [])
        record = {"command": "python bench/speed.py " + " ".join(
            sys.argv[1:] if argv is None else argv), "old": args.old,
            "new": subprocess.run(["git", "-C", str(ROOT), "rev-parse",
                                   "--short", "HEAD"], capture_output=True,
                                  text=True).stdout.strip(),
            "cores": jobs, "measured": {}, "ratios": {}}
        try:
            for name in chosen:
                record["measured"][name] = measure(
                    name, sides, args.pairs, tmp, py, jobs)
                print(name, json.dumps(record["measured"][name]),
                      flush=True)
        finally:
            if old != Path(args.old):
                subprocess.run(["git", "-C", str(ROOT), "worktree",
                                "remove", "--force", str(old)],
                               capture_output=True)
    record["ratios"] = ratios(record["measured"])
    print(json.dumps(record["ratios"], indent=1))
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(record, indent=1) + "\n")
    print(f"wrote {args.out}")
    return 0


def measure(name: str, sides: dict, pairs: int, tmp: Path, py: str,
            jobs: int) -> dict:
    """``pairs`` alternating rounds of measurement ``name`` on each side."""
    out = {side: [] for side in sides}
    order = list(sides)
    for i in range(pairs if name != "compare" else 1):
        for side in order if i % 2 == 0 else order[::-1]:
            out[side].append(once(name, side, sides[side], tmp, py, jobs))
    return out


def once(name: str, side: str, checkout: Path, tmp: Path, py: str,
         jobs: int):
    cli = [py, "-m", "dopr_lite"]
    if name == "evaluation":
        return json_of([py, str(ROOT / "bench/speed.py"), "--old", "-",
                        "--child", "eval"], side_env(checkout), tmp)
    if name == "run":
        rec = tmp / f"profile-{side}.json"
        timed([py, str(ROOT / "bench/profile_run.py"), "--out", str(rec)],
              side_env(checkout), tmp)
        r = json.loads(rec.read_text())
        return {"seconds": r["seconds"], "floor_seconds":
                r["floor"]["total_seconds"], "final_accuracy":
                r["final_accuracy"], "phases": r["phases"]}
    if name == "main_job":
        return timed(cli + ["train", "--fresh", "--no-progress", "--out",
                            str(tmp / f"main-{side}")], side_env(checkout),
                     tmp)
    if name == "busy":
        short = cli + ["train", "--no-reference", "--max-rollouts", "96",
                       "--fresh", "--no-progress", "--out",
                       str(tmp / f"busy-{side}")]
        alone = timed(short, side_env(checkout), tmp)
        hog = subprocess.Popen([py, "-c", "while True: pass"])
        try:
            beside = timed(short, side_env(checkout), tmp)
        finally:
            hog.kill()
            hog.wait()
        return {"alone": alone, "beside_one_busy": beside}
    if name == "compare":
        extra = ["--jobs", str(jobs)] if side == "new" else []
        return timed(cli + ["compare", "--fresh", "--out",
                            str(tmp / f"compare-{side}")] + extra,
                     side_env(checkout), tmp)
    raise ValueError(name)


def ratios(measured: dict) -> dict:
    """Old over new (> 1: the new side is faster), and the goals' own
    ratios of the new side."""
    med = statistics.median
    out = {}
    if "run" in measured:
        m = measured["run"]
        out["run_old_over_new"] = (med(r["seconds"] for r in m["old"])
                                   / med(r["seconds"] for r in m["new"]))
        out["run_new_over_floor"] = med(r["seconds"] / r["floor_seconds"]
                                        for r in m["new"])
        out["run_old_over_floor"] = med(r["seconds"] / r["floor_seconds"]
                                        for r in m["old"])
    if "evaluation" in measured:
        m = measured["evaluation"]
        for side in ("old", "new"):
            out[f"eval_{side}_over_matmul"] = med(
                r["eval_seconds"] / r["matmul_seconds"] for r in m[side])
        out["eval_old_over_new"] = (
            med(r["eval_seconds"] for r in m["old"])
            / med(r["eval_seconds"] for r in m["new"]))
    for name in ("main_job", "compare"):
        if name in measured:
            m = measured[name]
            out[f"{name}_old_over_new"] = med(m["old"]) / med(m["new"])
    if "busy" in measured:
        for side, runs in measured["busy"].items():
            out[f"busy_{side}_beside_over_alone"] = med(
                r["beside_one_busy"] / r["alone"] for r in runs)
    return out


if __name__ == "__main__":
    sys.exit(main())
