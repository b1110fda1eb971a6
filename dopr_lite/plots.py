"""Figures: one helper saves them, plotting functions draw runs.

``save_figure(fig, "02_grpo_curves")`` writes ``figures/02_grpo_curves.png``
(the repo's ``figures/`` unless ``DOPR_FIGURES`` names another folder).
Matplotlib runs headless (Agg) unless a notebook backend is active.
"""

from __future__ import annotations

import os
import zlib
from pathlib import Path

import matplotlib
import numpy as np

if "inline" not in matplotlib.get_backend().lower():
    matplotlib.use("Agg")  # headless unless a notebook draws inline
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.colors import to_hex, to_rgb  # noqa: E402
from matplotlib.lines import Line2D  # noqa: E402
from matplotlib.patches import Patch  # noqa: E402
from matplotlib.ticker import FixedLocator, NullLocator  # noqa: E402
from matplotlib.transforms import ScaledTranslation  # noqa: E402

from dopr_lite.curves import reached  # noqa: E402
from dopr_lite.env import project_root  # noqa: E402
from dopr_lite.preflight import GROUP_SIZES  # noqa: E402
from dopr_lite.runlog import AXES, curves  # noqa: E402
from dopr_lite.steptime import CARDS  # noqa: E402

FIGURES = Path(os.environ.get("DOPR_FIGURES",
                              project_root() / "figures"))

# One colour per rule in every figure (matplotlib's tab10 order).
RULE_COLORS = {"full": "tab:blue", "dynamic": "tab:orange",
               "fixed": "tab:brown", "random": "tab:green",
               "thompson": "tab:purple", "dopr": "tab:red",
               "dopr-v1": "tab:pink"}
# tab20's lighter twin of each rule's colour: its variants' first shade
_LIGHT = {"tab:blue": "#aec7e8", "tab:orange": "#ffbb78",
          "tab:brown": "#c49c94", "tab:green": "#98df8a",
          "tab:purple": "#c5b0d5", "tab:red": "#ff9896",
          "tab:pink": "#f7b6d2"}
# other labels (k4, an ablation's name): none of the rules' colours
_SPARE = ("tab:gray", "tab:olive", "tab:cyan", "black", "gold", "navy",
          "teal", "darkmagenta", "yellowgreen", "sienna", "slateblue",
          "darkkhaki")
_GIVEN: dict[str, str] = {}  # label -> colour, as first asked (a process)


def rule_color(label: str) -> str:
    """The colour of a rule in every figure, one per label: a rule's name
    (``full``, ``dopr``) has its own; a label that names a rule first
    (``full@32``, ``random one``) a shade of that rule's colour; any other
    (``k4``) one of :data:`_SPARE`, from a slot its name hashes to.  Two
    labels never share a colour while the shades and spares last (the
    first label asked keeps a contested one), and a label keeps its colour
    for the rest of the process."""
    if label in RULE_COLORS:
        return RULE_COLORS[label]
    if label not in _GIVEN:
        _GIVEN[label] = _new_color(label)
    return _GIVEN[label]


def _new_color(label: str) -> str:
    """The first colour not yet taken among the shades of the rule
    ``label`` names first and the spares (wrapping round when none is
    left)."""
    words = label.split()
    family = next((RULE_COLORS[key] for key in (
        label.split("@")[0], words[0].lower() if words else "")
        if key in RULE_COLORS), None)
    start = zlib.crc32(label.encode()) % len(_SPARE)
    options = ((_shades(family) if family else [])
               + list(_SPARE[start:] + _SPARE[:start]))
    taken = {to_hex(c) for c in (*RULE_COLORS.values(), *_GIVEN.values())}
    return next((c for c in options if to_hex(c) not in taken), options[0])


def _shades(colour: str) -> list[str]:
    """A rule colour's variants: tab20's light twin, then darker and
    lighter blends."""
    rgb = to_rgb(colour)
    blend = [to_hex([(1 - w) * c + w * t for c in rgb])
             for t, w in ((0, 0.35), (1, 0.7), (0, 0.6))]
    return [_LIGHT.get(colour, to_hex([(c + 1) / 2 for c in rgb])), *blend]


