"""Command line: ``dopr-lite`` (or ``python -m dopr_lite``).

    dopr-lite train                      # the main job: DoPR + GRPO reference
    dopr-lite train --preset consumer_gpu --set model=Qwen/Qwen2.5-0.5B-Instruct
    dopr-lite train --set num_generations=4 --set learning_rate=1e-3
    dopr-lite compare                    # DoPR vs baselines (bench)
    dopr-lite build-tiny                 # rebuild the embedded checkpoint
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from pathlib import Path

from dopr_lite.config import ConfigError, DoprConfig
from dopr_lite.env import PROFILES as PRESETS
# the main job on the embedded default: DoPR, and full-batch GRPO with 4x
# the rollouts as the reference curve
MAIN_JOB = dict(selector="dopr", max_rollouts=512, eval_every=8, eval_k=0)
REFERENCE_FACTOR = 4


def parse_overrides(pairs: list[str]) -> dict:
    """``["lr=1e-3", "use_lora=false"]`` -> typed config overrides."""
    types = {f.name: f.type for f in dataclasses.fields(DoprConfig)}
    out = {}
    for pair in pairs:
        key, sep, raw = pair.partition("=")
        if not sep or key not in types:
            raise ConfigError(f"--set {pair!r}: expected FIELD=VALUE with a "
                              f"config field; fields: {sorted(types)}")
        kind = types[key]
        if kind in ("bool", bool):
            if raw.lower() not in ("true", "false", "1", "0"):
                raise ConfigError(f"--set {key}: expected true or false")
            out[key] = raw.lower() in ("true", "1")
            continue
        try:
            if kind in ("int", int):
                out[key] = int(raw)
            elif kind in ("float", float):
                out[key] = float(raw)
            elif kind in ("dict", dict):
                out[key] = json.loads(raw)
            else:
                out[key] = raw
        except ValueError as err:
            raise ConfigError(f"--set {key}: expected a {kind} value, got "
                              f"{raw!r}") from err
    return out


def cmd_train(args) -> int:
    from dopr_lite.plots import plot_runs, save_figure
    from dopr_lite.train import summary_table, train

    overrides = dict(MAIN_JOB) if args.preset == "tiny" else {}
    for name in ("max_rollouts", "max_steps", "seed", "selector"):
        value = getattr(args, name)
        if value is not None:
            overrides[name] = value
    overrides.update(parse_overrides(args.set or []))
    out = Path(args.out or "runs/main")
    cfg = PRESETS[args.preset](**overrides)
    runs = {cfg.selector: dataclasses.replace(
        cfg, out_dir=str(out / cfg.selector))}
    if not args.no_reference and cfg.selector != "full":
        runs["full"] = dataclasses.replace(
            cfg, selector="full", selector_args={},
            max_rollouts=cfg.max_rollouts * REFERENCE_FACTOR,
            # evaluate at the same rollout counts as the one-prompt run
            eval_every=max(1, cfg.eval_every // cfg.prompts_per_step),
            out_dir=str(out / "full"))
    results = {}
    for label, run_cfg in runs.items():
        print(f"== {label}: {run_cfg.max_rollouts or run_cfg.max_steps} "
              f"{'rollouts' if run_cfg.max_rollouts else 'steps'} -> "
              f"{run_cfg.out_dir}")
        results[label] = train(run_cfg, resume=not args.fresh,
                               progress=not args.no_progress)
    print()
    print(summary_table(results))
    if len(results) > 1:
        fig = plot_runs(results, title="main job: " + " vs ".join(results))
        print(f"\nfigure: {save_figure(fig, 'compare', out)}")
    print(f"wrote {out}/<rule>/: config.json metrics.jsonl metrics.csv "
          "eval.jsonl run.png ckpt-*/")
    return 0


def cmd_compare(args) -> int:
    from dopr_lite.compare import benchmark, format_table
    from dopr_lite.env import runs_dir
    from dopr_lite.plots import plot_comparison, save_figure

    out = args.out or str(runs_dir("bench/compare"))
    command = "dopr-lite compare " + " ".join(args.argv)
    try:
        results, rows = benchmark(args.seeds, args.full_rollouts,
                                  args.one_rollouts, args.n_test, args.rules,
                                  out, command, resume=args.resume)
    except ValueError as err:
        raise ConfigError(f"--rules: {err}") from err
    target = rows[0]["targets"][0.95] if rows else None
    fig = plot_comparison(results, target=target,
                          title="DoPR vs baselines, embedded task")
    print(f"figure: {save_figure(fig, args.figure)}")
    if rows:
        print(format_table(rows))
    print(f"wrote {out}/compare.json")
    return 0


def cmd_build_tiny(args) -> int:
    import torch

    from dopr_lite.tiny import EMBEDDED_DIR, build

    from dopr_lite.evaluate import evaluate
    from dopr_lite.policy import load_policy
    from dopr_lite.rewards import exact_answer_reward
    from dopr_lite.task import task_dataset

    torch.set_num_threads(args.threads or torch.get_num_threads())
    out = args.out or EMBEDDED_DIR
    info = build(out, steps=args.steps, seed=args.seed)
    pol = load_policy(model=str(out), use_lora=False)
    info["heldout"] = evaluate(pol.model, pol.tokenizer,
                               task_dataset("test", 300),
                               exact_answer_reward, k=8)
    (Path(out) / "build_info.json").write_text(json.dumps(info, indent=1))
    print(json.dumps({k: v for k, v in info.items() if k != "warmup_log"}))
    return 0


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="dopr-lite", description=__doc__,
                                formatter_class=argparse.RawTextHelpFormatter)
    sub = p.add_subparsers(dest="cmd", required=True)
    t = sub.add_parser("train", help="train (the main job by default)")
    t.add_argument("--preset", choices=sorted(PRESETS), default="tiny")
    t.add_argument("--out", help="output folder (default runs/main); "
                   "each run writes to <out>/<selector>/")
    t.add_argument("--max-rollouts", type=int, dest="max_rollouts")
    t.add_argument("--max-steps", type=int, dest="max_steps")
    t.add_argument("--seed", type=int)
    t.add_argument("--selector")
    t.add_argument("--set", action="append", metavar="FIELD=VALUE",
                   help="override any config field (repeatable)")
    t.add_argument("--no-reference", action="store_true",
                   dest="no_reference",
                   help="skip the full-batch GRPO reference run (which gets "
                   f"{REFERENCE_FACTOR}x the rollouts)")
    t.add_argument("--fresh", action="store_true",
                   help="ignore checkpoints in the output folder")
    t.add_argument("--no-progress", action="store_true")
    t.set_defaults(func=cmd_train)
    c = sub.add_parser("compare", help="DoPR vs baselines (bench)")
    c.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    c.add_argument("--full-rollouts", type=int, default=2048,
                   dest="full_rollouts", help="budget of full-batch rules")
    c.add_argument("--one-rollouts", type=int, default=512,
                   dest="one_rollouts", help="budget of one-prompt rules")
    c.add_argument("--n-test", type=int, default=300, dest="n_test")
    c.add_argument("--rules", nargs="+", help="rule labels, or variants "
                   "LABEL=RULE:key=value,... (e.g. p0=dopr:probe=0)")
    c.add_argument("--out", help="default runs/bench/compare")
    c.add_argument("--resume", action="store_true",
                   help="continue or reuse finished runs in --out")
    c.add_argument("--figure", default="bench_compare",
                   help="name of the figure in figures/")
    c.set_defaults(func=cmd_compare)
    b = sub.add_parser("build-tiny", help="rebuild the embedded tiny model")
    b.add_argument("--steps", type=int, default=4000)
    b.add_argument("--seed", type=int, default=0)
    b.add_argument("--out", help="output folder (default: package assets)")
    b.add_argument("--threads", type=int)
    b.set_defaults(func=cmd_build_tiny)
    args = p.parse_args(argv)
    args.argv = list(sys.argv[1:] if argv is None else argv)[1:]
    try:
        return args.func(args)
    except user_errors() as err:  # one message, no traceback
        print(f"dopr-lite: {err}", file=sys.stderr)
        return 2


def user_errors() -> tuple:
    """Errors that name a fix for the user: shown without a traceback."""
    from dopr_lite.data import DataError
    from dopr_lite.policy import PolicyLoadError
    from dopr_lite.train import CheckpointError, NonFiniteError, OutOfMemory

    return (ConfigError, DataError, PolicyLoadError, CheckpointError,
            NonFiniteError, OutOfMemory)


if __name__ == "__main__":
    sys.exit(main())
