"""Command line: ``dopr-lite`` (or ``python -m dopr_lite``).

Five commands: ``train`` (the main job by default), ``compare`` (the
benchmark of selection rules), ``preflight`` (measure a prompt pool before
training on it), ``config`` (every field with its help) and ``build-tiny``
(rebuild the embedded model).  Each prints user errors as one
line naming the fix, exits 2, and writes nothing when it fails.
"""

from __future__ import annotations

import argparse
import dataclasses
import difflib
import inspect
import json
import sys
import tempfile
import textwrap
from pathlib import Path

import torch

from dopr_lite.compare import (FULL_STEPS, REFERENCE_FACTOR, benchmark,
                               format_table, full_batch_rule, parse_rules)
from dopr_lite.config import PRESETS, DoprConfig, check_seed, field_types
from dopr_lite.env import available_cores, runs_dir
from dopr_lite.errors import USER_ERRORS, ConfigError
from dopr_lite.evaluation import heldout_scores
from dopr_lite.loop import train
from dopr_lite.plots import (FIGURES, plot_comparison, plot_preflight,
                             plot_runs, plot_saving, save_figure)
from dopr_lite.policy import load_policy
from dopr_lite.preflight import preflight
from dopr_lite.ruletime import format_estimates
from dopr_lite.runlog import summary_table
from dopr_lite.savings import benchmark_steps, read_benchmark_rows
from dopr_lite.select import SELECTORS
from dopr_lite.steptime import CARDS, find_card
from dopr_lite.tiny import BUILD_MINUTES, EMBEDDED, EMBEDDED_DIR, build

DESCRIPTION = """\
dopr_lite: Dynamic One-Shot Policy Refinement (DoPR) for RLVR, on a laptop
CPU (the embedded tiny model and task) or one consumer GPU (a real model)."""
PRESET_HELP = "; ".join(f"{name}: {fn.__doc__.splitlines()[0].rstrip('.')}"
                        for name, fn in PRESETS.items())
RULES = ", ".join(SELECTORS)  # in the benchmark's order, DoPR last
# the commands' own numbers (config fields are checked by DoprConfig):
# option -> (smallest value, what it counts)
MINIMUM = {"batch": (1, "candidate prompts per step"),
           "full_rollouts": (1, "the full-batch rules' budget; leave it "
                             "out for the default"),
           "one_rollouts": (1, "the one-prompt rules' budget"),
           "prompts": (1, "prompts to measure"),
           "k": (1, "rollouts per prompt; leave it out for the run's G"),
           "steps": (1, "warm-up steps"),
           "jobs": (1, "runs at once"),
           "threads": (1, "torch threads; leave it out for the default")}


def parse_overrides(pairs: list[str]) -> dict:
    """``["lr=1e-3", "use_lora=false"]`` -> typed config overrides, each
    parsed as its field's annotation says (:func:`field_types`)."""
    types = field_types()
    out = {}
    for pair in pairs:
        key, sep, raw = pair.partition("=")
        if not sep:
            raise ConfigError(f"--set {pair!r}: expected FIELD=VALUE")
        if key not in types:
            close = difflib.get_close_matches(key, types, n=1)
            hint = f"did you mean {close[0]}? " if close else ""
            raise ConfigError(f"--set {pair!r}: unknown config field "
                              f"{key!r}; {hint}(`dopr-lite config` lists "
                              "every field)")
        try:
            out[key] = types[key].parse(raw)
        except ValueError as err:
            raise ConfigError(f"--set {key}: expected {types[key].expects}"
                              f", got {raw!r}") from err
    return out


def check_numbers(args) -> None:
    """Refuse a command's own number out of range (:data:`MINIMUM`), or a
    repeated seed or batch size, naming the option."""
    for name, (low, what) in MINIMUM.items():
        values = getattr(args, name, None)
        for v in values if isinstance(values, list) else [values]:
            if v is not None and v < low:
                raise ConfigError(f"--{name.replace('_', '-')} {v}: must be "
                                  f">= {low} ({what})")
    for name in ("seeds", "batch"):
        values = getattr(args, name, None) or []
        if len(set(values)) < len(values):
            raise ConfigError(f"--{name} {' '.join(map(str, values))}: "
                              "values repeat; give each once")
    option = "--seeds" if hasattr(args, "seeds") else "--seed"
    for seed in getattr(args, "seeds", None) or [getattr(args, "seed", None)]:
        if seed is not None:
            check_seed(seed, option)


