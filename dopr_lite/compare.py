"""Head-to-head runs of selection rules, and the numbers that compare them.

:func:`run_rules` trains every rule for every seed from the same starting
policy, with the same candidate stream, G, lengths, learning rate and loss
(only the selector, its arguments and its rollout budget differ) and
returns the :class:`~dopr_lite.runlog.RunResult` of each run.
:func:`comparison` reduces them, through their accuracy curves
(:mod:`dopr_lite.curves`), to the table notebook 05 and
``bench/compare.py`` report: final accuracy, the rollouts each rule needs
to reach a share (95%) of full-batch GRPO's gain, and the ratio.
"""

from __future__ import annotations

import inspect
import json
import multiprocessing
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass, field, fields, replace
from pathlib import Path

import numpy as np
import torch

from dopr_lite.config import DoprConfig
from dopr_lite.curves import (NOT_REACHED, area, dips, fmt_reach, mean_reach,
                              mean_se, reached)
from dopr_lite.env import versions
from dopr_lite.errors import ConfigError
from dopr_lite.policy import load_policy
from dopr_lite.runlog import RunResult
from dopr_lite.select import SELECTORS, check_selector, make_selector
from dopr_lite.loop import train

REFERENCE_FACTOR = 4  # full-batch GRPO's budget over a one-prompt run's
CONFIG_FIELDS = {f.name for f in fields(DoprConfig)}


@dataclass
class Rule:
    """One contender: a selector, its arguments, its budget, and any
    config fields it sets (``settings``, such as its own learning rate)."""

    label: str
    selector: str
    max_rollouts: int
    eval_every: int
    args: dict = field(default_factory=dict)
    settings: dict = field(default_factory=dict)

    def config(self, base: DoprConfig, **overrides) -> DoprConfig:
        """``base`` with this rule's selector, arguments, budget (in
        rollouts only) and settings; ``overrides`` have the last word."""
        return replace(base, **{
            "selector": self.selector, "selector_args": dict(self.args),
            "max_rollouts": self.max_rollouts, "max_steps": 0,
            "eval_every": self.eval_every, **self.settings, **overrides})


