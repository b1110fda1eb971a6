"""The step-time model: how its estimate moves with a step's shape, the CPU
fit, the loop's logged shapes, and the commands that print it (behaviour,
never wall time)."""

import importlib.util
import json
import math
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pytest

from dopr_lite import archs, cpufit, ruletime, steplog, steptime
from dopr_lite.archs import Dims
from dopr_lite.config import DoprConfig
from dopr_lite.steprow import ALL_EQUAL, ROW_KEYS
from dopr_lite.steptime import CARDS, Call, Card, Efficiency, Workload

BENCH = Path(__file__).resolve().parent.parent / "bench"
QWEN = archs.dims("qwen2.5-1.5b")
FAST_HOST = Card("fast host", 80, 1000, 100, "test")


def _load(name):
    spec = importlib.util.spec_from_file_location(name, BENCH / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _generate(rows, card, eff=None, precision="bf16", steps=256):
    w = Workload(QWEN, (Call(rows, 200, steps),), precision=precision)
    return steptime.step_seconds(w, card, eff or Efficiency())["generate"]


def test_generate_is_flat_in_sequences_while_the_host_bounds_it():
    """On an H100 a decode step of the 1.5B model reads ~3 GB (< 2 ms):
    the host's per-layer overhead (28 layers x 0.9 ms) holds every call
    from 8 to 256 sequences at about the same time."""
    t8, t256 = (_generate(n, CARDS["h100-sxm"]) for n in (8, 256))
    assert t256 / t8 < 1.1


def test_generate_grows_with_sequences_when_bandwidth_bounds_it():
    slow = Card("slow", 12, 50, 25, "test")
    no_host = Efficiency(layer_overhead_s=0.0)
    t8, t256 = (_generate(n, slow, no_host) for n in (8, 256))
    assert t256 / t8 > 2  # the batch's KV cache is read every step


def test_generate_grows_with_the_decode_steps():
    card = CARDS["rtx4090"]
    assert _generate(8, card, steps=512) == pytest.approx(
        2 * _generate(8, card, steps=256), rel=0.02)


@pytest.mark.parametrize("precision", ["bf16", "4bit"])
def test_update_time_is_linear_in_the_tokens_it_back_propagates(precision):
    compute_bound = Efficiency(layer_overhead_s=0.0)

    def update(rows):
        w = Workload(QWEN, (), rows, 200, 768, precision=precision)
        return steptime.step_seconds(w, CARDS["h100-sxm"],
                                     compute_bound)["update"]

    assert update(64) == pytest.approx(4 * update(16), rel=1e-9)
    assert update(16) == pytest.approx(2 * update(8), rel=1e-9)


def test_checkpointing_adds_a_forward_and_full_fine_tuning_a_backward():
    def flops(**settings):
        w = Workload(QWEN, (), 8, 200, 768, **settings)
        return sum(p.count * p.flops for p in steptime.update_passes(w))

    lora = flops(precision="bf16", checkpointing=False)
    assert flops(precision="bf16") == pytest.approx(1.5 * lora)
    assert flops(precision="bf16", checkpointing=False,
                 lora=False) == pytest.approx(1.5 * lora)


def test_4bit_moves_fewer_weight_bytes():
    for name in ("qwen2.5-0.5b", "qwen2.5-1.5b"):
        four, bf16 = (archs.weight_bytes(archs.dims(name), p)
                      for p in ("4bit", "bf16"))
        assert four < bf16 / 2
    # and a bandwidth-bound decode step is faster for it
    card, eff = Card("slow", 12, 50, 25, "test"), Efficiency(
        layer_overhead_s=0.0)
    assert _generate(8, card, eff, "4bit") < _generate(8, card, eff, "bf16")


def test_the_4bit_update_pays_for_dequantising_each_pass():
    bf16, four = (steptime.step_seconds(
        Workload(QWEN, (), 8, 200, 768, precision=p), CARDS["rtx3060"],
        Efficiency(layer_overhead_s=0.0))["update"] for p in ("bf16", "4bit"))
    assert four > bf16


def test_the_fit_recovers_a_known_cpu():
    """Steps made by a known 'CPU' (scale and overhead), measured exactly,
    give those parameters back from one setting."""
    tiny = Dims("tiny", 4, 128, 128, 128, 100, 851_968, 851_968)
    truth = replace(steptime.CPU_NOMINAL, bandwidth_gbs=3.0,
                    bf16_tflops=0.03)  # scale 0.3
    eff = Efficiency(1.0, 1.0, 1.5e-3)
    works = [Workload(tiny, (Call(8 + 2 * (i % 2), 20 + i, 10 + 3 * i),),
                      update_rows=8 * (i % 3 > 0), update_prompt_tokens=20,
                      update_completion_tokens=10 + 3 * i, precision="fp32",
                      lora=True, checkpointing=False, micro_batch=64)
             for i in range(12)]
    parts = [steptime.step_seconds(w, truth, eff) for w in works]
    fit = cpufit.fit_cpu(works, [p["generate"] for p in parts],
                           [p["update"] for p in parts])
    assert fit.card.bf16_tflops == pytest.approx(0.03, rel=0.05)
    assert fit.eff.layer_overhead_s == pytest.approx(1.5e-3, rel=0.05)
    assert fit.rms_s < 0.01 * max(p["total"] for p in parts)


def test_cards_are_found_by_key_and_by_cuda_name_only_for_that_card():
    assert steptime.find_card("h100") is CARDS["h100-sxm"]
    assert steptime.find_card("NVIDIA H100 80GB HBM3") is CARDS["h100-sxm"]
    assert steptime.find_card("NVIDIA GeForce RTX 4090") is CARDS["rtx4090"]
    assert steptime.find_card("NVIDIA H200") is CARDS["h200"]
    for other in ("NVIDIA H100 PCIe", "NVIDIA GeForce RTX 3060 Ti",
                  "NVIDIA GeForce RTX 4090 Laptop GPU", "NVIDIA A100"):
        assert steptime.find_card(other) is None, other
    assert all(c.source.startswith("https://") for c in CARDS.values())


def test_rule_workloads_have_the_rules_shapes():
    cfg = DoprConfig.consumer_gpu(prompts_per_step=32)
    G, C = cfg.num_generations, cfg.max_new_tokens
    full = ruletime.rule_workload("full", cfg)
    assert [c.rows for c in full.calls] == [32 * G]
    assert full.update_rows == 32 * G and full.entropy_rows == 0
    dopr = ruletime.rule_workload("dopr", cfg)  # G + 2 probes ahead
    assert [c.rows for c in dopr.calls] == [G + 2] and dopr.update_rows == G
    assert dopr.entropy_rows == 0  # the default samples: no entropy pass
    ucb = ruletime.rule_workload("dopr", cfg, selector_args={"score": "ucb"})
    assert ucb.entropy_rows == 32  # an upper bound: every candidate
    assert ruletime.rule_workload("dopr-v1", cfg).entropy_rows == 32
    assert ruletime.rule_workload("thompson", cfg).calls[0].rows == G
    assert {c.decode_steps for c in full.calls + dopr.calls} == {C}
    assert full.precision == "4bit" and full.dims == QWEN
    with pytest.raises(ValueError, match="not modelled"):
        ruletime.rule_workload("dynamic", cfg)


def test_a_typical_step_from_numbers_alone():
    """What rule_workload asks a rule's shape for, given as numbers."""
    common = dict(batch=32, generations=8, prompt_tokens=200,
                  completion_tokens=768, **steplog.run_settings(
                      DoprConfig.consumer_gpu()))
    w = ruletime.step_workload(QWEN, picks=1, probe_rows=3,
                               own_probe_call=True, **common)
    assert [c.rows for c in w.calls] == [8, 3] and w.update_rows == 8
    w = ruletime.step_workload(QWEN, picks=1, probe_rows=3, entropy=True,
                               **common)
    assert [c.rows for c in w.calls] == [11] and w.entropy_rows == 32
    w = ruletime.step_workload(QWEN, picks=None, entropy=True, **common)
    assert [c.rows for c in w.calls] == [256] and w.entropy_rows == 0


def test_the_core_model_imports_nothing_of_the_training_stack():
    """steptime is arithmetic on a model's dimensions: importing it loads
    no module of the training stack (nor config, which loads the
    selectors), so it can never depend on one."""
    code = ("import json, sys, dopr_lite.steptime; print(json.dumps(sorted("
            "m for m in sys.modules if m.startswith('dopr_lite.'))))")
    out = subprocess.run([sys.executable, "-c", code], check=True,
                         capture_output=True, text=True).stdout
    loaded = set(json.loads(out.splitlines()[-1]))
    assert loaded <= {"dopr_lite.steptime", "dopr_lite.archs",
                      "dopr_lite.tiny", "dopr_lite.task"}, loaded


def test_a_full_batch_step_costs_more_but_not_in_proportion_to_its_rows():
    card, cfg = CARDS["rtx4090"], DoprConfig.consumer_gpu(prompts_per_step=32)
    one = ruletime.gpu_estimate("thompson", card, cfg)
    full = ruletime.gpu_estimate("full", card, cfg)
    assert full["rows"] == 32 * one["rows"]
    assert one["total"] < full["total"] < 32 * one["total"]
    assert ruletime.time_to_target(10, "full", card, cfg) == pytest.approx(
        10 * full["total"])
    assert math.isnan(ruletime.time_to_target(float("nan"), "full", card,
                                              cfg))


def test_a_logged_step_becomes_its_workload():
    """A real step of the loop logs the shapes the model reads."""
    from dopr_lite.loop import Run, train_step

    cfg = DoprConfig.tiny(prompts_per_step=8, out_dir="/dev/null",
                          selector="dopr-v1")  # it measures the entropy
    run = Run.start(cfg, log=lambda *a: None)
    row = train_step(run, 0)
    assert set(ROW_KEYS) <= set(row)
    [w] = steplog.workloads_from_metrics([row], cfg)
    assert sum(c.rows for c in w.calls) == row["rollouts"]  # G + probes
    assert w.entropy_rows == row["entropy_rows"] > 0  # v1 measured some
    assert w.precision == "fp32" and w.dims.layers == 4
    assert w.update_rows == (0 if row["skipped"] == ALL_EQUAL
                             else cfg.num_generations)
    skipped = steplog.workload_from_row(
        row | {"skipped": ALL_EQUAL}, w.dims,
        **steplog.run_settings(cfg))
    assert skipped.update_rows == 0
    with pytest.raises(ValueError, match="gen_calls"):
        steplog.workload_from_row({"skipped": ""}, w.dims)


def test_an_unknown_gpu_is_one_line_listing_the_cards_and_writes_nothing(
        tmp_path, monkeypatch, capsys):
    import dopr_lite.cli as cli

    def started(*args, **kwargs):
        raise AssertionError("the pre-flight started before --gpu was "
                             "checked")

    monkeypatch.setattr(cli, "preflight", started)
    monkeypatch.chdir(tmp_path)
    rc = cli.main(["preflight", "--gpu", "voodoo5",
                   "--out", str(tmp_path / "pf")])
    lines = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and len(lines) == 1, lines
    assert "--gpu voodoo5" in lines[0]
    assert all(key in lines[0] for key in CARDS)
    assert not list(tmp_path.iterdir())


def test_estimates_print_labelled_for_a_preset():
    text = ruletime.format_estimates(DoprConfig.consumer_gpu(),
                                     CARDS["rtx3060"])
    assert "estimate" in text and "Qwen2.5-Math-1.5B" in text
    assert [line.split()[0] for line in text.splitlines()[2:]] == [
        "dopr", "thompson", "full"]


def test_savings_tables_in_estimated_gpu_time():
    """A benchmark's rows to the target, as bench/saving.py makes them,
    become estimated hours on a card, with the fastest full-batch
    configuration that fits the card as the bar."""
    from dopr_lite import savings

    runs = savings.read_mix([BENCH / "results" / "compare_scale.json"])
    record = {"tables": {"default": savings.table(runs)}}
    record = json.loads(json.dumps(record))  # as read back from disk
    t = savings.gpu_tables(record, ["h100-sxm"])["default"]
    rows = {(r["B"], r["rule"]): r for r in t["rows"]}
    assert rows[(128, "thompson")]["rollouts_per_step"] == 8
    assert rows[(128, "full")]["rollouts_per_step"] == 128 * 8
    assert "not modelled" in rows[(128, "dynamic")]["note"]
    est = rows[(128, "full")]["cards"]["h100-sxm"]
    assert est["seconds_to"] == pytest.approx(
        rows[(128, "full")]["steps_to"] * est["seconds_per_step"])
    seconds, B = t["fastest_full"]["h100-sxm"]
    assert seconds == min(r["cards"]["h100-sxm"]["seconds_to"]
                          for r in t["rows"] if r["rule"] == "full")
    assert "estimate" in savings.gpu_table("default", t, ["h100-sxm"])
    steps = savings.benchmark_steps(savings.benchmark_rows(record), 100)
    assert steps["full"] == pytest.approx(  # the nearest B: 128
        rows[(128, "full")]["to_target"] / (128 * 8))


def test_the_preflights_shipped_rows_are_the_committed_benchmarks():
    """The rows the pre-flight ships as package data are those of the
    committed benchmark (rerun ``bench/saving.py ... --rows`` when it
    changes)."""
    from dopr_lite import savings
    from dopr_lite.curves import reached

    shipped = savings.read_benchmark_rows()
    made = savings.benchmark_rows(savings.read(
        BENCH / "results" / "dopr_v2.json"))
    assert len(shipped) == len(made) > 0
    for a, b in zip(shipped, made, strict=True):
        assert (a["B"], a["rule"]) == (b["B"], b["rule"])
        assert reached(a["to_target"]) == reached(b["to_target"])
        if reached(a["to_target"]):
            assert a["to_target"] == pytest.approx(b["to_target"])


def test_gpu_time_dry_run_writes_its_json(tmp_path):
    out = tmp_path / "gpu_time.json"
    assert _load("gpu_time").main(["--dry-run", "--out", str(out)]) == 0
    result = json.loads(out.read_text())
    kinds = {(m["kind"], m["precision"]) for m in result["measurements"]}
    assert ("generate", "fp32") in kinds and ("update", "fp32") in kinds
    assert all("estimate" in m for m in result["measurements"])
    assert result["device"] == "cpu"