def check_writable(folder, option: str = "--out") -> Path:
    """Refuse a folder that cannot be made or written to, before any work:
    a temporary folder is made in its nearest existing parent and removed
    at once, so a refused (or accepted) folder is left as it was."""
    folder = parent = Path(folder)
    try:
        while not parent.exists() and parent != parent.parent:
            parent = parent.parent
        if not parent.is_dir():
            raise ConfigError(f"{option} {folder}: {parent} is a file, not "
                              f"a folder; choose another {option}")
        tempfile.TemporaryDirectory(dir=parent).cleanup()
    except OSError as err:
        raise ConfigError(f"{option} {folder}: cannot write in {parent} "
                          f"({err.strerror or err}); choose a folder you "
                          f"can write to with {option}") from err
    return folder


def set_threads(requested: int | None, cfg: DoprConfig) -> None:
    """Torch threads for this process: ``requested``, else one for the
    embedded tiny model (its matmuls are too small to share, and threads
    that wait on a descheduled sibling make a run on a busy machine many
    times slower), else torch's choice (a real model's matmuls use every
    core)."""
    if requested or cfg.model == EMBEDDED:
        torch.set_num_threads(requested or 1)


def cmd_train(args) -> int:
    check_numbers(args)
    overrides = {name: getattr(args, name) for name in (
        "max_rollouts", "max_steps", "seed", "selector")
        if getattr(args, name) is not None}
    cfg = PRESETS[args.preset](**{**overrides,
                                  **parse_overrides(args.set or [])})
    set_threads(args.threads, cfg)
    out = check_writable(args.out or ("runs/main" if args.preset == "tiny"
                                      else f"runs/{args.preset}"))
    reference = (args.reference if args.reference is not None
                 else args.preset == "tiny")
    runs = {cfg.selector: dataclasses.replace(
        cfg, out_dir=str(out / cfg.selector))}
    if reference and cfg.selector != "full":
        runs["full"] = reference_config(cfg, out / "full")
        if cfg.preflight:
            print("== full: keeps no per-prompt success rates, so the "
                  "reference starts without the pre-flight")
    results = {}
    for label, run_cfg in runs.items():
        print(f"== {label}: {run_cfg.max_rollouts or run_cfg.max_steps} "
              f"{'rollouts' if run_cfg.max_rollouts else 'steps'} -> "
              f"{run_cfg.out_dir}")
        results[label] = train(run_cfg, resume=not args.fresh,
                               progress=not args.no_progress)
        save_figure(plot_runs({label: results[label]}), "run",
                    run_cfg.out_dir)
    print()
    print(summary_table(results))
    if len(results) > 1:
        fig = plot_runs(results, title="main job: " + " vs ".join(results))
        print(f"\nfigure: {save_figure(fig, 'compare', out)}")
    print(f"wrote {out}/<rule>/: config.json metrics.jsonl metrics.csv "
          "eval.jsonl run.png ckpt-*/")
    return 0


def reference_config(cfg: DoprConfig, out_dir: Path) -> DoprConfig:
    """The main job's reference: full-batch GRPO with REFERENCE_FACTOR x
    ``cfg``'s rollouts, evaluated at the same rollout counts.  It keeps no
    per-prompt rates, so it runs without ``cfg``'s pre-flight."""
    budget = REFERENCE_FACTOR * cfg.max_rollouts
    rule = full_batch_rule(budget, cfg.eval_every, cfg.prompts_per_step)
    try:
        return rule.config(cfg, max_steps=cfg.max_steps, preflight="",
                           out_dir=str(out_dir))
    except ConfigError as err:
        raise ConfigError(
            f"the reference run (full-batch GRPO with {REFERENCE_FACTOR}x "
            f"--max-rollouts = {budget:,} rollouts) cannot run: {err}; or "
            "skip the reference with --no-reference") from err


