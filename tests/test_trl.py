"""The DoPR rule inside TRL's GRPOTrainer (CPU, the embedded model)."""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch

pytest.importorskip("trl")

from dopr_lite.config import DoprConfig
from dopr_lite.errors import ConfigError  # noqa: E402
from dopr_lite.integrations.trl import (DoprGRPOTrainer,  # noqa: E402
                                        grpo_args)
from dopr_lite.policy import lora_config  # noqa: E402
from dopr_lite.rewards import exact_answer_reward  # noqa: E402
from dopr_lite.task import task_dataset  # noqa: E402
from dopr_lite.tiny import EMBEDDED_DIR  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent


def _trainer(out, reward=exact_answer_reward, **kw):
    from dopr_lite.policy import load_policy

    kw = {"selector": "dopr", "max_rollouts": 32, "save_every": 2, **kw}
    cfg = DoprConfig(num_generations=4, **kw)
    tok = load_policy(use_lora=False).tokenizer
    return DoprGRPOTrainer(
        model=str(EMBEDDED_DIR), reward_funcs=reward,
        args=grpo_args(cfg, str(out)), train_dataset=task_dataset("rl", 32),
        processing_class=tok, peft_config=lora_config(cfg),
        selector=cfg.selector, prompts_per_step=cfg.prompts_per_step)


def _steps(trainer):
    return [(h["dopr/rollouts"], h["dopr/tokens"], h["reward"])
            for h in trainer.state.log_history if "reward" in h]


def test_grpo_args_carry_the_dopr_config():
    cfg = DoprConfig(selector="full", max_rollouts=1000, learning_rate=1e-3,
                     loss_type="dapo", epsilon_high=0.3, seed=5)
    a = grpo_args(cfg, "unused", processes=2)
    assert a.per_device_train_batch_size == 32  # 8 prompts x G 8 / 2
    assert a.max_steps == 16 and a.seed == 5  # ceil(1000 / 64)
    assert (a.learning_rate, a.loss_type, a.epsilon_high) == (1e-3, "dapo",
                                                              0.3)
    assert a.lr_scheduler_type == "constant" and a.beta == 0.0
    assert lora_config(cfg).r == cfg.lora_r


@pytest.mark.parametrize("overrides,needle", [
    (dict(num_generations=6, selector="dopr"), "split evenly over 4"),
    (dict(selector="fixed"), "not supported inside TRL"),
    (dict(entropy_coef=0.01), "entropy_coef"),
    (dict(selector="dopr", selector_args={"probe": 1}), "probe"),
])
def test_impossible_trl_settings_are_named(overrides, needle,
                                           reliability_log):
    with pytest.raises(ConfigError, match=needle) as err:
        grpo_args(DoprConfig(max_steps=1, **overrides), "unused",
                  processes=4)
    reliability_log.setdefault("bad_input_cases", {})[
        f"config: TRL {needle}"] = str(err.value)


def test_trainer_refuses_probing_selectors_before_building():
    with pytest.raises(ConfigError, match="probe"):
        DoprGRPOTrainer(selector="dopr", selector_args={"probe": 1})


def test_a_preflight_start_is_refused_not_ignored(tmp_path):
    from dopr_lite.integrations.trl import dopr_trainer

    cfg = DoprConfig(selector="dopr", selector_args={"probe": 0},
                     preflight="pf.json", max_steps=1)
    with pytest.raises(ConfigError, match="'preflight'.*uncounted"):
        dopr_trainer(cfg, task_dataset("rl", 8), None, str(tmp_path))


def test_batch_that_does_not_match_the_rule_is_refused(tmp_path):
    from dopr_lite.policy import load_policy
    from trl import GRPOConfig

    args = GRPOConfig(output_dir=str(tmp_path), use_cpu=True, bf16=False,
                      per_device_train_batch_size=8, num_generations=4,
                      max_steps=1, report_to=[])
    with pytest.raises(ConfigError, match="picks 1"):
        DoprGRPOTrainer(model=str(EMBEDDED_DIR),
                        reward_funcs=exact_answer_reward, args=args,
                        train_dataset=task_dataset("rl", 8),
                        processing_class=load_policy(use_lora=False
                                                     ).tokenizer)


def test_dopr_drives_trl_and_resumes_step_for_step(tmp_path):
    full = _trainer(tmp_path / "a")
    full.train()
    assert full.counter.cost == 32 and full.generation == 8
    assert sum(full.history.visits.values()) == 8  # one prompt a step
    steps = _steps(full)
    assert [s[0] for s in steps] == list(range(4, 33, 4))
    ckpt = tmp_path / "a" / "checkpoint-4"
    saved = json.loads((ckpt / "trainer_state.json").read_text())
    assert saved["stateful_callbacks"]["DoprState"]["generation"] == 4
    # resume from step 4 in a fresh trainer: the same picks and rewards
    shutil.copytree(tmp_path / "a", tmp_path / "b")
    for later in ("checkpoint-6", "checkpoint-8"):
        shutil.rmtree(tmp_path / "b" / later)
    resumed = _trainer(tmp_path / "b")
    resumed.train(resume_from_checkpoint=True)
    assert _steps(resumed)[-4:] == steps[-4:]
    assert resumed.history.state_dict() == full.history.state_dict()
    assert resumed.counter == full.counter


def test_a_checkpoint_without_the_selector_state_is_refused(tmp_path):
    trainer = _trainer(tmp_path, max_rollouts=8)
    trainer.train()
    state = tmp_path / "checkpoint-2" / "trainer_state.json"
    saved = json.loads(state.read_text())
    del saved["stateful_callbacks"]["DoprState"]  # a plain TRL checkpoint
    state.write_text(json.dumps(saved))
    with pytest.raises(ConfigError, match="no DoprState.*not written by"):
        _trainer(tmp_path, max_rollouts=8).train(resume_from_checkpoint=True)