def smoothing_window(run, rollouts: int = 64) -> int:
    """Steps per window so that each window holds about ``rollouts``
    rollouts: 1 for full-batch GRPO's 64-rollout steps, 8 for a one-prompt
    rule's 8 (a single group's reward is a 0/1 zigzag; a window's mean
    reads)."""
    steps = max(len(run.metrics), 1)
    per_step = run.metrics[-1]["rollouts"] / steps if run.metrics else 1
    return max(1, round(rollouts / max(per_step, 1)))


def windowed(values, window: int):
    """Mean of each run of ``window`` consecutive values (last one short)."""
    return [sum(values[i:i + window]) / len(values[i:i + window])
            for i in range(0, len(values), window)]


def save_figure(fig, name: str, folder: Path | None = None) -> Path:
    """Save ``fig`` as ``<folder>/<name>.png`` (default ``FIGURES``) and
    return the path."""
    folder = Path(folder or FIGURES)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}.png"
    fig.savefig(path, dpi=120, bbox_inches="tight")
    return path


def plot_runs(runs: dict, title: str = ""):
    """Held-out accuracy, and train reward and zero-variance share, against
    rollouts, one colour a run.

    ``runs`` maps a label to a :class:`~dopr_lite.runlog.RunResult`.  The
    right panel averages consecutive steps in windows of about 64
    rollouts (:func:`smoothing_window`), so a one-prompt run's curve is as
    readable as a full batch's.
    """
    fig, (a, b) = plt.subplots(1, 2, figsize=(10, 3.6))
    for label, r in runs.items():
        colour = rule_color(label)
        xs = [e["rollouts"] for e in r.evals]
        a.plot(xs, [e["accuracy"] for e in r.evals], marker="o", ms=3,
               color=colour, label=f"{label} greedy")
        if "sampled_accuracy" in r.evals[0]:
            a.plot(xs, [e["sampled_accuracy"] for e in r.evals], ls="--",
                   color=colour, label=f"{label} sampled")
        w = smoothing_window(r)
        steps = [m["rollouts"] for m in r.metrics][w - 1::w]
        if len(r.metrics) % w:
            steps.append(r.metrics[-1]["rollouts"])
        for key, ls, what in (("reward_mean", "-", "reward"),
                              ("frac_reward_zero_std", ":",
                               "zero-var groups")):
            b.plot(steps, windowed([m[key] for m in r.metrics], w), ls=ls,
                   color=colour, label=f"{label} {what}"
                   + (f" ({w}-step mean)" if w > 1 else ""))
    a.set(xlabel="training rollouts", ylabel="held-out accuracy",
          title="held-out accuracy")
    b.set(xlabel="training rollouts", ylabel="fraction",
          title="train reward / zero-variance groups", ylim=(0, 1))
    for ax in (a, b):
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig


def plot_comparison(results: dict, axes=("rollouts", "updates"),
                    target: float | None = None, title: str = ""):
    """Held-out accuracy of several rules (mean and min-max band over
    seeds) against each of ``axes``; ``results`` maps a label to a list of
    :class:`~dopr_lite.runlog.RunResult` (see :mod:`dopr_lite.compare`).
    ``"train_seconds"`` is measured time: a figure drawn with it differs
    from run to run, so the default axes leave it out."""
    fig, panels = plt.subplots(1, len(axes), figsize=(4.6 * len(axes), 3.6),
                               squeeze=False)
    for ax, axis in zip(panels[0], axes, strict=True):
        for label, runs in results.items():
            grid, acc = curves(runs, axis)
            colour = rule_color(label)
            ax.plot(grid, acc.mean(0), color=colour,
                    label=f"{label} (n={len(runs)})")
            ax.fill_between(grid, acc.min(0), acc.max(0), alpha=0.15,
                            color=colour, lw=0)
        if target is not None:
            ax.axhline(target, color="k", ls=":", lw=1,
                       label="95% of full-batch gain")
        ax.set(xlabel=AXES[axis], ylabel="held-out greedy accuracy")
        if axis == "rollouts":  # budgets differ by 10x: log beyond 64
            ax.set_xscale("symlog", linthresh=64)
            ax.set_xlim(left=0)
        ax.grid(alpha=0.3)
    panels[0][0].legend(fontsize=7)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig


def plot_step_costs(runs: dict, title: str = ""):
    """Seconds per step (rollouts vs update) and peak memory, per run.

    Reads the ``rollout_seconds``, ``update_seconds`` and ``peak_memory_gb``
    columns of each run's metrics (the step's own peak:
    :func:`dopr_lite.env.peak_memory_gb`).
    """
    fig, (a, b) = plt.subplots(1, 2, figsize=(10, 3.4))
    labels = list(runs)
    mean = {key: [sum(m[key] for m in r.metrics) / len(r.metrics)
                  for r in runs.values()]
            for key in ("rollout_seconds", "update_seconds")}
    a.bar(labels, mean["rollout_seconds"], label="select + roll out + score")
    a.bar(labels, mean["update_seconds"], bottom=mean["rollout_seconds"],
          label="GRPO update")
    a.set(ylabel="seconds per step (mean)", title="time per step")
    a.legend(fontsize=7)
    for label, r in runs.items():
        b.plot([m["step"] for m in r.metrics],
               [m["peak_memory_gb"] for m in r.metrics], marker=".",
               color=rule_color(label), label=label)
    b.set(xlabel="step", ylabel="GB", title="peak memory per step")
    b.legend(fontsize=7)
    for ax in (a, b):
        ax.grid(alpha=0.3)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig


def plot_preflight(report, title: str = ""):
    """A pre-flight (:class:`~dopr_lite.preflight.PoolReport`): the
    histogram of right answers per prompt, and the expected shares of
    all-wrong, all-right and mixed groups against G, with 95% intervals."""
    fig, (a, b) = plt.subplots(1, 2, figsize=(11, 3.6))
    k, hist = report.k, report.histogram()
    colours = ["tab:red"] + ["tab:blue"] * (k - 1) + ["tab:green"]
    a.bar(range(k + 1), hist, color=colours)
    a.set(xlabel=f"right answers out of k = {k}", ylabel="prompts",
          title=f"{len(report.counts)} prompts of the pool")
    sizes = sorted({*GROUP_SIZES, report.G})
    rows = [report.shares(G) for G in sizes]
    for name, colour in (("all_wrong", "tab:red"), ("all_right", "tab:green"),
                         ("mixed", "tab:blue")):
        b.plot(sizes, [r[name] for r in rows], "o-", color=colour,
               label=name.replace("_", " "))
        b.fill_between(sizes, [r[f"{name}_95"][0] for r in rows],
                       [r[f"{name}_95"][1] for r in rows], color=colour,
                       alpha=0.2)
    b.axvline(report.G, color="grey", ls=":", label="the run's G")
    if max(sizes) > k:
        b.axvspan(k, max(sizes), color="grey", alpha=0.08)
    b.set(xscale="log", xticks=sizes, xticklabels=sizes, ylim=(0, 1),
          xlabel="G (shaded: G > k, extrapolated)",
          ylabel="share of groups", title="groups GRPO would meet")
    b.minorticks_off()
    b.legend(fontsize=8)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig


def plot_saving(tables: dict, shares=(0.8, 0.95)):
    """Each rule's saving (full-batch GRPO's rollouts to a share of its
    gain over the rule's) against the candidate batch size B; ``tables``
    maps B to :func:`dopr_lite.compare.comparison` rows.  The dashed line
    is B, the ratio of full-batch GRPO's rollouts per update to a
    one-prompt rule's.  A rule that does not reach the share at some B
    says so in the legend (its line has a gap there)."""
    sizes = sorted(tables)
    labels = list(dict.fromkeys(r["rule"] for B in sizes for r in tables[B]
                                if r["rule"] != "full"))
    fig, panels = plt.subplots(1, len(shares), figsize=(5 * len(shares), 5.2),
                               squeeze=False)
    for ax, share in zip(panels[0], shares, strict=True):
        for label in labels:
            rows = {B: r for B in sizes for r in tables[B]
                    if r["rule"] == label}
            ys = [rows[B]["saving"][share] if B in rows else float("nan")
                  for B in sizes]
            missed = [B for B in rows if rows[B]["saving"][share]
                      != rows[B]["saving"][share]]
            ax.plot(sizes, ys, "o" + ("--" if "@" in label else "-"),
                    color=rule_color(label),
                    label=label + (f" (not reached at B = "
                                   f"{', '.join(map(str, missed))})"
                                   if missed else ""))
        ax.plot(sizes, sizes, "k--", lw=1,
                label="B (full's rollouts per update over one prompt's)")
        ax.axhline(10, color="grey", ls=":", lw=1, label="10x")
        ax.set(xscale="log", yscale="log", xticks=sizes, xticklabels=sizes,
               xlabel="candidate batch B", ylabel="saving over full-batch",
               title=f"rollouts to {share:.0%} of full-batch GRPO's gain")
        lo, hi = ax.get_ylim()
        ticks = [t for t in (0.5, 1, 2, 5, 10, 20, 50, 100, 200, 500)
                 if lo <= t <= hi]
        ax.yaxis.set_major_locator(FixedLocator(ticks))
        ax.yaxis.set_minor_locator(NullLocator())
        ax.set_yticklabels([f"{t:g}x" for t in ticks])
        ax.xaxis.set_minor_locator(NullLocator())
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.2))
    fig.tight_layout()
    return fig