def cmd_compare(args) -> int:
    command = "dopr-lite compare " + " ".join(args.argv)
    check_numbers(args)
    if args.rules:  # labels and variants, before any run
        try:
            parse_rules(args.rules)
        except ValueError as err:
            if isinstance(err, ConfigError):
                raise
            raise ConfigError(f"--rules: {err}") from err
    check_writable(args.out)
    if args.update_figures:
        check_writable(FIGURES, "--update-figures")
    settings = parse_overrides(args.set or [])
    model = DoprConfig(**settings)
    set_threads(None, model)
    jobs = args.jobs or (available_cores() if model.model == EMBEDDED else 1)
    out = benchmark(args.seeds, args.full_rollouts, args.one_rollouts,
                    args.n_test, args.rules, args.out, command,
                    resume=not args.fresh, batches=args.batch,
                    settings=settings, jobs=jobs)
    for B, (results, rows) in out.items():
        name = args.figure if len(out) == 1 else f"{args.figure}_B{B}"
        target = rows[0]["targets"][0.95] if rows else None
        fig = plot_comparison(results, target=target, title="DoPR vs "
                              f"baselines, {B} candidates a step")
        figures = [save_figure(fig, name, args.out)]
        if args.update_figures:
            figures.append(save_figure(fig, name))
        if rows:
            print(f"\n{B} candidates a step:\n{format_table(rows)}")
        print("figure: " + ", ".join(map(str, figures)))
    tables = {B: rows for B, (_, rows) in out.items() if rows}
    if len(tables) > 1:
        fig = plot_saving(tables)
        print(f"figure: {save_figure(fig, args.figure + '_saving', args.out)}")
        if args.update_figures:
            print(f"figure: {save_figure(fig, args.figure + '_saving')}")
    print(f"wrote {args.out}/compare.json")
    return 0


def gpu_card(name: str | None):
    """The card ``--gpu`` names (ConfigError if none of the known), or by
    default the local CUDA card if it is a known one; None: no time
    estimate."""
    if name is None:
        local = torch.cuda.get_device_name(0) if torch.cuda.is_available() \
            else None
        return find_card(local) if local else None
    card = find_card(name)
    if card is None:
        raise ConfigError(f"--gpu {name}: not a card the step-time model "
                          f"knows; choose one of {', '.join(CARDS)}")
    return card


def gpu_estimates(cfg, card) -> str:
    """The step-time model's estimates for ``card``: per step, and to a
    target with the steps each rule needed on the embedded task's
    benchmark (``savings.read_benchmark_rows``, shipped with the package:
    an assumption about the user's pool, printed as one)."""
    rows = read_benchmark_rows()
    if not rows:
        return (format_estimates(cfg, card) + "\n  per step only: no "
                "benchmark to say how many steps a run needs")
    steps = benchmark_steps(rows, cfg.prompts_per_step)
    return (format_estimates(cfg, card, steps=steps) + "\n  steps to the "
            "target: what each rule needed on the embedded task's "
            "benchmark (bench/results/dopr_v2.json, default mix); your "
            "pool can need more or fewer")


def cmd_preflight(args) -> int:
    cfg = PRESETS[args.preset](**parse_overrides(args.set or []))
    check_numbers(args)
    card = gpu_card(args.gpu)
    out = check_writable(args.out)
    if args.update_figures:
        check_writable(FIGURES, "--update-figures")
    report = preflight(cfg, prompts=args.prompts, k=args.k, seed=args.seed,
                       progress=not args.no_progress)
    print(report.table())
    if card is not None:
        print("\n" + gpu_estimates(cfg, card))
    fig = plot_preflight(report, title=f"pre-flight: {cfg.model} on "
                         f"{cfg.dataset}")
    path = report.save(out / "preflight.json")  # written only on success
    print(f"\nwrote {path} and {save_figure(fig, 'preflight', out)}")
    if args.update_figures:
        print(f"figure: {save_figure(fig, 'preflight')}")
    print(f"start DoPR from these counts: dopr-lite train --set "
          f"preflight={path}")
    return 0


def cmd_config(args) -> int:
    cfg = PRESETS[args.preset](**parse_overrides(args.set or []))
    for f in dataclasses.fields(cfg):
        value = json.dumps(getattr(cfg, f.name))
        print(f"{f.name:<24}{value:<26} {f.metadata['help']}")
    return 0


