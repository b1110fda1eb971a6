"""The factorial's answers (issue 34), from its committed runs alone:
``bench/results/factorial/{tune,report,shared,pools}.json`` as
``bench/factorial.py`` wrote them, analysed as the protocol in
``bench/README.md`` ("What the saving is made of") fixed before the runs.

    python bench/factorial_report.py \\
        --out bench/results/factorial/answers.json \\
        --figure figures/factorial_crossings.png

Prints markdown tables (Q1 selection at tuned and at the shared rate, Q2
batch size, Q3 the headline, the pools' check) with 95% bootstrap
intervals over seeds (``dopr_lite.curves.interval``), and writes JSON with
every number and the command.  A stage that has not run yet is left out,
and says so; a cell with fewer seeds than the protocol's says how many it
has.  Q4 (GPU time) is the step-time model's estimate (consumer_gpu
preset, three cards), a band over its host overhead per layer and two
crossing statistics: an estimate, not a measurement.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
import factorial as fx  # noqa: E402

from dopr_lite.curves import (area, excludes_zero,  # noqa: E402
                              first_reach, fmt_reach, interval, reached,
                              tail)

SHARES = (0.85, 0.90, 0.95)
COMMON = 1024  # the area every configuration has (Q1's budget)
STAGES = ("tune", "report", "shared", "pools")


def load(results: Path = fx.RESULTS) -> tuple[dict, dict, list]:
    """Every recorded run ``{(pool, config, rate, seed): evals}``, the
    tuning's picks and shared rates, and the stages found."""
    runs, found, picks = {}, [], {}
    for stage in STAGES:
        path = results / f"{stage}.json"
        if not path.is_file():
            continue
        body = json.loads(path.read_text())
        found.append(stage)
        if stage == "tune":
            picks = {"picks": body.get("picks", {}),
                     "shared": body.get("shared", {}),
                     "scores": body.get("scores", {})}
        for r in body["runs"]:
            runs[fx.key(r)] = r["evals"]
    return runs, picks, found


def seeds_of(runs: dict, pool: str, config: str, rate: float,
             seeds) -> dict:
    """``{seed: evals}`` of one cell, for the seeds that ran."""
    return {s: runs[(pool, config, rate, s)] for s in seeds
            if (pool, config, rate, s) in runs}


def base_of(runs: dict, pool: str) -> float:
    """The pool's base accuracy: every run starts from it (checked)."""
    bases = {round(e[0]["accuracy"], 9) for (p, *_), e in runs.items()
             if p == pool}
    if len(bases) != 1:
        raise ValueError(f"pool {pool}: runs start from different "
                         f"accuracies {sorted(bases)}")
    return bases.pop()


def ceiling(runs: dict, picks: dict, pool: str, seeds) -> tuple:
    """The best seed-mean accuracy over the last quarter of the budget
    among the tuned GRPO configurations, and which it is."""
    best = (-1.0, None)
    for name, cfg in fx.CONFIGS.items():
        if cfg.question != "q2" or name not in picks:
            continue
        cell = seeds_of(runs, pool, name, picks[name], seeds)
        if len(cell) == len(seeds):
            best = max(best, (float(np.mean([tail(e, cfg.budget)
                                             for e in cell.values()])),
                              name))
    return best


def median(x):
    return float(np.median(x))


def saving(theirs, mine):
    """Their median crossing over mine (NOT_REACHED-aware)."""
    a, b = np.median(theirs), np.median(mine)
    if not reached(b):
        return 0.0 if reached(a) else np.nan
    return a / b


