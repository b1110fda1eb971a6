"""The pre-flight: its estimates, its report, its file, and its agreement
with what a training run then meets."""

import json
import math

import numpy as np
import pytest
import torch

from dopr_lite.bound import instances_to_find
from dopr_lite.cli import main
from dopr_lite.config import DoprConfig
from dopr_lite.data import load_prompts
from dopr_lite import preflight as pf
from dopr_lite.errors import ConfigError
from dopr_lite.evaluation import group_shares
from dopr_lite.loop import train
from dopr_lite.preflight import (PoolReport, all_equal_estimates, digest,
                                 format_report, pool_shares, preflight,
                                 read_counts, warm_start)
from dopr_lite.select import DoPR, PromptHistory, SelectContext


def _report(counts, k=8, G=8):
    return PoolReport(k=k, G=G, prompts=list(range(len(counts))),
                      counts=list(counts), digests=["x"] * len(counts))


def test_shares_are_unbiased_up_to_k_and_close_beyond():
    rng = np.random.default_rng(0)
    p = rng.beta(0.6, 0.9, 40_000)  # a U-shaped pool, like real ones
    k = 8
    counts = rng.binomial(k, p)
    for G in (2, 4, 8, 16):
        wrong, right = all_equal_estimates(counts, k, G)
        tol = 0.006 if G <= k else 0.03  # 16 > k: a posterior mean
        assert abs(right.mean() - (p ** G).mean()) < tol, G
        assert abs(wrong.mean() - ((1 - p) ** G).mean()) < tol, G
    # at G = k the estimate is the observed all-equal group
    wrong, right = all_equal_estimates([0, 3, 8], 8, 8)
    assert wrong.tolist() == [1, 0, 0] and right.tolist() == [0, 0, 1]


def test_intervals_cover_and_shrink_with_more_prompts():
    rng = np.random.default_rng(1)
    small = _report(rng.binomial(8, rng.uniform(0, 1, 64)))
    big = _report(rng.binomial(8, rng.uniform(0, 1, 1024)))
    for r in (small, big):
        s = r.shares()
        assert s["all_wrong"] + s["all_right"] + s["mixed"] == pytest.approx(1)
        for name in ("all_wrong", "all_right", "mixed"):
            lo, hi = s[f"{name}_95"]
            assert lo <= s[name] <= hi
    width = [r.shares()["mixed_95"][1] - r.shares()["mixed_95"][0]
             for r in (small, big)]
    assert width[1] < width[0] / 2
    # p uniform on [0, 1]: E[q(p, 8)] = 1 - 2/9
    assert big.shares()["mixed"] == pytest.approx(7 / 9, abs=0.03)


def test_bounds_and_advice_follow_the_pool():
    r = _report([0] * 30 + [4] * 10)  # 25% undecided, 75% hopeless
    b = r.bounds()
    # no 8-subset of a 4-of-8 prompt's samples is all-equal: mixed
    assert b["informative_share"] == pytest.approx(10 / 40)
    assert b["instances_to_find"] == instances_to_find(0.25, 0.05)
    assert b["rollouts_to_first_signal"] == 8 * b["instances_to_find"]
    assert b["undecided_share"] == 0.25
    advice = " ".join(r.recommendation())
    assert "beyond this model" in advice and "75%" in advice
    solved = " ".join(_report([8] * 39 + [4]).recommendation())
    assert "most prompts are solved" in solved
    easy = " ".join(_report([4] * 40).recommendation())
    assert "little to save" in easy
    text = r.table()
    assert "G: " in text and "extrapolated" in text
    assert json.loads(json.dumps(r.to_dict()))["histogram"][0] == 30


def test_the_numbers_are_computed_once_and_only_read_after(monkeypatch):
    r = _report([0] * 10 + [3] * 10 + [8] * 5, G=6)
    assert set(r.numbers["shares"]) == {2, 4, 6, 8, 16, 32}
    calls = []
    monkeypatch.setattr(pf, "pool_shares", lambda *a: calls.append(a))
    text = r.table()
    r.to_dict(), r.recommendation(), r.shares(), r.shares(16), r.bounds()
    assert not calls and text == format_report(r)
    r.shares(64)  # a G the report does not hold is computed on demand
    assert calls == [(r.counts, 8, 64)]


def test_at_g_equal_k_the_shares_are_the_observed_ones():
    counts = [0, 0, 3, 8, 5, 8, 1]
    point = {n: v for n, v in pool_shares(counts, 8, 8).items()
             if n in ("all_wrong", "all_right", "mixed")}
    assert point == pytest.approx(group_shares(counts, 8))