def plot_to_target(tables: dict):
    """Rollouts each rule needs to reach a target accuracy, against the
    candidate batch B, one panel per pool mix.  ``tables`` maps a mix to
    the ``table`` that ``bench/saving.py`` computes (its ``rows``, target
    and strongest full-batch configuration); the dotted line is the
    strongest full-batch GRPO's rollouts, the bar every rule is measured
    against.  A rule that never reaches the target at some B says so in
    the legend.  Variants (a label other than its rule's name, such as
    ``k4``) are left out."""
    fig, panels = plt.subplots(1, len(tables), figsize=(5.2 * len(tables),
                                                        5.4), squeeze=False)
    for ax, (mix, t) in zip(panels[0], tables.items(), strict=True):
        labels = list(dict.fromkeys(
            r["rule"] for r in t["rows"]
            if r.get("selector", r["rule"]) == r["rule"]))
        for label in labels:
            rows = {r["B"]: r for r in t["rows"] if r["rule"] == label}
            sizes = sorted(rows)
            ys = [rows[B]["to_target"] for B in sizes]
            missed = [B for B, y in zip(sizes, ys, strict=True)
                      if not reached(y)]
            ax.plot(sizes, ys, "o-", color=rule_color(label),
                    label=label + (f" (not reached at B = "
                                   f"{', '.join(map(str, missed))})"
                                   if missed else ""))
        strong = t["strongest_full_B"]
        if strong is not None:
            ax.axhline(t["full_to_target"][strong], color="k", ls=":",
                       lw=1, label=f"strongest full-batch (B = {strong})")
        sizes = sorted({r["B"] for r in t["rows"]})
        ax.set(xscale="log", yscale="log", xticks=sizes, xticklabels=sizes,
               xlabel="candidate batch B", ylabel="rollouts to the target",
               title=f"{mix}: to {t['target']:.3f} held-out accuracy")
        ax.xaxis.set_minor_locator(NullLocator())
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.2))
    fig.tight_layout()
    return fig


def plot_gpu_time(gpu: dict, B: int = 128):
    """Each rule's *estimated* hours to the target at candidate batch ``B``,
    one panel per card, bars grouped by pool mix (log scale).  ``gpu`` is
    :func:`dopr_lite.savings.gpu_tables`; the dotted line over a mix's
    bars is the estimated time of its fastest full-batch configuration
    (whatever its B).  A rule that never reaches the target has no bar
    (an x on the axis, and its legend entry says where); a hatched bar's
    generate call would not fit the card's memory.  Every hour is the
    step-time model's estimate (:mod:`dopr_lite.steptime`), not a
    measurement.  Each panel's legend sits below its tick labels."""
    mixes = [m for m, t in gpu.items()
             if any(r["B"] == B and r["cards"] for r in t["rows"])]
    cards = list(next(iter(gpu.values()))["fastest_full"]) if gpu else []
    labels = list(dict.fromkeys(r["rule"] for m in mixes
                                for r in gpu[m]["rows"]
                                if r["B"] == B and r["cards"]))
    fig, panels = plt.subplots(1, max(len(cards), 1),
                               figsize=(4.6 * max(len(cards), 1), 4.8),
                               squeeze=False)
    for ax, key in zip(panels[0], cards, strict=False):
        bars = _gpu_bars(ax, gpu, mixes, labels, key, B)
        fastest = _gpu_fastest_lines(ax, gpu, mixes, key)
        _hours_axis(ax, min(bars["lowest"], fastest["lowest"]))
        ax.set_xticks(range(len(mixes)), [f"{m}\nB = {B}" for m in mixes])
        ax.set(xlim=(-0.5, len(mixes) - 0.5),
               ylabel="estimated hours to the target",
               title=CARDS[key].name.replace("NVIDIA ", "")
               if key in CARDS else key)
        ax.grid(alpha=0.3, axis="y")
        legend_below(ax, _gpu_handles(bars, fastest["where"]), fontsize=7)
    fig.suptitle("Hours to the target on a GPU: an ESTIMATE from the "
                 "step-time model (dopr_lite/steptime.py), not a "
                 "measurement")
    fig.tight_layout()
    return fig