def cmd_build_tiny(args) -> int:
    check_numbers(args)
    out = check_writable(EMBEDDED_DIR if args.update_asset else args.out,
                         "--update-asset" if args.update_asset else "--out")
    print(f"building the embedded model in {out}: about "
          f"{BUILD_MINUTES * args.steps // 5000} minutes on 2 CPU cores")
    torch.set_num_threads(args.threads or torch.get_num_threads())
    info = build(out, steps=args.steps, seed=args.seed)
    pol = load_policy(model=str(out), use_lora=False)  # as it will load
    info["heldout"] = heldout_scores(pol.model, pol.tokenizer)
    (out / "build_info.json").write_text(json.dumps(info, indent=1))
    print(json.dumps({k: v for k, v in info.items() if k != "warmup_log"}))
    if not args.update_asset:
        print(f"use it with --set model={out}, or rebuild with "
              "--update-asset to replace the shipped model")
    return 0


def _examples(*lines: str) -> str:
    return "examples:\n" + "\n".join(f"  {line}" for line in lines)


def selector_signature(name: str) -> str:
    """``name(arg=default, ...)``: rule ``name`` of :data:`SELECTORS` with
    the arguments its class takes (its ``__init__``) and their defaults,
    as JSON (as ``selector_args`` and ``--rules`` variants write them)."""
    params = inspect.signature(SELECTORS[name]).parameters.values()
    return f"{name}(" + ", ".join(
        p.name if p.default is p.empty else f"{p.name}={json.dumps(p.default)}"
        for p in params) + ")"


def selector_help(how: str) -> str:
    """Every rule of :data:`SELECTORS` with its arguments and defaults, one
    wrapped :func:`selector_signature` each, under a heading that names
    the option (``how``) that takes them."""
    lines = [f"rule arguments and their defaults, for {how}:"]
    for name in SELECTORS:
        lines += textwrap.wrap(selector_signature(name), 78,
                               initial_indent="  ", break_on_hyphens=False,
                               subsequent_indent=" " * (len(name) + 3))
    return "\n".join(lines)


# options several commands share, written once: (flags, argparse keywords)
SHARED = {
    "preset": (["--preset"], dict(
        choices=sorted(PRESETS), default="tiny", help="the preset to start "
        f"from (default: %(default)s). {PRESET_HELP}")),
    "set": (["--set"], dict(
        action="append", metavar="FIELD=VALUE", help="set any config field "
        "(for every run), repeatable; `dopr-lite config` lists them "
        "(default: none)")),
    "fresh": (["--fresh"], dict(
        action="store_true", help="start over: ignore and replace the runs "
        "in --out (default: reuse and resume them)")),
    "no-progress": (["--no-progress"], dict(
        action="store_true", help="no progress bars (default: show them)")),
    "update-figures": (["--update-figures"], dict(
        action="store_true", help="also write the figure to the repo's "
        f"figures/ folder, replacing the committed one ({FIGURES}; default: "
        "no)")),
}


def shared(*names: str, out: str | None = None,
           out_help: str = "") -> argparse.ArgumentParser:
    """A parent parser with the :data:`SHARED` options ``names`` and, given
    ``out_help``, ``--out`` with default ``out`` (each command has its
    own); a new one per command, as argparse shares a parent's actions."""
    parent = argparse.ArgumentParser(add_help=False)
    for name in names:
        flags, kwargs = SHARED[name]
        parent.add_argument(*flags, **kwargs)
    if out_help:
        parent.add_argument("--out", default=out, help=f"output folder"
                            f"{out_help}")
    return parent


RAW = argparse.RawDescriptionHelpFormatter  # our line breaks, as written


