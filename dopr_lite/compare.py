"""Head-to-head runs of selection rules, and the numbers that compare them.

:func:`run_rules` trains every rule for every seed from the same starting
policy, with the same candidate stream, G, lengths, learning rate and loss
(only the selector, its arguments and its rollout budget differ) and
returns the :class:`~dopr_lite.train.RunResult` of each run.
:func:`curves` puts the held-out accuracy of each rule's seeds on a common
grid of rollouts, policy updates or training seconds;
:func:`comparison` reduces them to the table notebook 05 and
``bench/compare.py`` report: final accuracy, the rollouts each rule needs
to reach a share (95%) of full-batch GRPO's gain, and the ratio.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from dopr_lite.config import DoprConfig
from dopr_lite.env import versions
from dopr_lite.policy import load_policy
from dopr_lite.train import RunResult, train

AXES = {"rollouts": "rollouts (train + probe)",
        "updates": "policy updates", "train_seconds": "training time (s)"}


@dataclass
class Rule:
    """One contender: a selector, its arguments and its budget."""

    label: str
    selector: str
    max_rollouts: int
    eval_every: int
    args: dict = field(default_factory=dict)


def default_rules(full_rollouts: int = 2048, one_rollouts: int = 512,
                  full_eval: int = 1, one_eval: int = 4) -> list[Rule]:
    """The six contenders of notebook 05 and ``bench/compare.py``.

    Full-batch rules (8 prompts x G per step) get ``full_rollouts``; the
    one-prompt rules get ``one_rollouts``.  Evaluations fall every
    ``full_eval`` full-batch steps and every ``one_eval`` one-prompt steps
    (the same number of rollouts between evaluations when their ratio is
    the batch size).
    """
    return [
        Rule("full", "full", full_rollouts, full_eval),
        Rule("dynamic", "dynamic", full_rollouts, full_eval),
        Rule("fixed", "fixed", one_rollouts, one_eval),
        Rule("random", "random", one_rollouts, one_eval),
        Rule("thompson", "thompson", one_rollouts, one_eval),
        Rule("dopr", "dopr", one_rollouts, one_eval),
    ]


def parse_rules(specs, full_rollouts: int = 2048,
                one_rollouts: int = 512) -> list[Rule]:
    """Rules from labels of :func:`default_rules` or variants of them.

    A variant is ``LABEL=RULE:key=value,key=value``: rule ``RULE``'s
    budget and evaluation spacing with these selector arguments, e.g.
    ``dopr-probe=dopr:probe=1,c=0.25``.  Values are JSON (numbers, true,
    false), else strings.
    """
    known = {r.label: r for r in default_rules(full_rollouts, one_rollouts)}
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
        args = dict(known[name].args)
        for item in filter(None, argstr.split(",")):
            key, eq, value = item.partition("=")
            if not eq or not key:
                raise ValueError(f"{spec!r}: {item!r} is not key=value")
            try:
                args[key] = json.loads(value)
            except ValueError:
                args[key] = value
        rules.append(replace(known[name], label=label, args=args))
    labels = [r.label for r in rules]
    if len(set(labels)) < len(labels):
        raise ValueError(f"rule labels repeat: {labels}")
    return rules


def run_rules(rules: list[Rule], seeds: list[int], base: DoprConfig,
              out_root, *, data=None, resume: bool = False,
              log=print) -> dict[str, list[RunResult]]:
    """Train each rule with each seed; ``out_root/<label>-s<seed>/``."""
    results: dict[str, list[RunResult]] = {}
    for rule in rules:
        for seed in seeds:
            cfg = replace(base, selector=rule.selector,
                          selector_args=dict(rule.args),
                          max_rollouts=rule.max_rollouts, max_steps=0,
                          eval_every=rule.eval_every, seed=seed,
                          out_dir=str(Path(out_root) / f"{rule.label}-s{seed}"))
            cfg.validate()
            r = train(cfg, policy=load_policy(cfg), data=data,
                      resume=resume, progress=False, figure=False,
                      log=lambda *a: None)
            results.setdefault(rule.label, []).append(r)
            log(f"{rule.label:<18} seed {seed}: {r.base_accuracy:.3f} -> "
                f"{r.final_accuracy:.3f} in {r.counter.cost} rollouts, "
                f"{len(r.metrics)} steps, {r.seconds:.0f} s")
    return results


def curves(runs: list[RunResult], axis: str = "rollouts",
           grid: np.ndarray | None = None, points: int = 101):
    """(grid, accuracy per seed on the grid): linear interpolation between
    evaluations, held at the last value after a run's end."""
    xs = [np.array([e[axis] for e in r.evals], dtype=float) for r in runs]
    ys = [np.array([e["accuracy"] for e in r.evals]) for r in runs]
    if grid is None:
        grid = np.linspace(0, max(x[-1] for x in xs), points)
    return grid, np.stack([np.interp(grid, x, y) for x, y in zip(
        xs, ys, strict=True)])


def rollouts_to_reach(runs: list[RunResult], target: float,
                      axis: str = "rollouts") -> float:
    """The first point of the seed-mean curve at or above ``target``
    (nan if it never gets there)."""
    grid, acc = curves(runs, axis, points=401)
    hit = np.nonzero(acc.mean(0) >= target)[0]
    return float(grid[hit[0]]) if len(hit) else float("nan")


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
            "saving": {s: ref_cost[s] / c if c > 0 else float("nan")
                       for s, c in to.items()},
        })
    return rows


def format_table(rows: list[dict]) -> str:
    """Markdown table of :func:`comparison` rows."""
    shares = list(rows[0]["rollouts_to"])
    head = ("| rule | final acc (± sd) | share of full's gain | rollouts |"
            " updates | zero-var groups |")
    head += "".join(f" rollouts to {s:.0%} (saving) |" for s in shares)
    lines = [head, "|" + "---|" * (6 + len(shares))]
    for r in rows:
        cells = [r["rule"], f"{r['final_accuracy']:.3f} ± "
                 f"{r['final_std']:.3f}",
                 f"{r['share_of_reference_gain']:.0%}",
                 f"{r['rollouts']:.0f}", f"{r['updates']:.0f}",
                 f"{r['zero_std_groups']:.0%}"]
        for s in shares:
            to = r["rollouts_to"][s]
            cells.append("not reached" if to != to else
                         f"{to:.0f} ({r['saving'][s]:.1f}x)")
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def benchmark(seeds=(0, 1, 2), full_rollouts: int = 2048,
              one_rollouts: int = 512, n_test: int = 300, rules=None,
              out_dir="runs/bench/compare", command: str = "",
              resume: bool = False, log=print):
    """Run the head-to-head, write ``<out_dir>/compare.json`` (settings,
    versions, the table and every eval curve); return (results, rows)."""
    chosen = (parse_rules(rules, full_rollouts, one_rollouts) if rules
              else default_rules(full_rollouts, one_rollouts))
    base = DoprConfig.tiny(n_test=n_test, eval_k=0, save_every=0)
    t0 = time.time()
    results = run_rules(chosen, list(seeds), base, out_dir, resume=resume,
                        log=log)
    rows = comparison(results) if "full" in results else []
    record = {"command": command, "seconds": time.time() - t0,
              "versions": versions(), "config": base.to_dict(),
              "seeds": list(seeds), "rules": [vars(r) for r in chosen],
              "table": rows,
              "curves": {label: [r.evals for r in runs]
                         for label, runs in results.items()}}
    Path(out_dir).mkdir(parents=True, exist_ok=True)
    Path(out_dir, "compare.json").write_text(json.dumps(record, indent=1))
    return results, rows
