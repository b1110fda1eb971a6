"""Command line: ``dopr-lite`` (or ``python -m dopr_lite``).

    dopr-lite train                      # the main job, embedded default
    dopr-lite train --preset consumer_gpu --set model=Qwen/Qwen2.5-0.5B-Instruct
    dopr-lite train --set num_generations=4 --set learning_rate=1e-3
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
MAIN_JOB = dict(max_rollouts=2048, out_dir="runs/main")


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
        elif kind in ("int", int):
            out[key] = int(raw)
        elif kind in ("float", float):
            out[key] = float(raw)
        elif kind in ("dict", dict):
            out[key] = json.loads(raw)
        else:
            out[key] = raw
    return out


def cmd_train(args) -> int:
    from dopr_lite.train import summary_table, train

    overrides = dict(MAIN_JOB) if args.preset == "tiny" else {}
    if args.out:
        overrides["out_dir"] = args.out
    for name in ("max_rollouts", "max_steps", "seed", "selector"):
        value = getattr(args, name)
        if value is not None:
            overrides[name] = value
    overrides.update(parse_overrides(args.set or []))
    cfg = PRESETS[args.preset](**overrides)
    result = train(cfg, resume=not args.fresh, progress=not args.no_progress)
    print()
    print(summary_table({cfg.selector: result}))
    print(f"\nwrote {cfg.out_dir}/: config.json metrics.jsonl metrics.csv "
          "eval.jsonl run.png ckpt-*/")
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
    t.add_argument("--out", help="output folder (default runs/main)")
    t.add_argument("--max-rollouts", type=int, dest="max_rollouts")
    t.add_argument("--max-steps", type=int, dest="max_steps")
    t.add_argument("--seed", type=int)
    t.add_argument("--selector")
    t.add_argument("--set", action="append", metavar="FIELD=VALUE",
                   help="override any config field (repeatable)")
    t.add_argument("--fresh", action="store_true",
                   help="ignore checkpoints in the output folder")
    t.add_argument("--no-progress", action="store_true")
    t.set_defaults(func=cmd_train)
    b = sub.add_parser("build-tiny", help="rebuild the embedded tiny model")
    b.add_argument("--steps", type=int, default=4000)
    b.add_argument("--seed", type=int, default=0)
    b.add_argument("--out", help="output folder (default: package assets)")
    b.add_argument("--threads", type=int)
    b.set_defaults(func=cmd_build_tiny)
    args = p.parse_args(argv)
    try:
        return args.func(args)
    except ConfigError as err:
        print(f"dopr-lite: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