def test_read_counts_checks_the_file_against_the_pool(tmp_path):
    cfg = DoprConfig(n_train=16, n_test=4)
    pool = load_prompts(cfg).train
    r = PoolReport(k=4, G=8, prompts=[0, 3], counts=[1, 4],
                   digests=[digest(pool[0]["prompt"]),
                            digest(pool[3]["prompt"])], rollouts=8)
    path = r.save(tmp_path / "pf.json")
    warm = read_counts(path, pool)
    assert warm.counts == {0: (1, 4), 3: (4, 4)} and warm.rollouts == 8
    other = load_prompts(DoprConfig(n_train=16, n_test=4, data_seed=1)).train
    with pytest.raises(ConfigError, match="prompt 0 of this run's pool is "
                       "not the prompt the file measured; rerun"):
        read_counts(path, other)
    with pytest.raises(ConfigError, match="nope.json is not a file"):
        read_counts(tmp_path / "nope.json", pool)
    (tmp_path / "bad.json").write_text('{"k": 4}')
    with pytest.raises(ConfigError, match="bad.json is not a pre-flight"):
        read_counts(tmp_path / "bad.json", pool)
    raw = json.loads(path.read_text())
    raw["counts"] = [1, 5]
    (tmp_path / "five.json").write_text(json.dumps(raw))
    with pytest.raises(ConfigError, match=r"count 5 is not in 0\.\.4"):
        read_counts(tmp_path / "five.json", pool)
    cfg = DoprConfig(n_train=16, n_test=4, selector="dopr", max_rollouts=8,
                     preflight=str(path))
    assert warm_start(DoprConfig(n_train=16, n_test=4), pool) is None
    with pytest.raises(ConfigError, match="already exceed max_rollouts"):
        warm_start(cfg, pool)  # its 8 rollouts would leave none to train
    cfg.max_rollouts = 16
    assert warm_start(cfg, pool).counts == warm.counts


def test_only_rules_with_a_posterior_start_from_a_preflight():
    with pytest.raises(ConfigError, match="'preflight'.*use thompson or "
                       "dopr"):
        DoprConfig(selector="random", preflight="pf.json")
    DoprConfig(selector="thompson", preflight="pf.json")
    sel = DoPR(probe=1, probe_top=0)
    sel.warm_start({0: (8, 8), 1: (4, 8)})  # 0 solved, 1 undecided
    probed = []

    def probe(indices, n):
        probed.extend(indices)
        return torch.zeros(len(indices), n)

    ctx = SelectContext(step=0, history=PromptHistory(), num_generations=8,
                        seed=0, probe_rewards=probe)
    assert sel.probes_ahead([0, 1, 2], ctx) == ([2], 1)  # the measured
    assert sel.select([0, 1, 2], ctx) == [1]  # prompts need no probe
    assert not probed


@pytest.fixture(scope="module")
def pool_report(embedded_policy):
    cfg = DoprConfig()
    return preflight(cfg, policy=embedded_policy, progress=False)


def test_preflight_predicts_the_all_equal_groups_a_run_meets(
        pool_report, embedded_policy, tmp_path):
    """The first steps of full-batch GRPO meet the all-equal share the
    pre-flight predicted, within the two estimates' uncertainty."""
    r = pool_report
    assert r.rollouts == 256 * 8 and len(r.counts) == 256
    assert set(r.groups) == {"add", "mul", "max", "word"}
    steps = 8
    run = train(DoprConfig(max_steps=steps, eval_every=steps, eval_k=0,
                           n_test=8, save_every=0, out_dir=str(tmp_path)),
                resume=False, progress=False, log=lambda *a: None)
    seen = np.mean([m["frac_reward_zero_std"] for m in run.metrics])
    s = r.shares()
    predicted = 1 - s["mixed"]
    se_pred = (s["mixed_95"][1] - s["mixed_95"][0]) / 3.92
    se_seen = math.sqrt(predicted * (1 - predicted) / (steps * 8))
    assert abs(seen - predicted) < 2.58 * math.hypot(se_pred, se_seen), (
        seen, predicted)
    # and a wrong G would be caught: at G = 2 the prediction is far off
    assert abs(seen - (1 - r.shares(2)["mixed"])) > 2.58 * math.hypot(
        se_pred, se_seen)


def test_a_run_started_from_a_preflight_pays_for_it(pool_report, tmp_path):
    path = pool_report.save(tmp_path / "pf.json")
    cfg = DoprConfig(selector="dopr", preflight=str(path),
                     max_rollouts=pool_report.rollouts + 40, eval_every=100,
                     eval_k=0, n_test=8, save_every=0,
                     out_dir=str(tmp_path / "run"))
    r = train(cfg, resume=False, progress=False, log=lambda *a: None)
    assert r.evals[0]["rollouts"] == pool_report.rollouts  # cost from 0
    assert r.counter.sequences["probe"] >= pool_report.rollouts
    assert r.counter.cost >= cfg.max_rollouts
    too_small = DoprConfig(**{**cfg.to_dict(), "max_rollouts": 512,
                              "out_dir": str(tmp_path / "none")})
    with pytest.raises(ConfigError, match="already exceed max_rollouts"):
        train(too_small, resume=False, progress=False, log=lambda *a: None)
    assert not (tmp_path / "none").exists()


def test_the_command_prints_writes_and_fails_cleanly(random_tiny_dir,
                                                     tmp_path, capsys):
    """On a model built from a config (the real-model path), with a local
    file's bad row reported as elsewhere, and nothing written on failure."""
    out = tmp_path / "pf"
    args = ["preflight", "--set", f"model={random_tiny_dir}", "--set",
            "n_train=12", "--prompts", "10", "--k", "2", "--no-progress",
            "--out", str(out)]
    assert main(args) == 0
    text = capsys.readouterr().out
    assert "10 prompts x 2 rollouts = 20 rollouts" in text
    assert "recommendation:" in text and "preflight=" in text
    saved = json.loads((out / "preflight.json").read_text())
    assert saved["k"] == 2 and len(saved["counts"]) == 10
    assert (out / "preflight.png").is_file()
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"question": "1+1?", "answer": "2"}\nnot json\n' * 5)
    other = tmp_path / "other"
    args[-1] = str(other)
    assert main([*args, "--set", f"dataset={bad}"]) == 2
    assert "line 2" in capsys.readouterr().err
    assert not other.exists()
