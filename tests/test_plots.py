import random
from pathlib import Path

import pytest
from matplotlib.colors import to_hex

from dopr_lite import plots
from dopr_lite.plots import (plot_gpu_time, plot_live_run, plot_runs,
                             rule_color, save_figure)
from dopr_lite.runlog import RunResult

# every label the benchmark figures draw (bench/results/dopr_v2.json, a
# batch sweep's full@B, notebook 04's ablations)
BENCH_LABELS = ["full", "dynamic", "fixed", "random", "thompson", "dopr-v1",
                "dopr", "k2", "k4", "k8", "full@8", "full@32", "random one",
                "DoPR (default)", "Bayes-UCB (score=ucb)",
                "Bayes-UCB, no entropy", "no probes (probe=0)"]


def test_save_figure_writes_png(tmp_path):
    r = RunResult(out_dir=tmp_path)
    r.evals = [{"step": 0, "rollouts": 0, "accuracy": 0.2,
                "sampled_accuracy": 0.3},
               {"step": 1, "rollouts": 64, "accuracy": 0.4,
                "sampled_accuracy": 0.5}]
    r.metrics = [{"rollouts": 64, "reward_mean": 0.5,
                  "frac_reward_zero_std": 0.25}]
    fig = plot_runs({"grpo": r}, title="t")
    path = save_figure(fig, "00_test", folder=tmp_path)
    assert path.name == "00_test.png" and path.stat().st_size > 1000


@pytest.fixture
def fresh_colors(monkeypatch):
    """rule_color as in a new process (no label given a colour yet)."""
    monkeypatch.setattr(plots, "_GIVEN", {})


@pytest.mark.parametrize("order", [1, -1])
def test_distinct_labels_get_distinct_colours(fresh_colors, order):
    colours = [to_hex(rule_color(label)) for label in BENCH_LABELS[::order]]
    assert len(set(colours)) == len(BENCH_LABELS)
    # the rules keep their colours, asked in any order
    assert rule_color("full") == "tab:blue" and rule_color("dopr") == "tab:red"
    # a label keeps its colour
    assert [to_hex(rule_color(label)) for label in BENCH_LABELS[::order]] \
        == colours


def test_a_variant_takes_a_shade_of_its_rules_colour(fresh_colors):
    """full@8 is not full, but looks related: tab20's light blue."""
    assert to_hex(rule_color("full@8")) == "#aec7e8"
    assert to_hex(rule_color("random one")) == "#98df8a"
    assert to_hex(rule_color("full@32")) not in {"#aec7e8", "#1f77b4"}


def test_more_labels_than_colours_still_get_one(fresh_colors):
    many = [f"variant {i}" for i in range(40)]
    colours = [to_hex(rule_color(label)) for label in many]
    assert len(set(colours)) == len(plots._SPARE)  # every spare, then again


def _gpu(labels=("full", "random", "thompson", "dopr", "k4", "k8")):
    """A gpu_tables-shaped dict: two mixes, two cards; dopr never reaches
    the target, full's generate does not fit the small card."""
    def row(rule, i, mix):
        seconds = float("inf") if rule == "dopr" else 600.0 * (i + 1)
        return {"B": 128, "rule": rule, "cards": {
            key: {"seconds_to": seconds, "seconds_per_step": 1.0,
                  "fits": not (rule == "full" and key == "rtx3060")}
            for key in ("rtx3060", "h100-sxm")}}

    return {mix: {"target": 0.5,
                  "rows": [row(rule, i, mix) for i, rule in
                           enumerate(labels)],
                  "fastest_full": {"rtx3060": (1800.0, 8),
                                   "h100-sxm": (900.0, 32)}}
            for mix in ("default", "hard")}


def _overlaps(a, b) -> bool:
    return a.x0 < b.x1 and b.x0 < a.x1 and a.y0 < b.y1 and b.y0 < a.y1