def full_batch_rule(rollouts: int, one_eval: int, prompts_per_step: int = 8,
                    label: str = "full") -> Rule:
    """Full-batch GRPO as the reference for one-prompt runs evaluated every
    ``one_eval`` steps: ``rollouts`` to spend, evaluated at the same
    rollout counts (every ``one_eval // prompts_per_step`` steps, >= 1)."""
    return Rule(label, "full", rollouts, max(1, one_eval // prompts_per_step))


def default_rules(full_rollouts: int = 2048, one_rollouts: int = 512,
                  one_eval: int = 4, prompts_per_step: int = 8) -> list[Rule]:
    """Every selector of :data:`dopr_lite.select.SELECTORS`, in its order.

    Rules that roll out every candidate get ``full_rollouts`` and the
    reference's evaluation spacing (:func:`full_batch_rule`); one-prompt
    rules get ``one_rollouts`` and evaluate every ``one_eval`` steps.
    """
    full = full_batch_rule(full_rollouts, one_eval, prompts_per_step)
    return [replace(full, label=name, selector=name)
            if make_selector(name).shape.picks is None
            else Rule(name, name, one_rollouts, one_eval)
            for name in SELECTORS]


def parse_rules(specs, full_rollouts: int = 2048, one_rollouts: int = 512,
                prompts_per_step: int = 8) -> list[Rule]:
    """Rules from labels of :func:`default_rules` or variants of them.

    A variant is ``LABEL=RULE:key=value,key=value``: rule ``RULE``'s
    budget and evaluation spacing with these selector arguments, e.g.
    ``dopr-ucb=dopr:score=ucb,probe=0``; a key that names a config field
    sets that field for this rule alone (``dopr-lr=dopr:learning_rate=1e-3``).
    Values are JSON (numbers, true, false), else strings.  An argument the
    rule does not take is refused here, naming the rules that take it.
    """
    known = {r.label: r for r in default_rules(
        full_rollouts, one_rollouts, prompts_per_step=prompts_per_step)}
    rules = []
    for spec in specs:
        if spec in known:
            rules.append(known[spec])
            continue
        label, eq, rest = spec.partition("=")
        name, _, argstr = rest.partition(":")
        if not eq or not label or name not in known:
            raise ValueError(
                f"{spec!r} is neither one of {sorted(known)} nor a variant "
                "LABEL=RULE:key=value,... of one")
        args, settings = dict(known[name].args), {}
        for item in filter(None, argstr.split(",")):
            key, eq, value = item.partition("=")
            if not eq or not key:
                raise ValueError(f"{spec!r}: {item!r} is not key=value")
            try:
                value = json.loads(value)
            except ValueError:
                pass
            (settings if key in CONFIG_FIELDS else args)[key] = value
        try:
            check_selector(known[name].selector, args)
        except ConfigError as err:
            takers = [n for n, cls in SELECTORS.items() if not set(args)
                      - set(inspect.signature(cls).parameters)]
            raise ValueError(f"{spec!r}: {err}" + (
                f" (rules that take these arguments: {takers})"
                if takers else "")) from None
        rules.append(replace(known[name], label=label, args=args,
                             settings=settings))
    labels = [r.label for r in rules]
    if len(set(labels)) < len(labels):
        raise ValueError(f"rule labels repeat: {labels}")
    return rules


def run_rules(rules: list[Rule], seeds: list[int], base: DoprConfig,
              out_root, *, data=None, resume: bool = False, log=print,
              jobs: int = 1) -> dict[str, list[RunResult]]:
    """Train each rule with each seed; ``out_root/<label>-s<seed>/``.
    ``jobs`` > 1 trains that many runs at once (:func:`train_all`)."""
    done = iter(train_all(rule_tasks(rules, seeds, base, out_root),
                          data=data, resume=resume, log=log, jobs=jobs))
    return {rule.label: [next(done) for _ in seeds] for rule in rules}


def rule_tasks(rules: list[Rule], seeds, base: DoprConfig,
               out_root) -> list[tuple[str, DoprConfig]]:
    """(name, config) of each rule with each seed, rule-major, each run in
    ``out_root/<label>-s<seed>/``: what :func:`train_all` takes."""
    return [(f"{rule.label:<18} seed {seed}", rule.config(
        base, seed=seed, out_dir=str(Path(out_root) / f"{rule.label}-s{seed}")))
        for rule in rules for seed in seeds]


def train_all(tasks: list[tuple[str, DoprConfig]], *, data=None,
              resume: bool = False, log=print,
              jobs: int = 1) -> list[RunResult]:
    """Train each ``(name, config)`` of ``tasks`` and return their results
    in the same order, logging a line as each run ends.

    ``jobs`` > 1 trains up to that many runs at once, each in its own
    process with one torch thread (on 2 cores, two processes of two
    threads each slow each other down many times over; two of one thread
    each do not).  Every run is a pure function of its config (seeded
    steps, draws and evaluation), so the results are a serial run's.  A
    run that fails stops the runs not yet started (those under way
    finish, unreported); the finished ones stay in their folders and a
    rerun with ``resume`` reuses them."""
    folders = [cfg.out_dir for _, cfg in tasks]
    if len(set(folders)) < len(folders):
        raise ValueError(f"two runs would write one folder: {folders} "
                         "(a rule label or seed given twice)")

    def report(name: str, r: RunResult) -> None:
        log(f"{name}: {r.base_accuracy:.3f} -> {r.final_accuracy:.3f} in "
            f"{r.counter.cost} rollouts, {len(r.metrics)} steps, "
            f"{r.seconds:.0f} s")

    if jobs <= 1 or len(tasks) <= 1:
        out = []
        for name, cfg in tasks:
            out.append(_train(cfg, data, resume))
            report(name, out[-1])
        return out
    results: list = [None] * len(tasks)
    spawn = multiprocessing.get_context("spawn")  # no forked torch state
    with ProcessPoolExecutor(min(jobs, len(tasks)), mp_context=spawn,
                             initializer=torch.set_num_threads,
                             initargs=(1,)) as pool:
        futures = {pool.submit(_train, cfg, data, resume): i
                   for i, (_, cfg) in enumerate(tasks)}
        try:
            for fut in as_completed(futures):
                i = futures[fut]
                results[i] = fut.result()
                report(tasks[i][0], results[i])
        except BaseException:
            pool.shutdown(cancel_futures=True)
            raise
    return results


def _train(cfg: DoprConfig, data, resume: bool) -> RunResult:
    """One run of :func:`train_all` (module level: a worker process
    imports it by name)."""
    return train(cfg, policy=load_policy(cfg), data=data, resume=resume,
                 progress=False, log=lambda *a: None)


def rollouts_to_reach(runs: list[RunResult], target: float,
                      axis: str = "rollouts") -> float:
    """Where (along ``axis``) the seed-mean curve first reaches ``target``
    (:func:`dopr_lite.curves.mean_reach`; NOT_REACHED if never)."""
    return mean_reach([r.evals for r in runs], target, axis=axis)


def stability(run: RunResult) -> dict:
    """How far a run's held-out accuracy fell
    (:func:`dopr_lite.curves.dips`)."""
    return dips(run.evals)


def mean_accuracy(run: RunResult, upto: float | None = None) -> float:
    """Held-out accuracy averaged along the run over rollouts 0..``upto``
    (:func:`dopr_lite.curves.area`)."""
    return area(run.evals, upto)


def final_accuracy(run: RunResult) -> float:
    return run.final_accuracy


def paired_difference(runs: list[RunResult], others: list[RunResult],
                      metric=final_accuracy) -> dict:
    """``metric`` of ``runs`` minus that of ``others``, pair by pair (the
    same seed at the same index): the mean difference, its standard error
    over the pairs (nan with one pair) and a verdict that does not outrun
    the evidence: ``ahead`` or ``behind`` only when the mean is more than
    two standard errors from 0, else ``no clear difference``."""
    if len(runs) != len(others):
        raise ValueError(f"paired_difference needs runs on the same seeds "
                         f"({len(runs)} vs {len(others)} runs)")
    d = mean_se([metric(a) - metric(b)
                 for a, b in zip(runs, others, strict=True)])
    mean, se = d["mean"], d["se"]
    clear = se == se and abs(mean) > 2 * se
    return d | {"verdict": ("ahead" if mean > 0 else "behind") if clear
                else "no clear difference",
                "text": f"{mean:+.3f} ± {se:.3f} (n={d['pairs']})"}


def comparison(results: dict[str, list[RunResult]], reference: str = "full",
               shares: tuple = (0.8, 0.95)) -> list[dict]:
    """One row per rule: accuracy, gain, cost, and for each share s the
    rollouts its seed-mean curve needs to reach base + s * (reference's
    mean gain), with the saving: the reference's rollouts to get there
    divided by the rule's."""
    ref = results[reference]
    base = float(np.mean([r.base_accuracy for r in ref]))
    ref_gain = float(np.mean([r.final_accuracy for r in ref])) - base
    targets = {s: base + s * ref_gain for s in shares}
    ref_cost = {s: rollouts_to_reach(ref, t) for s, t in targets.items()}
    rows = []
    for label, runs in results.items():
        final = np.array([r.final_accuracy for r in runs])
        steps = [m for r in runs for m in r.metrics]
        to = {s: rollouts_to_reach(runs, t) for s, t in targets.items()}
        falls = [stability(r) for r in runs]
        families = sorted({k for r in runs for k in r.evals[-1]
                           if k.startswith("accuracy/")})
        rows.append({
            "rule": label, "seeds": len(runs), "reference": reference,
            "base_accuracy": base, "targets": targets,
            "final_accuracy": float(final.mean()),
            "final_std": float(final.std(ddof=1)) if len(runs) > 1 else 0.0,
            "gain": float(final.mean()) - base,
            "share_of_reference_gain": (float(final.mean()) - base)
            / ref_gain if ref_gain > 0 else float("nan"),
            "rollouts": float(np.mean([r.counter.cost for r in runs])),
            "probe_rollouts": float(np.mean([r.counter.sequences["probe"]
                                             for r in runs])),
            "updates": float(np.mean([r.evals[-1]["updates"]
                                      for r in runs])),
            "train_seconds": float(np.mean([r.evals[-1]["train_seconds"]
                                            for r in runs])),
            "seconds_per_step": float(np.mean([m["seconds"]
                                               for m in steps])),
            "zero_std_groups": float(np.mean([m["frac_reward_zero_std"]
                                              for m in steps])),
            "rollouts_to": to,
            "saving": {s: ref_cost[s] / c if c > 0 else NOT_REACHED
                       for s, c in to.items()},
            "final_by_family": {
                k.split("/", 1)[1]: float(np.mean([r.evals[-1].get(
                    k, np.nan) for r in runs])) for k in families},
            "worst_end_below_peak": max(f["end_below_peak"] for f in falls),
            "worst_dip": max(f["dip"] for f in falls),
        })
    return rows


def format_table(rows: list[dict]) -> str:
    """Markdown table of :func:`comparison` rows."""
    shares = list(rows[0]["rollouts_to"])
    head = ("| rule | final acc (± sd) | share of full's gain | rollouts |"
            " updates | zero-var groups | worst dip |")
    head += "".join(f" rollouts to {s:.0%} (saving) |" for s in shares)
    lines = [head, "|" + "---|" * (7 + len(shares))]
    for r in rows:
        cells = [r["rule"], f"{r['final_accuracy']:.3f} ± "
                 f"{r['final_std']:.3f}",
                 f"{r['share_of_reference_gain']:.0%}",
                 f"{r['rollouts']:.0f}", f"{r['updates']:.0f}",
                 f"{r['zero_std_groups']:.0%}",
                 f"{100 * r['worst_dip']:.1f} pts"]
        for s in shares:
            to = r["rollouts_to"][s]
            cells.append(fmt_reach(to) + (f" ({r['saving'][s]:.1f}x)"
                                          if reached(to) else ""))
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


FULL_STEPS = 32  # full-batch budget: this many steps at any batch size


def benchmark(seeds=(0, 1, 2), full_rollouts: int | None = None,
              one_rollouts: int = 512, n_test: int = 300, rules=None,
              out_dir="runs/bench/compare", command: str = "",
              resume: bool = False, batches=None, settings=None,
              full_steps: int = FULL_STEPS, jobs: int = 1, log=print):
    """Run the head-to-head at each candidate batch size in ``batches``
    (default: the config's ``prompts_per_step``), with ``settings`` (config
    fields) for every rule; write ``<out_dir>/compare.json`` (settings,
    versions, each batch size's table and every eval curve) and return
    ``{B: (results, rows)}``.

    Full-batch rules get ``full_rollouts`` (default: ``full_steps``
    steps' worth at each B), one-prompt rules ``one_rollouts`` at every B.
    With several B the runs go to ``<out_dir>/B<B>/``, and each larger B's
    table also lists the smallest B's full-batch GRPO as ``full@<B>``: is
    picking one prompt out of B better than GRPO on a smaller batch?
    ``jobs`` runs that many at once (:func:`train_all`).
    Plans (:func:`plan_benchmark`), runs (:func:`run_benchmark`) and
    records (:func:`benchmark_record`).
    """
    base = DoprConfig(**{"n_test": n_test, "eval_k": 0, "save_every": 0,
                         **(settings or {})})
    batches = list(batches or [base.prompts_per_step])
    budgets = {B: full_rollouts or full_steps * B * base.num_generations
               for B in batches}
    t0 = time.time()
    plan = plan_benchmark(base, budgets, seeds, rules, one_rollouts)
    out = run_benchmark(plan, seeds, out_dir, sweep=len(batches) > 1,
                        resume=resume, jobs=jobs, log=log)
    record = benchmark_record(out, plan, base, seeds, batches, budgets,
                              one_rollouts, command, time.time() - t0)
    Path(out_dir).mkdir(parents=True, exist_ok=True)
    Path(out_dir, "compare.json").write_text(json.dumps(record, indent=1))
    return out


def plan_benchmark(base: DoprConfig, budgets: dict[int, int], seeds, rules,
                   one_rollouts: int) -> dict[int, tuple[DoprConfig,
                                                         list[Rule]]]:
    """Each candidate batch size B's ``(config, rules)``: ``base`` at B,
    and ``rules`` (specs for :func:`parse_rules`; none: the default rules)
    with ``budgets[B]`` rollouts for full-batch rules, ``one_rollouts``
    for one-prompt ones.  Every run's config (each rule with each seed) is
    checked here, before any run starts; a ConfigError names the rule."""
    plan = {}
    for B, full in budgets.items():
        at_b = replace(base, prompts_per_step=B)
        chosen = (parse_rules(rules, full, one_rollouts, B) if rules
                  else default_rules(full, one_rollouts, prompts_per_step=B))
        for rule in chosen:
            _check_rule(rule, at_b, seeds, B)
        plan[B] = at_b, chosen
    return plan


def _check_rule(rule: Rule, at_b: DoprConfig, seeds, B: int) -> None:
    """Raise ConfigError if ``rule`` cannot run at ``B`` with a seed of
    ``seeds``, or has no budget."""
    try:
        cfg = rule.config(at_b)
        for seed in seeds:
            replace(cfg, seed=seed)
    except ConfigError as err:
        raise ConfigError(f"rule {rule.label!r} with {B} candidates "
                          f"a step: {err}") from err
    if not (cfg.max_rollouts or cfg.max_steps):
        raise ConfigError(f"rule {rule.label!r} has no budget (0 "
                          "rollouts); give its rules > 0 rollouts")


def run_benchmark(plan: dict, seeds, out_dir, *, sweep: bool,
                  resume: bool = False, jobs: int = 1,
                  log=print) -> dict[int, tuple[dict, list[dict]]]:
    """Train every run of :func:`plan_benchmark`'s ``plan`` (in
    ``<out_dir>/B<B>/`` when ``sweep``) and return ``{B: (results,
    rows)}``: each rule's runs and, where the rules hold ``full``, the
    :func:`comparison` table.  A larger B's results also hold the first
    B's full-batch runs as ``full@<B>``."""
    # every run of every B in one pool: long full-batch runs beside short
    # one-prompt ones keep all the workers busy to the end
    tasks = [task for B, (at_b, chosen) in plan.items()
             for task in rule_tasks(chosen, seeds, at_b, Path(out_dir) / (
                 f"B{B}" if sweep else ""))]
    done = iter(train_all(tasks, resume=resume, log=log, jobs=jobs))
    out, small = {}, next(iter(plan))
    for B, (_, chosen) in plan.items():
        results = {rule.label: [next(done) for _ in seeds]
                   for rule in chosen}
        if B != small and "full" in out[small][0]:
            results[f"full@{small}"] = out[small][0]["full"]
        out[B] = (results, comparison(results) if "full" in results
                  else [])
    return out


def benchmark_record(out: dict, plan: dict, base: DoprConfig, seeds,
                     batches: list[int], budgets: dict[int, int],
                     one_rollouts: int, command: str,
                     seconds: float) -> dict:
    """What ``compare.json`` holds: the settings, versions, rules and
    budgets, the first B's table and curves, and with several B each B's
    (``tables``, ``sweep_curves``); ``out`` is :func:`run_benchmark`'s."""
    first, sweep = out[batches[0]], len(batches) > 1
    record = {"command": command, "seconds": seconds,
              # the runs' own time, summed over resumes (a resumed sweep's
              # "seconds" counts only the runs it trained this time)
              "run_seconds": sum(r.seconds for res, _ in out.values()
                                 for label, runs in res.items()
                                 if "@" not in label for r in runs),
              "versions": versions(), "config": base.to_dict(),
              "seeds": list(seeds), "batches": batches,
              "full_rollouts": budgets, "one_rollouts": one_rollouts,
              "rules": {B: [vars(r) for r in chosen]
                        for B, (_, chosen) in plan.items()},
              "table": first[1], "curves": _curves(first[0])}
    if sweep:
        record["tables"] = {B: rows for B, (_, rows) in out.items()}
        record["sweep_curves"] = {B: _curves(res)
                                  for B, (res, _) in out.items()}
    return record


def _curves(results: dict) -> dict:
    """Each label's eval rows, one list a run."""
    return {label: [r.evals for r in runs] for label, runs in results.items()}


def read_benchmark(path) -> dict:
    """A :func:`benchmark` JSON as it was made: ``tables`` maps each batch
    size B (int) to its :func:`comparison` rows, whose per-share entries
    (targets, rollouts_to, saving) are keyed by float shares again."""
    record = json.loads(Path(path).read_text())
    tables = record.get("tables") or {record["batches"][0]: record["table"]}
    for rows in tables.values():
        for row in rows:
            for key in ("targets", "rollouts_to", "saving"):
                row[key] = {float(s): v for s, v in row[key].items()}
    record["tables"] = {int(B): rows for B, rows in tables.items()}
    return record