def _count_loss_passes(monkeypatch):
    """How often TRL computes its loss (a forward pass each)."""
    from trl import GRPOTrainer

    passes, loss = [], GRPOTrainer.compute_loss

    def counted(self, *a, **kw):
        passes.append(1)
        return loss(self, *a, **kw)

    monkeypatch.setattr(GRPOTrainer, "compute_loss", counted)
    return passes


def test_an_all_equal_generation_makes_no_optimiser_step(tmp_path,
                                                          monkeypatch):
    """Step 1 is informative, steps 2-3 are all-equal: the weights after
    step 1 must stay as they are (TRL alone would step AdamW on its
    momentum and move them at every all-equal step), and steps 2-3 run
    no forward or backward pass."""
    from transformers import TrainerCallback

    calls = []

    def reward(completions, **kw):
        calls.append(len(completions))
        return ([float(i % 2) for i in range(len(completions))]
                if len(calls) == 1 else [0.0] * len(completions))

    weights = []

    class Snapshot(TrainerCallback):
        def on_step_end(self, args, state, control, model=None, **kw):
            weights.append({n: p.detach().clone() for n, p in
                            model.named_parameters() if p.requires_grad})

    trainer = _trainer(tmp_path, reward=reward, max_rollouts=12,
                       save_every=0)
    trainer.add_callback(Snapshot())
    passes = _count_loss_passes(monkeypatch)
    trainer.train()
    assert len(calls) == 3 and trainer.skipped_updates == 2
    assert len(passes) == 1
    first, *later = weights
    assert all(torch.equal(w[n], first[n]) for w in later for n in first)
    assert trainer.state.log_history[-2]["dopr/skipped_updates"] == 2


def test_with_a_kl_term_an_all_equal_generation_trains(tmp_path,
                                                       monkeypatch):
    """beta > 0: the KL term has a gradient, so nothing is skipped (as in
    dopr_lite's loop)."""
    trainer = _trainer(tmp_path, reward=lambda completions, **kw:
                       [0.0] * len(completions), max_rollouts=8,
                       save_every=0, beta=0.04)
    passes = _count_loss_passes(monkeypatch)
    trainer.train()
    assert trainer.skipped_updates == 0 and len(passes) == 2


@pytest.mark.slow
def test_two_processes_with_gloo(tmp_path, reliability_log):
    """torchrun, 2 CPU processes: each generates half of every group."""
    env = {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1"}
    proc = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node",
         "2", str(ROOT / "examples/trl/dopr_grpo.py"), "--max-rollouts",
         "32", "--set", "num_generations=4", "--set", "n_test=20",
         "--out", str(tmp_path)], env=env, capture_output=True, text=True,
        timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads((tmp_path / "result.json").read_text())
    assert (result["processes"], result["backend"]) == (2, "gloo")
    assert result["rollouts"] == 32 and result["n"] == 20
    # 32 rollouts of one prompt x G = 4: 8 generations, each logged by TRL
    # with its share of zero-variance groups over BOTH processes' halves
    final = tmp_path / "checkpoint-8"
    log = [h for h in json.loads((final / "trainer_state.json").read_text())
           ["log_history"] if "reward" in h]
    assert [h["dopr/rollouts"] for h in log] == list(range(4, 33, 4))
    assert {h["frac_reward_zero_std"] for h in log} <= {0.0, 1.0}
    # a generation is skipped exactly when its one group is all-equal
    # (decided on both processes' slices together, not on one half)
    all_equal = sum(h["frac_reward_zero_std"] == 1.0 for h in log)
    assert result["skipped_updates"] == all_equal
    assert result["prompts_seen"] == log[-1]["dopr/prompts_seen"]
    # the main process evaluated the trained weights: the final checkpoint,
    # evaluated here in one process, scores the same
    assert result["accuracy"] == _checkpoint_accuracy(final, n_test=20)
    reliability_log["trl_two_processes"] = result


def _checkpoint_accuracy(checkpoint, **overrides) -> float:
    """Greedy held-out accuracy of a TRL checkpoint's LoRA adapter on the
    embedded model, evaluated as examples/trl/dopr_grpo.py does."""
    from peft import PeftModel

    from dopr_lite.config import PRESETS
    from dopr_lite.data import load_prompts
    from dopr_lite.evaluation import evaluate
    from dopr_lite.policy import load_policy
    from dopr_lite.rewards import get_reward

    cfg = PRESETS["tiny"](**overrides)
    policy = load_policy(cfg, use_lora=False)
    model = PeftModel.from_pretrained(policy.model, str(checkpoint)).eval()
    data = load_prompts(cfg, policy.tokenizer)
    return evaluate(model, policy.tokenizer, data.test,
                    get_reward(cfg.reward), k=0,
                    max_new_tokens=cfg.max_new_tokens,
                    batch_size=cfg.eval_batch)["accuracy"]


def test_qlora_through_trl_options(tmp_path):
    """4-bit base through TRL's quantization_config, LoRA through its
    peft_config: dopr_trainer passes both unchanged."""
    from dopr_lite.integrations.trl import dopr_trainer
    from dopr_lite.policy import load_tokenizer

    cfg = DoprConfig(load_in_4bit=True, dtype="float32",
                     bnb_compute_dtype="float32", selector="dopr",
                     max_rollouts=8, num_generations=4, save_every=0)
    trainer = dopr_trainer(cfg, task_dataset("rl", 16),
                           load_tokenizer(cfg), str(tmp_path))
    assert any(type(m).__name__ == "Linear4bit"
               for m in trainer.model.modules())
    trainer.train()
    assert trainer.counter.cost == 8 and trainer.generation == 2
