"""Rollouts to a target accuracy, against the strongest full-batch GRPO.

From the eval curves that ``dopr-lite compare`` records (one or more
``compare.json`` files per pool mix), for each mix:

* the **target**: the base accuracy plus 95% of the best full-batch
  GRPO's final gain among every full-batch configuration of the mix (the
  rule ``full`` at each B), so no rule is measured against an
  under-trained reference (:func:`table`);
* per B and rule: final accuracy (± sd over seeds), the rollouts its
  seed-mean curve needs to reach the target, the saving against
  full-batch GRPO at the same B and against the *strongest* full-batch
  configuration (the one that needs the fewest rollouts to the target),
  how much the last quarter of the budget added (a flat curve: "not
  reached" means a plateau, not a cut-off), and the worst dip;
* a rule paired with another seed by seed (:func:`paired_with`): the
  mean accuracy along the budget, their difference ± its standard error;
* the same rows in estimated GPU time on a few cards
  (:func:`gpu_tables`, through :mod:`dopr_lite.ruletime`: estimates, not
  measurements).

``bench/saving.py`` and ``bench/time_model.py`` print and save them (with
the goals of the issue they answer); notebook 05 reads the committed
results; the pre-flight reads :func:`benchmark_rows`, shipped with the
package.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from dopr_lite import ruletime
from dopr_lite.config import DoprConfig
from dopr_lite.curves import (NOT_REACHED, area, dips, fmt_reach, late_gain,
                              mean_reach, mean_se)
from dopr_lite.curves import reached as is_reached
from dopr_lite.select import make_selector
from dopr_lite.steptime import CARDS

SHARE = 0.95


def read(path) -> dict:
    """A ``bench/saving.py`` record as it was made: the batch sizes that
    JSON turned into string keys are ints again."""
    record = json.loads(Path(path).read_text())
    for t in record["tables"].values():
        for key in ("full_final", "full_to_target"):
            t[key] = {int(B): v for B, v in t[key].items()}
    return record


@dataclass
class Mix:
    """One pool mix's benchmark runs, as :func:`read_mix` loads them:
    ``runs`` maps each candidate batch size B to each rule label's
    per-seed evaluation rows; ``rules`` maps each label to its selector
    and arguments."""

    runs: dict = field(default_factory=dict)
    rules: dict = field(default_factory=dict)


def read_mix(paths: list[str]) -> Mix:
    """The runs of ``compare.json`` files of one pool mix (``full@B``
    copies of a smaller B's reference are skipped).  A path
    ``FILE:LABEL+LABEL`` takes only those labels from FILE (runs of
    another rule under the same label elsewhere, such as an older version
    of it, are left out)."""
    mix = Mix()
    for spec in paths:
        path, _, only = str(spec).partition(":")
        keep = set(only.split("+")) if only else None
        record = json.loads(Path(path).read_text())
        sweep = record.get("sweep_curves") or {
            str(record["batches"][0]): record["curves"]}
        for B, by_label in sweep.items():
            for label, seeds in by_label.items():
                if "@" not in label and (keep is None or label in keep):
                    mix.runs.setdefault(int(B), {})[label] = seeds
        for rules in record.get("rules", {}).values():
            for r in rules:
                mix.rules[r["label"]] = {"selector": r["selector"],
                                         "args": r["args"]}
    return mix


def to_target(evals: list, target: float, per_seed: bool = False):
    """Rollouts at which the seed-mean curve (or each seed's) first
    reaches ``target`` (:func:`dopr_lite.curves.mean_reach`)."""
    return mean_reach(evals, target, per_seed=per_seed)


def worst_dips(evals: list) -> tuple[float, float]:
    """Worst fall below the running best, and worst end below the peak,
    over the seeds."""
    falls = [dips(e) for e in evals]
    return (max(0.0, *(f["dip"] for f in falls)),
            max(0.0, *(f["end_below_peak"] for f in falls)))


def table(mix: Mix) -> dict:
    """Everything about one mix (see the module docstring)."""
    specs, runs = mix.rules, mix.runs
    base = float(np.mean([e[0]["accuracy"] for B in runs
                          for seeds in runs[B].values() for e in seeds]))
    fulls = {B: runs[B]["full"] for B in runs if "full" in runs[B]}
    finals = {B: float(np.mean([e[-1]["accuracy"] for e in seeds]))
              for B, seeds in fulls.items()}
    best_B = max(finals, key=finals.get)
    target = base + SHARE * (finals[best_B] - base)
    full_to = {B: to_target(seeds, target) for B, seeds in fulls.items()}
    reached = {B: c for B, c in full_to.items() if is_reached(c)}
    strongest = min(reached, key=reached.get) if reached else None
    rows = []
    for B in sorted(runs):
        for label, seeds in runs[B].items():
            final = np.array([e[-1]["accuracy"] for e in seeds])
            cost = to_target(seeds, target)
            worst, end = worst_dips(seeds)
            same = full_to.get(B, NOT_REACHED)
            strong = reached.get(strongest, NOT_REACHED)
            rows.append({
                "B": B, "rule": label, "seeds": len(seeds),
                **specs.get(label, {"selector": label, "args": {}}),
                "final": float(final.mean()),
                "final_sd": float(final.std(ddof=1)) if len(final) > 1
                else 0.0,
                "share_of_best_gain": float((final.mean() - base)
                                            / (finals[best_B] - base)),
                "budget": float(np.mean([e[-1]["rollouts"] for e in seeds])),
                "to_target": cost,
                "to_target_by_seed": to_target(seeds, target, per_seed=True),
                "saving_vs_same_B": same / cost if is_reached(cost)
                else None,
                "saving_vs_strongest": strong / cost if is_reached(cost)
                else None,
                "last_quarter_gain": late_gain(seeds),
                "worst_dip": worst, "worst_end_below_peak": end})
    return {"base": base, "full_final": finals, "best_full_B": best_B,
            "target": target, "full_to_target": full_to,
            "strongest_full_B": strongest, "rows": rows}


def paired_with(mixes: dict[str, Mix], rule: str, other: str) -> dict:
    """``rule`` minus ``other``: mean accuracy along the shorter budget,
    seed by seed, over every B and mix where both ran."""
    diffs, where = [], []
    for name, mix in mixes.items():
        for B, labels in mix.runs.items():
            if rule in labels and other in labels:
                a, b = labels[rule], labels[other]
                for ea, eb in zip(a, b, strict=True):
                    upto = min(ea[-1]["rollouts"], eb[-1]["rollouts"])
                    diffs.append(area(ea, upto) - area(eb, upto))
                where.append(f"{name}/B{B}")
    d = mean_se(diffs)
    return {"rule": rule, "against": other, "pairs": d["pairs"],
            "where": where, "mean": d["mean"], "se": d["se"]}


def reach(x) -> str:
    return fmt_reach(x, ".0f") + (" rollouts" if is_reached(x) else "")


def times(x) -> str:
    return fmt_reach(x, ".1f", "-") + ("x" if is_reached(x) else "")


def markdown(mix: str, t: dict) -> str:
    best = t["best_full_B"]
    lines = [f"{mix}: base {t['base']:.3f}, target {t['target']:.3f} "
             f"(base + 95% of the best full-batch gain: full at B = "
             f"{best} ends at {t['full_final'][best]:.3f}"
             f"); strongest full-batch GRPO: B = {t['strongest_full_B']} "
             f"({fmt_reach(t['full_to_target'].get(t['strongest_full_B']))} "
             "rollouts)", "",
             "| B | rule | final acc (± sd) | share of best full's gain | "
             "rollouts | to target | saving vs full at B | saving vs "
             "strongest full | last quarter adds | worst dip |",
             "|---" * 10 + "|"]
    for r in t["rows"]:
        lines.append(
            f"| {r['B']} | {r['rule']} | {r['final']:.3f} ± "
            f"{r['final_sd']:.3f} | {r['share_of_best_gain']:.0%} | "
            f"{r['budget']:.0f} | {fmt_reach(r['to_target'])} | "
            f"{times(r['saving_vs_same_B'])} | "
            f"{times(r['saving_vs_strongest'])} | "
            f"{100 * r['last_quarter_gain']:+.1f} pts | "
            f"{100 * r['worst_dip']:.1f} pts |")
    return "\n".join(lines)


# --- the same, in estimated GPU time ------------------------------------
def gpu_row(row: dict, cards: list) -> dict:
    """One rule at one B (a ``bench/saving.py`` row): its rollouts to the
    target, the steps that makes with its typical step's rollouts, and
    the estimated seconds per step and to the target on each card, with
    the consumer_gpu preset's model and settings at that B."""
    rule, B = row["rule"], row["B"]
    cfg = DoprConfig.consumer_gpu(prompts_per_step=B)
    out = {"rule": rule, "B": B, "to_target": row["to_target"],
           "cards": {}}
    selector = row.get("selector", rule)
    args = row.get("args", {})
    if make_selector(selector, **args).shape.draws > 1:
        out["note"] = "not modelled (refills: calls per step vary)"
        return out
    for key in cards:
        card = CARDS[key]
        e = ruletime.gpu_estimate(selector, card, cfg, selector_args=args)
        out["rollouts_per_step"] = e["rows"]
        out["steps_to"] = row["to_target"] / e["rows"]
        out["cards"][key] = {"seconds_per_step": e["total"],
                             "seconds_to": out["steps_to"] * e["total"],
                             "memory_gb": e["memory_gb"],
                             "fits": e["memory_gb"] <= card.memory_gb}
    return out


def gpu_tables(record: dict, cards: list) -> dict:
    """Per pool mix: :func:`gpu_row` of every row, and each card's
    estimated time to the target of the full-batch configuration that
    gets there first in time among those whose generate call fits the
    card (``fastest_full``)."""
    out = {}
    for mix, table in record["tables"].items():
        rows = [gpu_row(r, cards) for r in table["rows"]]
        fastest = {}
        for key in cards:
            times = [(r["cards"][key]["seconds_to"], r["B"]) for r in rows
                     if r["rule"] == "full" and key in r["cards"]
                     and r["cards"][key]["fits"]
                     and is_reached(r["cards"][key]["seconds_to"])]
            fastest[key] = min(times) if times else (float("nan"), None)
        out[mix] = {"target": table["target"], "rows": rows,
                    "fastest_full": fastest}
    return out


def _hours(seconds: float) -> str:
    return fmt_reach(seconds / 3600, ".1f") + (" h" if is_reached(seconds)
                                               else "")


def gpu_table(mix: str, t: dict, cards: list) -> str:
    names = [CARDS[k].name.replace("NVIDIA ", "") for k in cards]
    head = ("| B | rule | rollouts to target | steps |"
            + "".join(f" {n}: s/step, time (vs fastest full) |"
                      for n in names))
    lines = [f"{mix} (target {t['target']:.3f}; fastest full-batch GRPO in "
             "estimated time: " + ", ".join(
                 f"{n} B = {t['fastest_full'][k][1]}"
                 for n, k in zip(names, cards, strict=True)) + "):",
             head, "|" + "---|" * (4 + len(cards))]
    for r in t["rows"]:
        to = r["to_target"]
        cells = [str(r["B"]), r["rule"], fmt_reach(to),
                 f"{r['steps_to']:.0f}" if is_reached(to) and "steps_to" in r
                 else "-"]
        for key in cards:
            c = r["cards"].get(key)
            if c is None:
                cells.append(r.get("note", "-"))
                continue
            best = t["fastest_full"][key][0]
            ratio = (f" ({best / c['seconds_to']:.1f}x)"
                     if is_reached(to) and is_reached(best) else "")
            cells.append(f"{c['seconds_per_step']:.0f}"
                         f"{'' if c['fits'] else '*'}, "
                         f"{_hours(c['seconds_to'])}{ratio}")
        lines.append("| " + " | ".join(cells) + " |")
    lines.append("\nEvery GPU second and hour is an estimate (the model in "
                 "dopr_lite/steptime.py, not a measurement); (Nx): the "
                 "fastest full-batch configuration's estimated time to the "
                 "target over the rule's.  * the generate call would need "
                 "more memory than the card has (weights + KV cache): it "
                 "would not run as one call")
    return "\n".join(lines)


BENCHMARK_ROWS = "benchmark_rows.json"  # in dopr_lite/assets: see below


def benchmark_rows(record: dict, mix: str = "default") -> list[dict]:
    """What the pre-flight needs of a ``bench/saving.py`` record: each
    plain rule's batch size and rollouts to the target on ``mix``
    (``bench/saving.py --rows`` ships them as package data, so an
    installed package needs no checkout)."""
    return [{"B": r["B"], "rule": r["rule"], "to_target": r["to_target"]}
            for r in record["tables"][mix]["rows"]
            if r["rule"] == r.get("selector", r["rule"])]


def read_benchmark_rows() -> list[dict] | None:
    """The shipped :func:`benchmark_rows` (None if the package has none)."""
    path = Path(__file__).parent / "assets" / BENCHMARK_ROWS
    return json.loads(path.read_text())["rows"] if path.is_file() else None


def benchmark_steps(rows: list[dict], B: int) -> dict:
    """rule -> steps its seed mean needed to the target in
    :func:`benchmark_rows`, at the candidate batch nearest ``B`` (in
    ratio), with each rule's typical rollouts a step on a real model
    (:func:`ruletime.rule_workload`); NOT_REACHED where the target was
    not reached.  What a run on another pool needs can differ: the
    pre-flight prints it as an assumption."""
    sizes = sorted({r["B"] for r in rows})
    near = min(sizes, key=lambda b: abs(np.log(b / B)))
    cfg = DoprConfig.consumer_gpu(prompts_per_step=near)
    out = {}
    for r in rows:
        if r["B"] == near and make_selector(r["rule"]).shape.draws == 1:
            w = ruletime.rule_workload(r["rule"], cfg)
            to = r["to_target"] if is_reached(r["to_target"]) \
                else NOT_REACHED
            out[r["rule"]] = to / sum(c.rows for c in w.calls)
    return out