def cell_stats(cell: dict, cfg: fx.Config, targets: dict) -> dict:
    """Per-seed area and crossings of one cell, with intervals."""
    seeds = sorted(cell)
    areas = [area(cell[s], COMMON) for s in seeds]
    out = {"seeds": seeds, "area": areas,
           "area_ci": interval(np.mean, areas, paired=False),
           "crossings": {}}
    if cfg.question == "q2":
        out["area_budget"] = [area(cell[s], cfg.budget) for s in seeds]
        out["area_budget_ci"] = interval(np.mean, out["area_budget"],
                                         paired=False)
    for share, target in targets.items():
        x = [first_reach(cell[s], target) for s in seeds]
        out["crossings"][share] = {
            "by_seed": x, "reached": sum(map(reached, x)),
            "median": interval(median, x, paired=False)}
    return out


def paired(a: dict, b: dict) -> dict:
    """``a`` against ``b`` on the seeds both ran: the area difference and
    the saving at each share, with paired intervals."""
    seeds = [s for s in a["seeds"] if s in b["seeds"]]
    ia = [a["seeds"].index(s) for s in seeds]
    ib = [b["seeds"].index(s) for s in seeds]
    d = np.array([a["area"][i] for i in ia]) - np.array(
        [b["area"][i] for i in ib])
    out = {"seeds": seeds, "area_diff": interval(np.mean, d, paired=False)}
    out["ahead"] = excludes_zero(out["area_diff"])
    out["saving"] = {}
    for share in a["crossings"]:
        mine = [a["crossings"][share]["by_seed"][i] for i in ia]
        theirs = [b["crossings"][share]["by_seed"][i] for i in ib]
        iv = interval(saving, theirs, mine, paired=True)
        out["saving"][share] = iv | {"clear": excludes_zero(iv, at=1.0)}
    return out


OVERHEADS = (0.1e-3, 1.0e-3)  # host seconds per layer per forward (Q4)
GPU_CARDS = ("rtx3060", "rtx4090", "h100-sxm")


def gpu_seconds(name: str, card: str, overhead: float) -> tuple:
    """(seconds, rows) of a typical step of configuration ``name`` on
    ``card`` with the consumer_gpu preset's model at the configuration's
    batch, at ``overhead`` host seconds per layer (the step-time model)."""
    from dopr_lite.config import DoprConfig
    from dopr_lite.ruletime import PUBLISHED, gpu_estimate
    from dopr_lite.steptime import CARDS

    c = fx.CONFIGS[name]
    e = gpu_estimate(c.selector, CARDS[card],
                     DoprConfig.consumer_gpu(prompts_per_step=c.batch),
                     replace(PUBLISHED, layer_overhead_s=overhead),
                     selector_args=c.args)
    return e["total"], e["rows"]


def gpu_time(cells: dict, a: str, b: str) -> dict:
    """Q4: ``b``'s estimated GPU time to each target over ``a``'s, per
    card, as a band over the host overhead per layer (:data:`OVERHEADS`)
    and two crossing statistics (the per-seed median; the mean of the
    seeds that reach it).  Estimates from the step-time model, not
    measurements."""
    out = {}
    for share in cells[a]["crossings"]:
        for card in GPU_CARDS:
            ratios = []
            for overhead in OVERHEADS:
                for stat in ("median", "mean reached"):
                    t = []
                    for name in (a, b):
                        x = np.array(cells[name]["crossings"][share]
                                     ["by_seed"], dtype=float)
                        rollouts = (np.median(x) if stat == "median" else
                                    x[np.isfinite(x)].mean()
                                    if np.isfinite(x).any() else np.inf)
                        sec, rows = gpu_seconds(cells[name]["config"], card,
                                                overhead)
                        t.append(rollouts / rows * sec)
                    ratios.append(t[1] / t[0] if reached(t[0]) else 0.0)
            out.setdefault(str(share), {})[card] = {
                "low": float(min(ratios)), "high": float(max(ratios))}
    return out


def fmt_iv(iv: dict, spec: str = ".3f", scale: float = 1.0) -> str:
    def f(x):
        return fmt_reach(None if x is None else x * scale, spec, "-")
    if not reached(iv["low"]) and not reached(iv["high"]):
        return f(iv["value"])
    return f"{f(iv['value'])} [{f(iv['low'])}, {f(iv['high'])}]"