def _gpu_bars(ax, gpu: dict, mixes: list, labels: list, key: str,
              B: int) -> dict:
    """Each rule's bar per mix on card ``key`` (an x on the axis where it
    never reaches the target); returns its legend ``handles``, the
    ``lowest`` bar in hours and whether any bar was ``unfit``."""
    width = 0.8 / max(len(labels), 1)
    handles, lowest, unfit = [], float("inf"), False
    for j, label in enumerate(labels):
        colour, missed = rule_color(label), []
        for x, mix in enumerate(mixes):
            r = next((r for r in gpu[mix]["rows"] if r["B"] == B
                      and r["rule"] == label and key in r["cards"]), None)
            if r is None:
                continue
            c, pos = r["cards"][key], x - 0.4 + (j + 0.5) * width
            if not reached(c["seconds_to"]):
                missed.append(mix)
                ax.plot(pos, 0, "x", color=colour, ms=7, mew=2,
                        clip_on=False, transform=ax.get_xaxis_transform())
                continue
            lowest = min(lowest, c["seconds_to"] / 3600)
            unfit |= not c["fits"]
            ax.bar(pos, c["seconds_to"] / 3600, width, color=colour,
                   hatch="" if c["fits"] else "//", edgecolor="black"
                   if not c["fits"] else colour, lw=0.5)
        handles.append(Patch(color=colour, label=label + (
            f" (not reached: {', '.join(missed)})" if missed else "")))
    return {"handles": handles, "lowest": lowest, "unfit": unfit}


def _gpu_fastest_lines(ax, gpu: dict, mixes: list, key: str) -> dict:
    """The dotted line of each mix's fastest full-batch time on card
    ``key``; returns ``where`` ("mix: B = b" of each) and the ``lowest``
    in hours."""
    where, lowest = [], float("inf")
    for x, mix in enumerate(mixes):
        seconds, full_B = gpu[mix]["fastest_full"][key]
        if reached(seconds):
            lowest = min(lowest, seconds / 3600)
            ax.hlines(seconds / 3600, x - 0.45, x + 0.45, colors="k",
                      linestyles=":", lw=1.5)
            where.append(f"{mix}: B = {full_B}")
    return {"where": where, "lowest": lowest}


def _gpu_handles(bars: dict, fastest: list) -> list:
    """The rules' patches, then what the dotted line, the hatch and the x
    say (each only where the panel has one)."""
    handles = list(bars["handles"])
    if fastest:
        handles.append(Line2D([], [], color="k", ls=":", lw=1.5,
                              label="fastest full-batch GRPO ("
                              + "; ".join(fastest) + ")"))
    if bars["unfit"]:
        handles.append(Patch(facecolor="white", edgecolor="black",
                             hatch="//", label="generate would not fit "
                             "the card's memory"))
    if any(h.get_label().count("not reached") for h in handles):
        handles.append(Line2D([], [], color="grey", marker="x", ls="",
                              mew=2, label="x: target not reached"))
    return handles


def _hours_axis(ax, lowest: float) -> None:
    """A log y axis in hours ("0.5 h"), from a third of ``lowest``."""
    ax.set_yscale("log")
    if lowest < float("inf"):
        ax.set_ylim(bottom=lowest / 3)
    lo, hi = ax.get_ylim()
    ticks = [t for t in (0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1, 2, 5, 10,
                         20, 50, 100, 200, 500) if lo <= t <= hi]
    ax.yaxis.set_major_locator(FixedLocator(ticks))
    ax.yaxis.set_minor_locator(NullLocator())
    ax.set_yticklabels([f"{t:g} h" for t in ticks])


