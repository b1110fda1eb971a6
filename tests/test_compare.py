import json

import numpy as np
import pytest

from dopr_lite.cli import main
from dopr_lite.config import DoprConfig
from dopr_lite.compare import (comparison, default_rules, format_table,
                               paired_difference, parse_rules, read_benchmark,
                               rollouts_to_reach, stability)
from dopr_lite.runlog import curves
from dopr_lite.curves import NOT_REACHED
from dopr_lite.rollout import RolloutCounter
from dopr_lite.runlog import RunResult


def _run(points, zero_std=0.5, probe=0):
    """A fake run: ``points`` are (rollouts, accuracy) evaluations."""
    counter = RolloutCounter()
    counter.add("train", points[-1][0] - probe, 0)
    counter.add("probe", probe, 0)
    evals = [{"step": i, "rollouts": x, "updates": i, "train_seconds": i,
              "accuracy": a} for i, (x, a) in enumerate(points)]
    metrics = [{"frac_reward_zero_std": zero_std, "seconds": 1.0}] * (
        len(points) - 1)
    return RunResult(out_dir=None, metrics=metrics, evals=evals,
                     counter=counter)


def test_curves_interpolate_and_hold_the_last_value():
    grid, acc = curves([_run([(0, 0.2), (100, 0.6)]),
                        _run([(0, 0.2), (50, 0.4)])], grid=np.array(
                            [0, 50, 100]))
    assert acc.tolist() == [[0.2, 0.4, 0.6], [0.2, 0.4, 0.4]]


def test_rollouts_to_reach_uses_the_seed_mean():
    runs = [_run([(0, 0.0), (100, 1.0)]), _run([(0, 0.0), (100, 0.5)])]
    assert rollouts_to_reach(runs, 0.375) == pytest.approx(50, abs=0.5)
    assert rollouts_to_reach(runs, 0.9) == NOT_REACHED


def test_comparison_reports_saving_against_the_reference():
    results = {
        "full": [_run([(0, 0.4), (400, 0.9), (800, 0.9)])],
        "one": [_run([(0, 0.4), (40, 0.9)], zero_std=0.1, probe=8)],
        "flat": [_run([(0, 0.4), (40, 0.5)])],
    }
    rows = {r["rule"]: r for r in comparison(results)}
    full, one, flat = rows["full"], rows["one"], rows["flat"]
    assert full["targets"][0.95] == pytest.approx(0.875)
    assert full["saving"][0.95] == pytest.approx(1.0)
    # full reaches 0.875 at 380 rollouts, "one" at 38: ten times fewer
    assert one["rollouts_to"][0.95] == pytest.approx(38, abs=1)
    assert one["saving"][0.95] == pytest.approx(10, rel=0.05)
    assert one["probe_rollouts"] == 8 and one["zero_std_groups"] == 0.1
    assert flat["rollouts_to"][0.95] == NOT_REACHED
    assert flat["saving"][0.95] == 0.0  # the reference got there; it did not
    table = format_table(list(rows.values()))
    assert "not reached" in table and "10.0x" in table


def test_stability_measures_the_fall_from_the_best_evaluation():
    drifts = _run([(0, 0.4), (10, 0.9), (20, 0.6), (30, 0.8)])
    assert stability(drifts) == pytest.approx(
        {"end_below_peak": 0.1, "dip": 0.3})
    rising = _run([(0, 0.4), (10, 0.5), (20, 0.7)])
    assert stability(rising) == {"end_below_peak": 0.0, "dip": 0.0}
    rows = {r["rule"]: r for r in comparison(
        {"full": [rising], "one": [rising, drifts]})}
    assert rows["one"]["worst_dip"] == pytest.approx(0.3)
    assert rows["one"]["worst_end_below_peak"] == pytest.approx(0.1)
    assert "30.0 pts" in format_table(list(rows.values()))


def test_default_rules_are_the_seven_selectors():
    labels = [r.label for r in default_rules()]
    assert labels == ["full", "dynamic", "fixed", "random", "thompson",
                      "dopr-v1", "dopr"]


