import json

import pytest
import torch

from dopr_lite.config import DoprConfig
from dopr_lite.errors import ConfigError, OutOfMemory
from dopr_lite.runlog import summary_table
from dopr_lite.select import candidate_batch, make_selector
from dopr_lite.loop import train


def _cfg(model_dir, out, **kw):
    base = dict(model=model_dir, out_dir=str(out), n_train=16, n_test=8,
                num_generations=4, prompts_per_step=4, max_new_tokens=8,
                eval_every=2, eval_k=2, save_every=2, lora_r=4,
                learning_rate=5e-2)
    base.update(kw)
    return DoprConfig(**base)


def _rows(result):
    timing = ("seconds", "train_seconds", "rollout_seconds",
              "update_seconds", "peak_memory_gb")
    return [{k: v for k, v in r.items() if k not in timing}
            for r in result.metrics]


def test_budget_is_required(random_tiny_dir, tmp_path):
    with pytest.raises(ConfigError, match="budget"):
        train(_cfg(random_tiny_dir, tmp_path), progress=False)


def test_rollout_budget_and_outputs(random_tiny_dir, tmp_path):
    cfg = _cfg(random_tiny_dir, tmp_path, max_rollouts=40)
    r = train(cfg, progress=False)
    # 16 rollouts a step: stops at the first step that reaches the budget
    assert r.counter.cost == 48 and len(r.metrics) == 3
    assert r.metrics[-1]["rollouts"] == 48
    for name in ("config.json", "metrics.jsonl", "metrics.csv",
                 "eval.jsonl"):
        assert (tmp_path / name).is_file(), name
    assert json.loads((tmp_path / "config.json").read_text())[
        "max_rollouts"] == 40
    assert "rollouts" in summary_table({"x": r})


def test_resume_replays_the_uninterrupted_run(random_tiny_dir, tmp_path):
    full = train(_cfg(random_tiny_dir, tmp_path / "a", max_steps=4),
                 progress=False)
    train(_cfg(random_tiny_dir, tmp_path / "b", max_steps=2),
          progress=False)
    resumed = train(_cfg(random_tiny_dir, tmp_path / "b", max_steps=4),
                    progress=False)
    assert _rows(resumed) == _rows(full)
    assert [(e["accuracy"], e["updates"]) for e in resumed.evals] == [
        (e["accuracy"], e["updates"]) for e in full.evals]
    assert resumed.counter == full.counter


@pytest.mark.slow
def test_grpo_raises_heldout_accuracy_above_shuffled_control(tmp_path):
    """The embedded model learns from real rewards, not from noise."""
    gains, controls = [], []
    for seed in (0, 1):
        for shuffle, sink in ((False, gains), (True, controls)):
            cfg = DoprConfig(max_rollouts=384, seed=seed, n_test=200,
                                  eval_every=1000, eval_k=0, save_every=0,
                                  out_dir=str(tmp_path / f"{seed}{shuffle}"))
            r = train(cfg, progress=False,
                      shuffle_rewards=shuffle)
            sink.append(r.final_accuracy - r.base_accuracy)
    mean_gain = sum(gains) / len(gains)
    mean_ctrl = sum(controls) / len(controls)
    assert mean_gain >= 0.03, (gains, controls)
    assert mean_gain > mean_ctrl + 0.02, (gains, controls)


def test_zero_variance_steps_are_skipped_and_logged(random_tiny_dir,
                                                    tmp_path):
    from dopr_lite.policy import load_policy

    def zero(completions, **_):
        return [0.0] * len(completions)

    cfg = _cfg(random_tiny_dir, tmp_path, max_steps=2)
    pol = load_policy(cfg)
    before = {n: p.detach().clone()
              for n, p in pol.trainable_parameters().items()}
    r = train(cfg, policy=pol, reward_fn=zero, progress=False)
    assert all(m["skipped"] == "all groups have zero reward variance"
               and m["frac_reward_zero_std"] == 1.0 for m in r.metrics)
    assert all(torch.equal(p, before[n])
               for n, p in pol.trainable_parameters().items())


def test_dopr_probes_each_new_candidate_once_and_counts_them(
        random_tiny_dir, tmp_path):
    G, per_step, steps, m = 4, 4, 3, 2
    cfg = _cfg(random_tiny_dir, tmp_path, max_steps=steps, selector="dopr",
               selector_args={"probe": m, "probe_top": 0}, num_generations=G,
               prompts_per_step=per_step, eval_k=0)
    r = train(cfg, progress=False)
    # probed ahead: step s probes step s+1's new candidates in its own
    # generate call (step 0's are never probed; the last step's probes,
    # counted, serve a run resumed with a larger budget)
    seen = {i for s in range(1, steps + 1)
            for i in candidate_batch(s, cfg.n_train, per_step, cfg.seed)}
    assert r.counter.sequences["probe"] == m * len(seen)
    assert r.counter.calls == steps + len(r.evals)  # no call of its own
    assert r.counter.sequences["train"] == steps * G
    assert r.counter.cost == steps * G + m * len(seen)
    assert r.metrics[-1]["probe_rollouts"] == m * len(seen)