def legend_below(ax, handles=None, gap: float = 4, **kwargs):
    """``ax``'s legend centred below its x tick labels and x label, ``gap``
    points under them (measured once drawn: a fixed offset in axes
    fractions covers multi-line tick labels or not, depending on the
    panel's height).  The offset is in inches from the axes' bottom, so a
    later ``tight_layout`` or constrained layout keeps it clear."""
    fig = ax.figure
    renderer = (fig.canvas.get_renderer()
                if hasattr(fig.canvas, "get_renderer")
                else fig._get_renderer())
    below = ax.xaxis.get_tightbbox(renderer)
    depth = (ax.bbox.y0 - below.y0) / fig.dpi if below else 0
    shift = ScaledTranslation(0, -(max(depth, 0) + gap / 72),
                              fig.dpi_scale_trans)
    args = {"handles": handles} if handles is not None else {}
    return ax.legend(**args, loc="upper center", bbox_to_anchor=(0.5, 0),
                     bbox_transform=ax.transAxes + shift, **kwargs)


def plot_live_run(traces: dict, runs: dict, bonus: dict | None = None,
                  scores_of: str | None = None,
                  title: str = "DoPR's sampled scores of each step's "
                  "candidates, sorted",
                  score_label: str = "u of a posterior sample"):
    """A live run of posterior rules (notebook 04's ``04_live_run``): top,
    ``scores_of``'s (default: the first rule's) score of each step's
    candidates, sorted (row 0 is the pick); bottom, the volatility V of
    each rule's pick and its train reward (the mean of its group's 0/1
    rewards), both in [0, 1], and on a second y axis of its own scale the
    ``bonus`` of a rule's pick (dopr-v1's, which reaches ~1.75).

    ``traces`` maps a rule's label to its trace, one row a step with the
    ``step``, the ``candidates``, the ``picked`` prompt and each
    candidate's ``score`` and ``volatility``; ``runs`` maps a label to its
    :class:`~dopr_lite.runlog.RunResult`; ``bonus`` a label to its pick's
    bonus at each trace row."""
    n_steps = max(len(t) for t in traces.values())
    fig, (a, b) = plt.subplots(2, 1, figsize=(10, 6.4), sharex=True,
                               gridspec_kw={"height_ratios": [1.3, 1]},
                               layout="constrained")
    im = _score_map(a, traces[scores_of or next(iter(traces))], n_steps)
    a.set(ylabel="candidate rank\n(0 = picked)", title=title)
    fig.colorbar(im, ax=(a, b), shrink=0.55, anchor=(0, 1),
                 label=score_label)
    handles = _pick_lines(b, traces, runs)
    b.set(xlabel="step", xlim=(-0.5, n_steps - 0.5), ylim=(0, 1.05),
          ylabel="V of the pick,\ntrain reward (0-1)")
    b.grid(alpha=0.3)
    if bonus:
        handles += _bonus_lines(b.twinx(), traces, bonus)
    legend_below(b, handles, fontsize=8, ncol=3)
    return fig


def _score_map(ax, trace: list, n_steps: int):
    """Each step's candidate scores, sorted, as a column of a heat map."""
    grid = np.full((max(len(t["score"]) for t in trace), n_steps), np.nan)
    for t in trace:
        grid[:len(t["score"]), t["step"]] = sorted(t["score"], reverse=True)
    return ax.imshow(grid, aspect="auto", cmap="viridis",
                     interpolation="nearest", vmin=0, vmax=1)


def _pick_lines(ax, traces: dict, runs: dict) -> list:
    """Each rule's V of its pick (solid) and train reward (dotted), both
    in [0, 1]; returns their legend handles."""
    for name, trace in traces.items():
        ax.plot([t["step"] for t in trace],
                [t["volatility"][_pick_of(t)] for t in trace],
                color=rule_color(name), label=f"V of {name}'s pick")
        if name in runs:
            ax.plot([m["reward_mean"] for m in runs[name].metrics], ls=":",
                    lw=1, color=rule_color(name),
                    label=f"{name} train reward")
    return ax.get_legend_handles_labels()[0]


def _bonus_lines(twin, traces: dict, bonus: dict) -> list:
    """The bonus of each rule's pick (dashed) on ``twin``, a y axis of its
    own from 0; returns their legend handles."""
    for name, values in bonus.items():
        twin.plot([t["step"] for t in traces[name]], values, ls="--",
                  color=rule_color(name),
                  label=f"{name}'s bonus of its pick (right axis)")
    twin.set_ylim(bottom=0)
    twin.set_ylabel("bonus of the pick\n(" + ", ".join(bonus) + ")")
    return twin.get_legend_handles_labels()[0]


def _pick_of(row: dict) -> int:
    """Where a trace row's pick stands among its candidates."""
    return row["candidates"].index(row["picked"])