def test_rules_are_labels_or_variants_with_selector_arguments():
    rules = parse_rules(["full", "p1=dopr-v1:probe=1,c=0.25,entropy_mod=false",
                         "u=dopr:score=ucb,learning_rate=1e-3",
                         "wide=random"], 64, 16)
    assert [r.label for r in rules] == ["full", "p1", "u", "wide"]
    assert rules[0].max_rollouts == 64
    assert (rules[1].selector, rules[1].max_rollouts, rules[1].args) == (
        "dopr-v1", 16, {"probe": 1, "c": 0.25, "entropy_mod": False})
    assert (rules[2].args, rules[2].settings) == ({"score": "ucb"},
                                                  {"learning_rate": 1e-3})
    for bad, needle in [("nope", "neither"), ("x=nope:c=1", "neither"),
                        ("x=dopr:c", "not key=value"),
                        ("x=dopr:c=0.25", "'c'.*dopr-v1"),  # v1's, not dopr's
                        ("x=dopr:score=max", "score must be"),
                        ("dopr=dopr:probe=2", "repeat")]:
        with pytest.raises(ValueError, match=needle):
            parse_rules(["dopr", bad] if needle == "repeat" else [bad])


def test_compare_command_writes_json_table_and_figure(tmp_path, capsys,
                                                       monkeypatch):
    figs = tmp_path / "figs"
    monkeypatch.setattr("dopr_lite.plots.FIGURES", figs)
    rc = main(["compare", "--seeds", "0", "--full-rollouts", "64",
               "--one-rollouts", "16", "--n-test", "16", "--out",
               str(tmp_path / "out")])
    assert rc == 0
    record = json.loads((tmp_path / "out" / "compare.json").read_text())
    assert [r["rule"] for r in record["table"]] == [
        "full", "dynamic", "fixed", "random", "thompson", "dopr-v1", "dopr"]
    # dopr: 2 steps of 8 trained + 2 probe rollouts
    assert record["curves"]["dopr"][0][-1]["rollouts"] == 20
    assert (tmp_path / "out" / "bench_compare.png").stat().st_size > 1000
    assert not figs.exists()  # the committed figure only when asked
    assert "rollouts to 95%" in capsys.readouterr().out
    assert main(["compare", "--rules", "nope"]) == 2


def test_rule_variants_set_config_fields_for_that_rule_alone():
    rules = {r.label: r for r in parse_rules(
        ["full", "slow=dopr:learning_rate=0.001,gamma=0.5"])}
    assert rules["slow"].settings == {"learning_rate": 0.001}
    assert rules["slow"].args == {"gamma": 0.5}
    cfg = rules["slow"].config(DoprConfig())
    assert cfg.learning_rate == 0.001 and cfg.selector_args == {"gamma": 0.5}
    assert rules["full"].config(DoprConfig()).learning_rate == 2e-3


def test_compare_sweeps_the_candidate_batch(tmp_path, capsys):
    rc = main(["compare", "--seeds", "0", "--batch", "8", "16", "--rules",
               "full", "random", "--full-rollouts", "128", "--one-rollouts",
               "16", "--n-test", "16", "--set", "learning_rate=0.001",
               "--out", str(tmp_path)])
    assert rc == 0
    record = json.loads((tmp_path / "compare.json").read_text())
    assert record["batches"] == [8, 16]
    assert record["config"]["learning_rate"] == 0.001
    b16 = [r["rule"] for r in record["tables"]["16"]]
    assert b16 == ["full", "random", "full@8"]  # GRPO on the smaller batch
    full16 = record["sweep_curves"]["16"]["full"][0]
    assert full16[1]["rollouts"] == 16 * 8  # one step of 16 prompts
    for name in ("bench_compare_B8", "bench_compare_B16",
                 "bench_compare_saving"):
        assert (tmp_path / f"{name}.png").stat().st_size > 1000
    assert "16 candidates a step" in capsys.readouterr().out
    back = read_benchmark(tmp_path / "compare.json")["tables"]
    assert sorted(back) == [8, 16]
    assert back[16][0]["saving"][0.95] == record["tables"]["16"][0][
        "saving"]["0.95"]