@pytest.mark.parametrize("rule", ["full", "random", "fixed", "dynamic",
                                  "thompson", "dopr"])
def test_rollout_accounting_is_exact_for_every_rule(random_tiny_dir,
                                                     tmp_path, rule):
    G, per_step, steps = 4, 4, 3
    r = train(_cfg(random_tiny_dir, tmp_path, max_steps=steps,
                   selector=rule, num_generations=G,
                   prompts_per_step=per_step, eval_k=0),
              progress=False)
    generated = sum(m["prompts"] for m in r.metrics) * G
    # fixed: 16 on each first candidate; dopr: 1 on the 2 best new ones of
    # the next step's batch (every candidate of these steps is new: an
    # epoch-wise draw)
    probes = {"fixed": per_step * 16, "dopr": 2 * steps}.get(rule, 0)
    assert r.counter.sequences["train"] == generated
    assert r.counter.sequences["probe"] == probes
    assert r.counter.cost == generated + probes == r.metrics[-1]["rollouts"]
    assert len(r.metrics) == steps
    if make_selector(rule).shape.picks == 1:
        assert all(m["prompts"] == 1 for m in r.metrics)
    elif rule == "full":
        assert all(m["prompts"] == per_step for m in r.metrics)
    else:  # dynamic: 1 to 3 candidate draws, at most per_step trained
        assert all(per_step <= m["prompts"] <= 3 * per_step
                   and m["trained_prompts"] <= per_step
                   for m in r.metrics)
    # the eval rollouts are counted apart and never charged as cost
    n_evals = len(r.evals)
    assert r.counter.sequences["eval"] == n_evals * 8  # n_test=8, greedy


def test_dynamic_sampling_trains_only_informative_groups(random_tiny_dir,
                                                         tmp_path):
    r = train(_cfg(random_tiny_dir, tmp_path, max_steps=3,
                   selector="dynamic", eval_k=0, learning_rate=0.0),
              progress=False,
              reward_fn=lambda completions, **kw: [
                  float(len(c) % 2) for c in completions])
    for m in r.metrics:
        if m["trained_prompts"] == 0:
            assert m["skipped"]
        assert m["prompts"] >= m["trained_prompts"]


def test_selector_state_survives_resume(random_tiny_dir, tmp_path):
    kw = dict(selector="dopr", eval_k=0, save_every=1)
    full = train(_cfg(random_tiny_dir, tmp_path / "a", max_steps=4, **kw),
                 progress=False)
    train(_cfg(random_tiny_dir, tmp_path / "b", max_steps=2, **kw),
          progress=False)
    resumed = train(_cfg(random_tiny_dir, tmp_path / "b", max_steps=4,
                         **kw), progress=False)
    assert [m["picked"] for m in resumed.metrics] == [
        m["picked"] for m in full.metrics]
    assert _rows(resumed) == _rows(full)


@pytest.mark.slow
def test_short_dopr_run_raises_heldout_accuracy(tmp_path):
    """One prompt per step, 96 rollouts: the embedded model improves."""
    cfg = DoprConfig.tiny(selector="dopr", max_rollouts=96, seed=0,
                          n_test=150, eval_every=100, eval_k=0,
                          save_every=0, out_dir=str(tmp_path))
    r = train(cfg, progress=False, resume=False)
    # 8 trained and 2 probe rollouts a step until the budget is spent
    assert len(r.metrics) == 10 and r.counter.cost == 100
    assert r.final_accuracy >= r.base_accuracy + 0.10, (
        r.base_accuracy, r.final_accuracy)


def test_out_of_memory_names_the_knobs(random_tiny_dir, tmp_path,
                                       monkeypatch):
    import dopr_lite.loop as T

    def oom(*args, **kwargs):
        raise torch.OutOfMemoryError("CUDA out of memory. Tried to ...")

    monkeypatch.setattr(T, "grpo_update", oom)
    cfg = _cfg(random_tiny_dir, tmp_path, max_steps=2, eval_k=0)
    with pytest.raises(OutOfMemory) as err:
        train(cfg, progress=False, reward_fn=lambda
              completions, **_: [float(i % 2) for i in range(len(
                  completions))])
    msg = str(err.value)
    for knob in ("during the update", "num_generations=4",
                 "max_new_tokens=8", "micro_batch=64", "lora_r=4",
                 "prompts_per_step=4", "gradient_checkpointing=True",
                 "load_in_4bit=True", "resume"):
        assert knob in msg, (knob, msg)


def test_metrics_rows_carry_phase_times_and_memory(random_tiny_dir,
                                                   tmp_path):
    r = train(_cfg(random_tiny_dir, tmp_path, max_steps=1, eval_k=0),
              progress=False)
    row = r.metrics[0]
    assert row["rollout_seconds"] > 0 and row["update_seconds"] >= 0
    assert row["rollout_seconds"] + row["update_seconds"] <= row["seconds"]
    assert row["peak_memory_gb"] > 0.01  # CPU: the process's peak RSS