def fmt_x(iv: dict) -> str:
    """A saving and its interval; "-" where undefined."""
    v = iv["value"]
    if not reached(v) or v != v:
        return "-" if v != v else "inf"
    lo, hi = iv["low"], iv["high"]
    return (f"{v:.2f}x [{lo:.2f}, {hi:.2f}]"
            if lo == lo and hi == hi else f"{v:.2f}x")


def analyse(runs: dict, picks: dict) -> dict:
    """Every table of the report, as numbers."""
    tuned = picks.get("picks", {})
    out = {"picks": tuned, "shared": picks.get("shared", {}), "pools": {}}
    for pool, seeds in (("default", fx.REPORT_SEEDS),
                        ("hard", fx.POOL_SEEDS), ("easy", fx.POOL_SEEDS)):
        if not any(k[0] == pool and k[3] in seeds and k[3] not in
                   fx.DESIGN_SEEDS for k in runs):
            continue
        top, by = ceiling(runs, tuned, pool, seeds)
        base = base_of(runs, pool)
        # no GRPO ceiling yet (Q2 not run): areas only, no crossings
        targets = ({s: base + s * (top - base) for s in SHARES}
                   if by is not None else {})
        cells = {}
        for name, cfg in fx.CONFIGS.items():
            rates = {"tuned": tuned.get(name)}
            if pool == "default" and cfg.question == "q1" and \
                    out["shared"].get(f"k{cfg.picks}") != rates["tuned"]:
                # (a rule tuned to the shared rate has one cell, @tuned)
                rates["shared"] = out["shared"].get(f"k{cfg.picks}")
            for how, rate in rates.items():
                cell = seeds_of(runs, pool, name, rate, seeds)
                if rate is not None and len(cell) >= 2:
                    cells[f"{name}@{how}"] = cell_stats(cell, cfg, targets) \
                        | {"rate": rate, "config": name}
        vs = {}
        for label, c in cells.items():
            cfg = fx.CONFIGS[c["config"]]
            control = f"random-k{cfg.picks}@{label.split('@')[1]}"
            same = f"random-k{cfg.picks}@tuned"  # random's own is the rate
            if control not in cells and cells.get(same, {}).get("rate") \
                    == c["rate"]:
                control = same
            if cfg.question == "q1" and control != label and control in cells:
                vs[label] = paired(c, cells[control]) | {"against": control}
        out["pools"][pool] = {"base": base,
                              "ceiling": top if by is not None else None,
                              "ceiling_by": by, "targets": targets,
                              "cells": cells, "vs_random": vs}
    out["q3"] = headline(out, picks, runs)
    return out


def design_best(picks: dict, question: str, runs: dict, where=None):
    """The configuration of ``question`` with the highest design-seed
    area over the first COMMON rollouts at its tuned rate."""
    best = (-1.0, None)
    for name, cfg in fx.CONFIGS.items():
        if cfg.question != question or (where and not where(cfg)):
            continue
        rate = picks["picks"].get(name)
        cell = seeds_of(runs, "default", name, rate, fx.DESIGN_SEEDS)
        if len(cell) == len(fx.DESIGN_SEEDS):
            best = max(best, (float(np.mean([area(e, COMMON)
                                             for e in cell.values()])), name))
    return best[1]