def add_train(sub) -> None:
    """``dopr-lite train``: a rule, by default the main job."""
    t = sub.add_parser(
        "train", formatter_class=RAW, parents=[shared(
            "preset", "set", "fresh", "no-progress", out_help="; each run "
            "writes <out>/<rule>/ (default: runs/main for tiny, "
            "runs/<preset> for another preset)")],
        help="train a rule (default: the main job, DoPR + a reference)",
        description="Train a selection rule with GRPO. With no options, the "
        "main job: DoPR on the\nembedded model and task for 512 rollouts, "
        f"then full-batch GRPO with {REFERENCE_FACTOR}x the\nrollouts as the "
        "reference curve. A run resumes from its checkpoint in --out;\na run "
        "with other settings there is refused (use --fresh or another "
        "--out).",
        epilog=_examples(
            "dopr-lite train",
            "dopr-lite train --selector thompson --set num_generations=4",
            "dopr-lite train --selector dopr --set 'selector_args={\"probe\":"
            " 0}'",
            "dopr-lite train --preset consumer_gpu --set "
            "model=Qwen/Qwen2.5-0.5B-Instruct") + "\n\n" + selector_help(
                "--set selector_args=<JSON object>"))
    t.add_argument("--max-rollouts", type=int, dest="max_rollouts",
                   help="stop after this many training rollouts, probes "
                   "included (default: the preset's, 512 for tiny)")
    t.add_argument("--max-steps", type=int, dest="max_steps",
                   help="stop after this many steps (default: no limit)")
    t.add_argument("--seed", type=int,
                   help="training seed (default: the preset's, 0)")
    t.add_argument("--selector", choices=sorted(SELECTORS),
                   metavar="RULE", help="the selection rule: "
                   f"{', '.join(sorted(SELECTORS))} (default: the "
                   "preset's, dopr)")
    t.add_argument("--reference", action=argparse.BooleanOptionalAction,
                   help="also train full-batch GRPO with "
                   f"{REFERENCE_FACTOR}x the rollouts as the reference "
                   "(default: on for tiny, off for consumer_gpu)")
    t.add_argument("--threads", type=int,
                   help="torch threads (default: 1 for the embedded model, "
                   "torch's choice for another)")
    t.set_defaults(func=cmd_train)


def add_compare(sub) -> None:
    """``dopr-lite compare``: the benchmark of the rules."""
    c = sub.add_parser(
        "compare", formatter_class=RAW, parents=[shared(
            "set", "fresh", "update-figures", out=runs_dir("bench/compare"),
            out_help=" (default: runs/bench/compare)")],
        help="DoPR against its baselines over seeds (the benchmark)",
        description=f"Train every rule ({RULES}) for each seed, from the "
        "same checkpoint and\ncandidate stream, and print how many rollouts "
        "each needs to reach 80% and\n95% of full-batch GRPO's gain. The "
        f"default (all {len(SELECTORS)} rules, 3 seeds) takes\nabout 8 "
        "minutes on 2 CPU cores (two runs at once). Finished runs in --out"
        "\nare reused.",
        epilog=_examples(
            "dopr-lite compare",
            "dopr-lite compare --seeds 0 --rules full random dopr",
            "dopr-lite compare --rules full dopr p0=dopr:probe=0 "
            "--out runs/bench/probe",
            "dopr-lite compare --batch 8 32 --rules full random dopr "
            "--set learning_rate=1e-3") + "\n\n" + selector_help(
                "--rules LABEL=RULE:key=value,..."))
    c.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2],
                   help="seeds to run (default: 0 1 2)")
    c.add_argument("--batch", type=int, nargs="+", metavar="B",
                   help="candidate batch sizes to sweep (prompts_per_step; "
                   "default: the config's, 8)")
    c.add_argument("--full-rollouts", type=int, dest="full_rollouts",
                   help="budget of the rules that roll out every candidate "
                   f"(default: {FULL_STEPS} steps' worth at each B, 2048 "
                   "at B = 8)")
    c.add_argument("--one-rollouts", type=int, default=512,
                   dest="one_rollouts", help="budget of the one-prompt "
                   "rules (default: %(default)s)")
    c.add_argument("--n-test", type=int, default=300, dest="n_test",
                   help="held-out prompts (default: %(default)s)")
    c.add_argument("--rules", nargs="+", metavar="RULE",
                   help=f"rules to run: {RULES}, or variants "
                   "LABEL=RULE:key=value,... such as p0=dopr:probe=0 "
                   f"(default: all {len(SELECTORS)})")
    c.add_argument("--jobs", type=int,
                   help="runs at once, each in its own process with one "
                   "torch thread; the results are a serial run's "
                   f"(default: the cores, {available_cores()}, for the "
                   "embedded model; 1 for another, whose copies may not "
                   "fit)")
    c.add_argument("--figure", default="bench_compare",
                   help="figure name, written as <out>/<name>.png "
                   "(default: %(default)s)")
    c.set_defaults(func=cmd_compare)