def _legends_clear_the_x_axis(fig, axes):
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    for ax in axes:
        box = ax.get_legend().get_window_extent(renderer)
        below = [t for t in ax.get_xticklabels() if t.get_text()]
        below += [ax.xaxis.label] if ax.get_xlabel() else []
        assert below
        for text in below:
            assert not _overlaps(box, text.get_window_extent(renderer)), \
                (ax.get_title(), text.get_text())
        assert box.y1 < ax.bbox.y0  # below the plot itself too


def test_gpu_time_legends_sit_below_the_tick_labels():
    fig = plot_gpu_time(_gpu(), B=128)
    axes = [ax for ax in fig.axes if ax.get_legend()]
    assert len(axes) == 2
    assert all("\n" in t.get_text() for t in axes[0].get_xticklabels())
    _legends_clear_the_x_axis(fig, axes)
    a, b = (ax.get_legend().get_window_extent() for ax in axes)
    assert not _overlaps(a, b)


def test_gpu_time_draws_each_rule_in_its_own_colour(fresh_colors):
    fig = plot_gpu_time(_gpu(), B=128)
    for ax in fig.axes:
        patches = [h for h in ax.get_legend().legend_handles
                   if h.get_label().split()[0] in
                   {"full", "random", "thompson", "dopr", "k4", "k8"}]
        assert len(patches) == 6
        assert len({to_hex(p.get_facecolor()) for p in patches}) == 6
        ticks = [t.get_text() for t in ax.get_yticklabels()]
        assert ticks and all(t.endswith(" h") for t in ticks)
        assert ax.get_ylabel() == "estimated hours to the target"


def _live(steps=30, width=8):
    rng = random.Random(0)
    traces, runs = {}, {}
    for name, n in (("dopr", steps), ("dopr-v1", steps - 2)):
        traces[name] = []
        for step in range(n):
            cands = rng.sample(range(100), width)
            traces[name].append({
                "step": step, "candidates": cands,
                "picked": cands[rng.randrange(width)],
                "score": [rng.random() for _ in cands],
                "volatility": [rng.random() for _ in cands]})
        runs[name] = RunResult(out_dir=Path("unused"))
        runs[name].metrics = [{"reward_mean": rng.choice([0.0, 0.5, 1.0])}
                              for _ in range(n)]
    bonus = {"dopr-v1": [1.75 * (1 - i / steps) for i in range(steps - 2)]}
    return traces, runs, bonus


def test_every_axis_of_the_figures_has_a_ylabel():
    figs = [plot_gpu_time(_gpu(), B=128), plot_live_run(*_live())]
    for fig in figs:
        for ax in fig.axes:
            assert ax.get_ylabel().strip(), ax


def test_live_run_puts_the_bonus_on_its_own_axis():
    traces, runs, bonus = _live()
    fig = plot_live_run(traces, runs, bonus)
    heat, bottom, *rest = fig.axes
    twin = next(ax for ax in rest if ax.get_shared_x_axes().joined(
        ax, bottom))
    assert bottom.get_ylim()[1] <= 1.05  # V and rewards: [0, 1]
    assert max(max(line.get_ydata()) for line in twin.get_lines()) == 1.75
    assert "bonus" in twin.get_ylabel() and "V" in bottom.get_ylabel()
    assert len(bottom.get_lines()) == 4  # V and train reward of each rule
    labels = [t.get_text() for t in bottom.get_legend().get_texts()]
    assert any("bonus" in label for label in labels)
    _legends_clear_the_x_axis(fig, [bottom])
    # the pick's row of the heat map is its sorted score's top
    grid = heat.get_images()[0].get_array()
    first = traces["dopr"][0]
    assert grid[0, 0] == pytest.approx(max(first["score"]))


def test_live_run_without_a_bonus_has_no_second_axis():
    traces, runs, _ = _live()
    fig = plot_live_run(traces, runs)
    assert [ax.get_label() for ax in fig.axes].count("<colorbar>") == 1
    assert len(fig.axes) == 3  # scores, V and rewards, the colour bar
