"""The benchmarks' CPU modes run (their GPU numbers need a GPU)."""

import importlib.util
import json
import sys
from pathlib import Path

import pytest
import torch

BENCH = Path(__file__).resolve().parent.parent / "bench"


def _load(name):
    spec = importlib.util.spec_from_file_location(name, BENCH / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


def test_archs_match_the_published_parameter_counts():
    from dopr_lite import archs

    # Qwen2.5-0.5B: 0.49B, Qwen2.5-1.5B: 1.54B (model cards, tied embeddings)
    assert abs(archs.num_parameters("qwen2.5-0.5b") / 1e9 - 0.494) < 0.005
    assert abs(archs.num_parameters("qwen2.5-1.5b") / 1e9 - 1.544) < 0.005


def test_weight_estimate_counts_the_layers_bitsandbytes_quantises():
    """4-bit: every nn.Linear weight of the decoder at NF4's bits (the
    tied lm_head is the embedding, kept in bf16); bf16: 2 bytes each."""
    from transformers import AutoModelForCausalLM

    from dopr_lite import archs

    model = AutoModelForCausalLM.from_config(archs.config("small"))
    linear = sum(m.weight.numel() for name, m in model.named_modules()
                 if isinstance(m, torch.nn.Linear) and name != "lm_head")
    total = archs.num_parameters("small")
    assert archs.weight_gb("small", False) == pytest.approx(2 * total / 1e9)
    assert archs.weight_gb("small", True) == pytest.approx(
        (linear * archs.NF4_BITS / 8 + 2 * (total - linear)) / 1e9)


@pytest.mark.parametrize("four_bit", [True, False], ids=["4bit", "bf16"])
def test_gpu_memory_bench_runs_a_small_config_on_cpu(tmp_path, four_bit):
    from dopr_lite import archs

    bench = _load("gpu_memory")
    out = tmp_path / "gpu_memory.json"
    args = ["--archs", "small", "--G", "4", "--prompts", "2",
            "--new-tokens", "6", "--lora-r", "4", "--out", str(out)]
    assert bench.main(args + ([] if four_bit else ["--no-4bit"])) == 0
    result = json.loads(out.read_text())
    dopr, full = result["results"]
    assert (dopr["rule"], full["rule"]) == ("dopr", "full")
    assert (dopr["rollouts"], full["rollouts"]) == (4, 8)
    assert dopr["new_tokens"] == 4 * 6 and full["new_tokens"] == 8 * 6
    assert dopr["update_skipped"] == full["update_skipped"] == ""
    assert dopr["params_b"] == round(archs.num_parameters("small") / 1e9, 3)
    assert "| small" in bench.table(result["results"])


def test_step_time_runs_each_side_and_counts_its_generate_calls():
    result = _load("step_time").measure(batch=8, steps=3, warmup=1)
    assert result["random"]["ratio_to_random"] == 1.0
    assert result["dopr"]["generate_calls_per_step"] == 1  # probes ride along
    assert result["dopr-own-call"]["generate_calls_per_step"] == 2
    assert result["dopr"]["rollouts_per_step"] == 8 + 2  # group + 2 probes
    assert result["dopr-no-probes"]["rollouts_per_step"] == 8
    assert all(r["tokens_per_step"] > 0 for r in result.values())


def _design_run(folder, accs, every: int):
    """A run folder as dopr-lite compare leaves it: its eval curve."""
    folder.mkdir()
    folder.joinpath("eval.jsonl").write_text("\n".join(json.dumps(
        {"rollouts": every * i, "accuracy": a}) for i, a in enumerate(accs)))


def test_design_table_summarises_finished_runs_only(tmp_path):
    _design_run(tmp_path / "dopr-s10", [0.3, 0.7, 0.5, 0.6, 0.6], 128)
    _design_run(tmp_path / "dopr-s11", [0.3, 0.4, 0.5, 0.6, 0.8], 128)
    _design_run(tmp_path / "dopr-s12", [0.3, 0.9], 128)  # 128 of 512
    out = tmp_path / "design.json"
    assert _load("design_table").main([str(tmp_path), "--out", str(out)]) == 0
    row = json.loads(out.read_text())["rows"]["dopr"]
    assert row["seeds"] == [10, 11]
    assert row["final"] == pytest.approx(0.7)
    assert row["worst_dip"] == pytest.approx(0.2)


def test_design_table_pairs_variants_seed_by_seed(tmp_path):
    for seed, (ref, var) in enumerate([(0.8, 0.7), (0.6, 0.6), (0.7, 0.5)]):
        _design_run(tmp_path / f"dopr-s{10 + seed}", [0.3, ref], 512)
        _design_run(tmp_path / f"no-V-s{10 + seed}", [0.3, var], 512)
    _design_run(tmp_path / "no-V-s13", [0.3, 0.9], 512)  # no dopr run there
    out = tmp_path / "design.json"
    assert _load("design_table").main(
        [str(tmp_path), "--against", "dopr", "--out", str(out)]) == 0
    rows = json.loads(out.read_text())["rows"]
    d = rows["no-V"]["against"]
    assert d["seeds"] == [10, 11, 12]
    assert d["final"] == pytest.approx(-0.1)  # -0.1, 0, -0.2
    assert d["final_se"] == pytest.approx(0.1 / 3 ** 0.5)
    assert rows["dopr"]["against"] is None
    assert _load("design_table").main([str(tmp_path), "--against",
                                       "nothing"]) == 1


def test_profile_run_charges_every_second_to_one_phase(tmp_path):
    from dopr_lite import loop
    from dopr_lite.config import DoprConfig

    bench = _load("profile_run")
    before = (loop.generate_rollouts, loop.update, loop.Run.start)
    cfg = DoprConfig(selector="thompson", prompts_per_step=8,
                     max_rollouts=24, eval_every=2, eval_k=0, n_test=16,
                     save_every=0, out_dir=str(tmp_path))
    rec = bench.profile(cfg)
    assert (loop.generate_rollouts, loop.update, loop.Run.start) == before
    phases = rec["phases"]
    assert sum(phases.values()) == pytest.approx(rec["seconds"], rel=1e-6)
    for part in ("startup", "generate/decode", "generate/prefill", "update",
                 "update/forward", "evaluation/generate/decode", "reward"):
        assert phases[part] > 0, part
    assert rec["calls"]["evaluation"] == rec["evaluations"] == 3  # 0, 2, 3
    assert rec["floor"]["tokens"]["eval"] > rec["floor"]["tokens"]["train"]
    assert 0 < rec["floor"]["total_seconds"] < rec["seconds"]
    assert "| **total** |" in bench.table(rec)


def test_factorial_tunes_grows_the_grid_at_its_edge_and_resumes(
        tmp_path, monkeypatch):
    """The factorial's tune stage on two tiny configurations: every rate of
    the grid on every design seed, a pick made by the criterion, the grid
    grown where the pick sits at its edge, and a rerun that trains nothing
    (every run read back from its folder)."""
    fx = _load("factorial")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(fx, "RESULTS", tmp_path / "results")
    monkeypatch.setattr(fx, "N_TEST", 12)
    monkeypatch.setattr(fx, "EVAL_ROLLOUTS", 16)
    monkeypatch.setattr(fx, "DESIGN_SEEDS", (0,))
    monkeypatch.setattr(fx, "GRID", (1e-3, 2e-3))
    monkeypatch.setattr(fx, "GRID_LIMITS", (1e-3, 4e-3))
    monkeypatch.setattr(fx, "CONFIGS", {c.name: c for c in (
        fx.Config("random-k1", "q1", "random", batch=8, budget=16),
        fx.Config("random-k2", "q1", "random", {"k": 2}, batch=8, picks=2,
                  budget=32))})
    picks = fx.tune(1, ["tune"])
    body = json.loads((tmp_path / "results" / "tune.json").read_text())
    rates = {(r["config"], r["rate"]) for r in body["runs"]}
    for name, rate in picks.items():
        scores = {float(r): v for r, v in body["scores"][name].items()}
        assert rate == max(scores, key=scores.get)
        assert rate not in (min(scores), max(scores)) or rate in (1e-3, 4e-3)
        assert {(name, r) for r in scores} <= rates
    assert all(r["evals"][-1]["rollouts"] >= 16 for r in body["runs"])
    assert body["protocol"]["grid"] == [1e-3, 2e-3]
    assert body["command"] == "python bench/factorial.py tune"
    trained = []
    monkeypatch.setattr(fx, "train_all", lambda tasks, **kw: trained.extend(
        tasks) or [])
    assert fx.tune(1, ["tune"]) == picks and trained == []


def test_factorial_report_finds_what_synthetic_curves_hold(monkeypatch):
    """The report on curves whose answers are known: a rule that climbs
    faster than random-k on every seed is ahead, with a saving whose
    interval lies above 1; GRPO's best tail is the ceiling."""
    fx, fr = _load("factorial"), _load("factorial_report")
    monkeypatch.setattr(fx, "REPORT_SEEDS", tuple(range(10)))

    def curve(speed, top, seed):
        xs = range(0, 1025, 64) if speed else range(0, 2049, 128)
        return [{"rollouts": x, "step": i, "updates": i,
                 "accuracy": 0.3 + (top - 0.3) * min(1.0, x / (
                     speed or 900)) + 0.002 * ((seed * 7 + i) % 5 if i else 0)}
                for i, x in enumerate(xs)]

    runs = {}
    for s in (*fx.DESIGN_SEEDS, *range(10)):
        for name, speed, top in (("random-k1", 700, 0.76),
                                 ("thompson-k1", 350 + 10 * (s % 3), 0.78)):
            runs[("default", name, 1e-3, s)] = curve(speed, top, s)
        runs[("default", "grpo-b8", 2e-3, s)] = curve(0, 0.8, s)
    picks = {"picks": {"random-k1": 1e-3, "thompson-k1": 1e-3,
                       "grpo-b8": 2e-3}, "shared": {}}
    rep = fr.analyse(runs, picks)
    pool = rep["pools"]["default"]
    assert pool["base"] == 0.3 and pool["ceiling_by"] == "grpo-b8"
    assert 0.8 <= pool["ceiling"] <= 0.81
    vs = pool["vs_random"]["thompson-k1@tuned"]
    assert vs["ahead"] and vs["area_diff"]["value"] > 0
    for share in fr.SHARES:
        sv = vs["saving"][share]
        assert sv["clear"] and sv["low"] > 1.0, (share, sv)
    c = pool["cells"]["random-k1@tuned"]["crossings"][0.95]
    assert c["reached"] == 0  # 0.76 < 95% of the way to ~0.8
    assert rep["q3"]["best_selection"] == "thompson-k1"
    assert "thompson-k1@tuned" in fr.markdown(rep)
    # Q4: GPU time, a band over the step-time model's uncertain constants
    band = rep["q3"]["gpu_vs_best_grpo"]["0.85"]["rtx4090"]
    assert 0 < band["low"] <= band["high"]
    assert "Q4 gpu_vs_best_grpo" in fr.markdown(rep)