def headline(out: dict, picks: dict, runs: dict) -> dict:
    """Q3 and the moonshot's comparisons on the default pool."""
    cells = out["pools"].get("default", {}).get("cells", {})
    sel = design_best(picks, "q1", runs)
    rows = {"best_selection": sel,
            "best_grpo": design_best(picks, "q2", runs),
            "best_grpo_b8": design_best(picks, "q2", runs,
                                        lambda c: c.batch >= 8)}
    for against in ("best_grpo", "best_grpo_b8"):
        a, b = f"{sel}@tuned", f"{rows[against]}@tuned"
        if a in cells and b in cells:
            rows[f"vs_{against}"] = paired(cells[a], cells[b])
    for against in ("best_grpo", "best_grpo_b8"):
        a, b = f"{sel}@tuned", f"{rows[against]}@tuned"
        if a in cells and b in cells and cells[a]["crossings"]:
            rows[f"gpu_vs_{against}"] = gpu_time(cells, a, b)
    if sel != "random-k1" and f"{sel}@tuned" in cells \
            and "random-k1@tuned" in cells:
        rows["vs_random_k1"] = paired(cells[f"{sel}@tuned"],
                                      cells["random-k1@tuned"])
    return rows


def tuning(picks: dict) -> str:
    """The grid: each configuration's criterion (mean area over its
    budget, design seeds) at each rate, the pick, and its margin over the
    runner-up (below the seeds' noise, a pick is a coin)."""
    scores = picks.get("scores", {})
    rates = sorted({float(r) for t in scores.values() for r in t})
    lines = ["| configuration | " + " | ".join(f"{r:g}" for r in rates)
             + " | pick | margin (pts) |", "|---" * (3 + len(rates)) + "|"]
    for name, t in scores.items():
        t = {float(r): v for r, v in t.items()}
        best = max(t, key=t.get)
        rest = sorted(t.values(), reverse=True)
        margin = 100 * (rest[0] - rest[1]) if len(rest) > 1 else float("nan")
        lines.append(f"| {name} | " + " | ".join(
            f"**{t[r]:.3f}**" if r == best else
            (f"{t[r]:.3f}" if r in t else "") for r in rates)
            + f" | {best:g} | {margin:.1f} |")
    shared = picks.get("shared", {})
    if shared:
        lines.append("\nshared rates (Q1): " + ", ".join(
            f"{k}: {v:g}" for k, v in shared.items()) + " (a rule tuned to "
            "its k's shared rate has one cell, @tuned)")
    return "\n".join(lines)


def markdown(report: dict) -> str:
    lines = []
    for pool, p in report["pools"].items():
        shares = list(p["targets"])
        lines += [f"### {pool}: base {p['base']:.3f}, " + (
                  f"ceiling {p['ceiling']:.3f} ({p['ceiling_by']}, last "
                  "quarter of its budget); targets " + ", ".join(
                      f"{s:.0%} {t:.3f}" for s, t in p["targets"].items())
                  if shares else "no GRPO ceiling yet (Q2's reported runs "
                  "have not run): areas only"),
                  "", "| configuration | rate | seeds | area to 1024 | "
                  + "".join(f"median to {s:.0%} (reached) | "
                            for s in shares),
                  "|---" * (4 + len(shares)) + "|"]
        for label, c in p["cells"].items():
            cross = [f"{fmt_iv(c['crossings'][s]['median'], '.0f')} "
                     f"({c['crossings'][s]['reached']}/{len(c['seeds'])})"
                     for s in shares]
            lines.append(f"| {label} | {c['rate']:g} | {len(c['seeds'])} | "
                         f"{fmt_iv(c['area_ci'])} | "
                         + "".join(f"{x} | " for x in cross))
        if p["vs_random"]:
            lines += ["", "| rule - random-k (paired) | seeds | area diff "
                      "(pts) | " + "".join(f"saving to {s:.0%} | "
                                           for s in shares),
                      "|---" * (3 + len(shares)) + "|"]
            for label, v in p["vs_random"].items():
                diff = v["area_diff"]
                verdict = ("" if not v["ahead"] else " **ahead**"
                           if diff["value"] > 0 else " **behind**")
                lines.append(
                    f"| {label} | {len(v['seeds'])} | "
                    f"{fmt_iv(diff, '+.1f', 100)}{verdict} | "
                    + "".join(f"{fmt_x(v['saving'][s])} | " for s in shares))
        lines.append("")
    q3 = report["q3"]
    lines.append(f"Q3: best selection on the design seeds "
                 f"{q3['best_selection']}, best GRPO {q3['best_grpo']} "
                 f"(at B >= 8: {q3['best_grpo_b8']})")
    for key in ("vs_best_grpo", "vs_best_grpo_b8", "vs_random_k1"):
        if key in q3:
            v = q3[key]
            lines.append(f"- {key}: area {fmt_iv(v['area_diff'], '+.1f', 100)}"
                         " pts; saving " + (", ".join(
                             f"{s:.0%} {fmt_x(x)}"
                             for s, x in v["saving"].items()) or "-"))
    for key in ("gpu_vs_best_grpo", "gpu_vs_best_grpo_b8"):
        for share, by_card in q3.get(key, {}).items():
            lines.append(f"- Q4 {key} to {float(share):.0%} (estimated "
                         "GPU-time saving, band over host overhead "
                         "0.1-1.0 ms/layer and median / mean crossing): "
                         + ", ".join(f"{c} {v['low']:.2f}-{v['high']:.2f}x"
                                     for c, v in by_card.items()))
    return "\n".join(lines)