def add_preflight(sub) -> None:
    """``dopr-lite preflight``: measure a prompt pool."""
    f = sub.add_parser(
        "preflight", formatter_class=RAW, parents=[shared(
            "preset", "set", "no-progress", "update-figures",
            out=runs_dir("preflight"),
            out_help=" (default: runs/preflight)")],
        help="measure a prompt pool: which prompts can teach GRPO anything",
        description="Sample k rollouts on each of N prompts of the RL pool "
        "(the run's model,\ndata and sampling settings) and report the "
        "histogram of right answers, the\nshares of all-wrong, all-right "
        "and mixed groups expected at G = 2..32 (95%\nintervals), the "
        "rollouts full-batch GRPO would waste, notebook 01's bounds on\n"
        "this pool and a recommendation. About 15 s on the embedded "
        "default (2 CPU\ncores). Writes <out>/preflight.json and "
        "preflight.png; a DoPR or Thompson\nrun can start from the counts "
        "(--set preflight=<out>/preflight.json).",
        epilog=_examples(
            "dopr-lite preflight",
            "dopr-lite preflight --prompts 64 --k 4",
            "dopr-lite preflight --gpu rtx4090   # + estimated s/step",
            "dopr-lite preflight --set dataset=pool.jsonl --set "
            "model=Qwen/Qwen2.5-0.5B-Instruct"))
    f.add_argument("--prompts", type=int, default=256,
                   help="prompts to measure; a seeded random subset if the "
                   "pool is larger (default: %(default)s)")
    f.add_argument("--k", type=int, help="rollouts per prompt (default: "
                   "the run's G, num_generations)")
    f.add_argument("--seed", type=int, help="sampling seed (default: the "
                   "config's seed)")
    f.add_argument("--gpu", metavar="NAME", help="also print the estimated "
                   "seconds per step of DoPR, Thompson and full-batch GRPO "
                   f"on this card ({', '.join(CARDS)}; default: the local "
                   "CUDA card if it is one of them, else no estimate)")
    f.set_defaults(func=cmd_preflight)


def add_config(sub) -> None:
    """``dopr-lite config``: every field with its help."""
    g = sub.add_parser(
        "config", formatter_class=RAW, parents=[shared("preset", "set")],
        help="list every config field with its value and help",
        description="Print each config field of a preset: name, value "
        "(JSON) and what it does.",
        epilog=_examples("dopr-lite config",
                         "dopr-lite config --preset consumer_gpu",
                         "dopr-lite config --set selector=thompson"))
    g.set_defaults(func=cmd_config)


def add_build_tiny(sub) -> None:
    """``dopr-lite build-tiny``: rebuild the embedded model."""
    b = sub.add_parser(
        "build-tiny", formatter_class=RAW, parents=[shared(
            out=runs_dir("tiny"), out_help=" (default: runs/tiny)")],
        help=f"rebuild the embedded tiny model (about {BUILD_MINUTES} "
        "minutes)",
        description="Build the embedded tiny model from scratch: tokenizer, "
        "config, supervised\nwarm-up on the synthetic task, held-out "
        f"evaluation. About {BUILD_MINUTES} minutes on\n2 CPU cores. Writes "
        "to --out; the shipped model is replaced only with\n--update-asset.",
        epilog=_examples("dopr-lite build-tiny",
                         "dopr-lite build-tiny --update-asset",
                         "dopr-lite build-tiny --steps 500 --out "
                         "runs/tiny-quick"))
    b.add_argument("--steps", type=int, default=5000,
                   help="warm-up steps (default: %(default)s)")
    b.add_argument("--seed", type=int, default=0,
                   help="build seed (default: %(default)s)")
    b.add_argument("--update-asset", action="store_true",
                   help=f"write to the package's shipped model instead "
                   f"({EMBEDDED_DIR}; default: no)")
    b.add_argument("--threads", type=int,
                   help="torch threads (default: torch's choice)")
    b.set_defaults(func=cmd_build_tiny)


# the commands in the order `dopr-lite --help` lists them
COMMANDS = (add_train, add_compare, add_preflight, add_config,
            add_build_tiny)


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="dopr-lite", description=DESCRIPTION, formatter_class=RAW,
        epilog=_examples("dopr-lite train", "dopr-lite preflight",
                         "dopr-lite compare --seeds 0",
                         "dopr-lite config --preset consumer_gpu"))
    sub = p.add_subparsers(dest="cmd", required=True, metavar="COMMAND")
    for add in COMMANDS:
        add(sub)
    return p


def main(argv=None) -> int:
    args = parser().parse_args(argv)
    args.argv = list(sys.argv[1:] if argv is None else argv)[1:]
    try:
        return args.func(args)
    except USER_ERRORS as err:  # one message, no traceback
        print(f"dopr-lite: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