def test_full_steps_sets_the_full_budget_at_each_batch_and_resumes(tmp_path):
    from dopr_lite.compare import benchmark

    kw = dict(seeds=(0,), batches=[4, 8], rules=["full", "random"],
              full_steps=1, one_rollouts=8, n_test=8, out_dir=tmp_path,
              settings={"num_generations": 4}, resume=True,
              log=lambda *a: None)
    out = benchmark(**kw)
    assert [r.counter.cost for r in out[8][0]["full"]] == [8 * 4]
    first = json.loads((tmp_path / "compare.json").read_text())
    assert first["full_rollouts"] == {"4": 16, "8": 32}
    assert first["run_seconds"] > 0
    saved = sorted(tmp_path.glob("B*/*-s0/ckpt-*/*.safetensors"))
    assert len(saved) >= 4
    written = [f.stat().st_mtime_ns for f in saved]
    benchmark(**kw)  # every run finished: resumed, nothing trained again
    assert [f.stat().st_mtime_ns for f in saved] == written
    again = json.loads((tmp_path / "compare.json").read_text())
    assert again["run_seconds"] == pytest.approx(first["run_seconds"],
                                                 rel=0.5)


def _no_times(rows):
    return [{k: v for k, v in r.items() if "seconds" not in k
             and k != "peak_memory_gb"} for r in rows]


@pytest.mark.slow
def test_runs_in_parallel_processes_match_serial_runs(tmp_path):
    """``jobs=2`` trains two runs at once, each in a process of its own;
    every step and evaluation equals the serial run's, in task order."""
    import torch

    from dataclasses import replace

    from dopr_lite.compare import train_all

    base = DoprConfig(n_test=16, eval_k=0, save_every=0, max_rollouts=32,
                      eval_every=2, num_generations=4, prompts_per_step=4)
    specs = [("thompson", 0), ("random", 1), ("full", 0)]
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # as each worker runs
    try:
        out = {jobs: train_all([(f"{rule} {seed}", replace(
            base, selector=rule, seed=seed,
            out_dir=str(tmp_path / f"j{jobs}" / f"{rule}-{seed}")))
            for rule, seed in specs], jobs=jobs, log=lambda *a: None)
            for jobs in (1, 2)}
    finally:
        torch.set_num_threads(threads)
    for serial, parallel in zip(out[1], out[2], strict=True):
        assert _no_times(parallel.evals) == _no_times(serial.evals)
        assert _no_times(parallel.metrics) == _no_times(serial.metrics)
        assert parallel.counter == serial.counter
    assert [r.out_dir.name for r in out[2]] == [
        f"{rule}-{seed}" for rule, seed in specs]


def test_two_runs_for_one_folder_are_refused_before_any_run(tmp_path):
    from dopr_lite.compare import train_all

    cfg = DoprConfig(out_dir=str(tmp_path / "run"), max_rollouts=64)
    with pytest.raises(ValueError, match="one folder"):
        train_all([("a", cfg), ("b", cfg)], jobs=2)


def test_paired_difference_says_ahead_only_beyond_two_standard_errors():
    def runs(finals):
        return [_run([(0, 0.2), (10, f)]) for f in finals]
    base = runs([0.5, 0.6, 0.7])
    clear = paired_difference(runs([0.61, 0.72, 0.80]), base)
    assert clear["pairs"] == 3 and clear["verdict"] == "ahead"
    assert clear["mean"] == pytest.approx(0.11)
    # differences 0.11, 0.12, 0.10: sd 0.01 (ddof 1), se 0.01 / sqrt(3)
    assert clear["se"] == pytest.approx(0.01 / 3 ** 0.5, rel=1e-6)
    assert paired_difference(base, runs([0.61, 0.72, 0.80]))["verdict"] \
        == "behind"
    noisy = paired_difference(runs([0.6, 0.5, 0.75]), base)
    assert noisy["verdict"] == "no clear difference"  # +0.1, -0.1, +0.05
    one = paired_difference(runs([0.9]), runs([0.5]))
    assert one["se"] != one["se"] and one["verdict"] == "no clear difference"
    with pytest.raises(ValueError, match="same seeds"):
        paired_difference(base, base[:2])
