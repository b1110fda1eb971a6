import json
import shutil

import pytest
import torch

from dopr_lite.config import ConfigError, DoprConfig
from dopr_lite.train import (CheckpointError, candidate_batch,
                             latest_checkpoint, summary_table, train,
                             verify_checkpoint)


def test_candidate_batches_cover_the_pool_each_epoch():
    seen = [i for s in range(5) for i in candidate_batch(s, 20, 4, seed=1)]
    assert sorted(seen) == list(range(20))
    assert candidate_batch(7, 20, 4, 1) == candidate_batch(7, 20, 4, 1)
    assert candidate_batch(0, 20, 4, 1) != candidate_batch(0, 20, 4, 2)
    assert candidate_batch(3, 1, 4, 0) == [0, 0, 0, 0]  # one-shot: repeat
    assert sorted(candidate_batch(0, 2, 4, 0)) == [0, 0, 1, 1]


def _cfg(model_dir, out, **kw):
    base = dict(model=model_dir, out_dir=str(out), n_train=16, n_test=8,
                num_generations=4, prompts_per_step=4, max_new_tokens=8,
                eval_every=2, eval_k=2, save_every=2, lora_r=4,
                learning_rate=5e-2)
    base.update(kw)
    return DoprConfig(**base)


def _rows(result):
    return [{k: v for k, v in r.items() if k != "seconds"}
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
                 "eval.jsonl", "run.png"):
        assert (tmp_path / name).is_file(), name
    assert json.loads((tmp_path / "config.json").read_text())[
        "max_rollouts"] == 40
    assert "rollouts" in summary_table({"x": r})


def test_resume_replays_the_uninterrupted_run(random_tiny_dir, tmp_path):
    full = train(_cfg(random_tiny_dir, tmp_path / "a", max_steps=4),
                 progress=False, figure=False)
    train(_cfg(random_tiny_dir, tmp_path / "b", max_steps=2),
          progress=False, figure=False)
    resumed = train(_cfg(random_tiny_dir, tmp_path / "b", max_steps=4),
                    progress=False, figure=False)
    assert _rows(resumed) == _rows(full)
    assert [e["accuracy"] for e in resumed.evals] == [
        e["accuracy"] for e in full.evals]
    assert resumed.counter == full.counter


def test_corrupt_checkpoint_is_detected_not_loaded(random_tiny_dir,
                                                   tmp_path):
    train(_cfg(random_tiny_dir, tmp_path, max_steps=2), progress=False,
          figure=False)
    (ckpt,) = tmp_path.glob("ckpt-*")
    verify_checkpoint(ckpt)
    good = tmp_path / "good"
    shutil.copytree(ckpt, good)
    with open(ckpt / "trainable.safetensors", "r+b") as fh:
        fh.seek(200)
        fh.write(b"\x00garbage\x00")
    with pytest.raises(CheckpointError, match="corrupt"):
        verify_checkpoint(ckpt)
    logs = []
    assert latest_checkpoint(tmp_path, logs.append) is None
    assert "skipping checkpoint" in logs[0]
    (good / "manifest.json").unlink()  # a write that never finished
    with pytest.raises(CheckpointError, match="incomplete"):
        verify_checkpoint(good)


@pytest.mark.slow
def test_grpo_raises_heldout_accuracy_above_shuffled_control(tmp_path):
    """The embedded model learns from real rewards, not from noise."""
    gains, controls = [], []
    for seed in (0, 1):
        for shuffle, sink in ((False, gains), (True, controls)):
            cfg = DoprConfig.tiny(max_rollouts=384, seed=seed, n_test=200,
                                  eval_every=1000, eval_k=0, save_every=0,
                                  out_dir=str(tmp_path / f"{seed}{shuffle}"))
            r = train(cfg, progress=False, figure=False,
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
    r = train(cfg, policy=pol, reward_fn=zero, progress=False, figure=False)
    assert all(m["skipped"] == "all groups have zero reward variance"
               and m["frac_reward_zero_std"] == 1.0 for m in r.metrics)
    assert all(torch.equal(p, before[n])
               for n, p in pol.trainable_parameters().items())