def figure(report: dict, path: str) -> None:
    """Per-seed rollouts to 90% of the ceiling, per configuration at its
    tuned rate on the default pool, with the median's interval."""
    from dopr_lite.plots import plt, rule_color

    cells = {k: c for k, c in report["pools"].get("default", {}).get(
        "cells", {}).items() if k.endswith("@tuned")}
    fig, ax = plt.subplots(figsize=(9, 4))
    for i, c in enumerate(cells.values()):
        cr = c["crossings"][0.90]
        name = c["config"]
        x = np.array(cr["by_seed"], dtype=float)
        ok = np.isfinite(x)
        ax.scatter(np.full(ok.sum(), i) + np.linspace(-0.15, 0.15, ok.sum()),
                   x[ok], s=12, color=rule_color(name),
                   alpha=0.7)
        if (~ok).any():
            ax.annotate(f"{(~ok).sum()} not", (i, 0.02), ha="center",
                        xycoords=("data", "axes fraction"), fontsize=7)
        m = cr["median"]
        if reached(m["value"]):
            lo = m["low"] if reached(m["low"]) else m["value"]
            hi = m["high"] if reached(m["high"]) else ax.get_ylim()[1]
            ax.errorbar(i, m["value"], yerr=[[m["value"] - lo],
                                             [hi - m["value"]]],
                        fmt="_", color="black", ms=14, capsize=3)
    ax.set_xticks(range(len(cells)),
                  [k.removesuffix("@tuned") for k in cells], rotation=45,
                  ha="right")
    ax.set_ylabel("training rollouts to 90% of the ceiling")
    ax.set_title("per seed (dots); median and its 95% bootstrap interval")
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def main(argv=None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--results", default=str(fx.RESULTS))
    p.add_argument("--out", default="")
    p.add_argument("--figure", default="")
    a = p.parse_args(argv)
    runs, picks, found = load(Path(a.results))
    if "tune" not in found:
        print(f"no tune.json under {a.results}: run bench/factorial.py tune",
              file=sys.stderr)
        return 1
    report = analyse(runs, picks)
    print(f"stages found: {', '.join(found)}; missing: "
          f"{', '.join(s for s in STAGES if s not in found) or 'none'}\n")
    print("the tuning (bench/factorial.py tune):\n" + tuning(picks) + "\n")
    print(markdown(report))
    if a.figure:
        figure(report, a.figure)
    if a.out:
        body = {"command": "python bench/factorial_report.py "
                + " ".join(argv), "stages": found, **report}
        Path(a.out).write_text(json.dumps(body, indent=1, default=float))
    return 0


if __name__ == "__main__":
    sys.exit(main())
