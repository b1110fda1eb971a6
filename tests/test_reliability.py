"""Crashes, interrupts and NaN: a run loses nothing and resumes faithfully.

A reference run is compared step for step (timings aside) with runs that
were SIGKILLed at random points, killed half way through a checkpoint or a
metrics line (``$DOPR_FAULT``), or interrupted with Ctrl-C, then resumed.
"""

import json
import os
import random
import shutil
import signal
import subprocess
import sys
import time

import pytest
import torch

from dopr_lite.config import DoprConfig
from dopr_lite.select import RandomOne
from dopr_lite.errors import NonFiniteError
from dopr_lite.loop import train

KILL_POINTS = int(os.environ.get("DOPR_KILL_POINTS", "4"))
STEPS = 10
RUNNER = ("import sys; from dopr_lite.config import DoprConfig; "
          "from dopr_lite.loop import train; "
          "train(DoprConfig.load(sys.argv[1]), progress=False)")
TIMING = ("seconds", "train_seconds", "rollout_seconds", "update_seconds",
          "peak_memory_gb")


def _cfg(model_dir, out, **kw):
    base = dict(model=model_dir, out_dir=str(out), n_train=16, n_test=8,
                num_generations=4, prompts_per_step=4, max_new_tokens=8,
                eval_every=3, eval_k=2, save_every=2, lora_r=4,
                learning_rate=5e-2, selector="dopr", max_steps=STEPS)
    base.update(kw)
    return DoprConfig(**base)


def _strip(rows):
    return [{k: v for k, v in r.items() if k not in TIMING} for r in rows]


def _same_run(a, b):
    assert _strip(a.metrics) == _strip(b.metrics)
    assert _strip(a.evals) == _strip(b.evals)
    assert a.counter == b.counter


@pytest.fixture(scope="module")
def reference(random_tiny_dir, tmp_path_factory):
    out = tmp_path_factory.mktemp("reference")
    return train(_cfg(random_tiny_dir, out), progress=False)


def _start(cfg, fault=None):
    cfg.save(cfg.out_dir + ".json")
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    env.pop("DOPR_FAULT", None)
    if fault:
        env["DOPR_FAULT"] = fault
    return subprocess.Popen([sys.executable, "-c", RUNNER,
                             cfg.out_dir + ".json"], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)


def _lines(path):
    return len(path.read_text().splitlines()) if path.is_file() else 0


def _resume(cfg):
    logs = []
    return train(cfg, progress=False, log=logs.append), logs


@pytest.mark.slow
@pytest.mark.parametrize("fault", ["checkpoint:4", "metrics:5", "eval:6"])
def test_killed_mid_write_resumes_from_the_last_complete_checkpoint(
        random_tiny_dir, tmp_path, reference, fault, reliability_log):
    cfg = _cfg(random_tiny_dir, tmp_path / "run")
    proc = _start(cfg, fault)
    proc.communicate(timeout=300)
    assert proc.returncode == -signal.SIGKILL
    out = tmp_path / "run"
    if fault.startswith("checkpoint"):  # a temp dir, never a ckpt-*
        assert list(out.glob(".tmp-ckpt-*"))
        assert sorted(p.name for p in out.glob("ckpt-*")) == ["ckpt-000002"]
    else:  # the last line is torn
        name = fault.split(":")[0] + ".jsonl"
        with pytest.raises(ValueError):
            json.loads((out / name).read_text().splitlines()[-1])
    resumed, logs = _resume(cfg)
    assert any("resumed from" in m for m in logs), logs
    _same_run(resumed, reference)
    assert not list(out.glob(".tmp-ckpt-*"))
    reliability_log.setdefault("kill_points", {})[f"fault {fault}"] = "ok"


@pytest.mark.slow
def test_sigkill_at_random_points_then_resume_matches(
        random_tiny_dir, tmp_path, reference, reliability_log):
    rng = random.Random(0)
    for n in range(KILL_POINTS):
        cfg = _cfg(random_tiny_dir, tmp_path / f"run{n}")
        metrics = tmp_path / f"run{n}" / "metrics.jsonl"
        at_step, delay = rng.randint(1, STEPS - 1), rng.uniform(0, 0.3)
        proc = _start(cfg)
        deadline = time.time() + 300
        while _lines(metrics) < at_step and proc.poll() is None:
            assert time.time() < deadline, "the run never got there"
            time.sleep(0.02)
        time.sleep(delay)
        proc.kill()
        proc.communicate()
        reached = _lines(metrics)
        resumed, _ = _resume(cfg)
        _same_run(resumed, reference)
        reliability_log.setdefault("kill_points", {})[
            f"SIGKILL #{n} after step {at_step} + {delay:.2f} s"] = \
            f"ok (metrics had {reached} lines)"


@pytest.mark.slow
def test_ctrl_c_saves_a_checkpoint_and_the_run_resumes(
        random_tiny_dir, tmp_path, reference, reliability_log):
    cfg = _cfg(random_tiny_dir, tmp_path / "run", save_every=0)
    metrics = tmp_path / "run" / "metrics.jsonl"
    proc = _start(cfg)
    while _lines(metrics) < 3 and proc.poll() is None:
        time.sleep(0.02)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=300)
    assert proc.returncode != 0 and "KeyboardInterrupt" in err
    done = _lines(metrics)
    assert f"checkpoint saved at step {done}" in out
    assert [p.name for p in (tmp_path / "run").glob("ckpt-*")] == [
        f"ckpt-{done:06d}"]
    resumed, _ = _resume(cfg)
    _same_run(resumed, reference)
    reliability_log.setdefault("kill_points", {})[
        f"Ctrl-C after step {done}"] = "ok"


def test_a_damaged_newest_checkpoint_falls_back_to_the_one_before(
        random_tiny_dir, tmp_path, reference):
    cfg = _cfg(random_tiny_dir, tmp_path, max_steps=6)
    train(cfg, progress=False)
    ckpts = sorted(tmp_path.glob("ckpt-*"))
    assert [p.name for p in ckpts] == ["ckpt-000004", "ckpt-000006"]
    (ckpts[-1] / "optimizer.pt").write_bytes(b"truncated")
    resumed, logs = _resume(_cfg(random_tiny_dir, tmp_path))
    assert any("skipping checkpoint" in m and "ckpt-000006" in m
               for m in logs)
    assert any("resumed from" in m and "ckpt-000004" in m for m in logs)
    _same_run(resumed, reference)


# --- NaN and inf ------------------------------------------------------------

class _Poison:
    """Turns the policy's logits into NaN while ``on`` is true."""

    def __init__(self, model, grad_only=False):
        self.on, self.grad_only = False, grad_only
        head = model.get_output_embeddings()
        head.register_forward_hook(self.hook)

    def hook(self, module, inputs, output):
        if self.on and (torch.is_grad_enabled() or not self.grad_only):
            return output * float("nan")
        return None


class _PoisonSteps(RandomOne):
    """Random-one that switches the poison on at the given steps."""

    def __init__(self, poison, steps):
        super().__init__()
        self.poison, self.steps = poison, set(steps)

    def select(self, candidates, ctx):
        self.poison.on = ctx.step in self.steps
        return super().select(candidates, ctx)


def _poisoned_run(model_dir, tmp_path, steps, grad_only=False, **kw):
    from dopr_lite.policy import load_policy

    cfg = _cfg(model_dir, tmp_path, selector="random", eval_k=0, **kw)
    pol = load_policy(cfg)
    poison = _Poison(pol.model, grad_only)
    logs = []
    run = lambda: train(  # noqa: E731
        cfg, policy=pol, selector=_PoisonSteps(poison, steps),
        reward_fn=lambda completions, **_: [  # varied: every step updates
            float(i % 2) for i in range(len(completions))],
        progress=False, log=logs.append)
    return pol, run, logs


@pytest.mark.parametrize("grad_only", [False, True],
                         ids=["in generation", "in the update"])
def test_nan_logits_skip_the_step_and_never_reach_the_weights(
        random_tiny_dir, tmp_path, grad_only, reliability_log):
    pol, run, logs = _poisoned_run(random_tiny_dir, tmp_path, {1, 3},
                                   grad_only, max_steps=5)
    result = run()
    skipped = {m["step"]: m["skipped"] for m in result.metrics}
    why = "non-finite loss" if grad_only else "non-finite logits"
    assert why in skipped[2] and why in skipped[4], skipped
    assert not any(why in skipped[s] for s in (1, 3, 5))
    assert result.metrics[-1]["updates"] == 3
    for p in pol.trainable_parameters().values():
        assert torch.isfinite(p).all()
    assert sum("update skipped" in m for m in logs) == 2
    reliability_log.setdefault("nan_cases", {})[
        f"NaN logits {'in the update' if grad_only else 'in generation'}"
    ] = "steps 2 and 4 skipped with the reason; weights finite"


def test_nan_every_step_stops_with_the_knobs_to_turn(random_tiny_dir,
                                                     tmp_path):
    pol, run, _ = _poisoned_run(random_tiny_dir, tmp_path, set(range(99)),
                                max_steps=8)
    before = {n: p.detach().clone()
              for n, p in pol.trainable_parameters().items()}
    with pytest.raises(NonFiniteError, match="learning_rate.*dtype"):
        run()
    assert all(torch.equal(p, before[n])
               for n, p in pol.trainable_parameters().items())
    lines = (tmp_path / "metrics.jsonl").read_text().splitlines()
    assert len(lines) == 3  # three skipped steps, logged, then the stop


def test_no_checkpoint_is_written_from_non_finite_weights(random_tiny_dir,
                                                          tmp_path):
    from dopr_lite.policy import load_policy
    from dopr_lite.checkpoint import save_checkpoint
    from dopr_lite.errors import CheckpointError

    pol = load_policy(_cfg(random_tiny_dir, tmp_path))
    name, param = next(iter(pol.trainable_parameters().items()))
    with torch.no_grad():
        param[0, 0] = float("inf")
    opt = torch.optim.AdamW(pol.trainable_parameters().values())
    with pytest.raises(CheckpointError, match="non-finite"):
        save_checkpoint(tmp_path, 1, pol, opt, {})
    assert not list(tmp_path.glob("*ckpt*"))


# --- loading safety ---------------------------------------------------------

class _Evil:
    """Unpickling this touches a file: what a malicious checkpoint does."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        from pathlib import Path

        return (Path.touch, (Path(self.marker),))


def test_pickled_weights_are_refused_never_unpickled(random_tiny_dir,
                                                     tmp_path):
    from dopr_lite.errors import PolicyLoadError
    from dopr_lite.policy import load_policy

    marker = tmp_path / "pwned"
    model_dir = tmp_path / "model"
    shutil.copytree(random_tiny_dir, model_dir)
    (model_dir / "model.safetensors").unlink()
    torch.save({"evil": _Evil(marker)}, model_dir / "pytorch_model.bin")
    with pytest.raises(PolicyLoadError, match="safetensors"):
        load_policy(model=str(model_dir))
    assert not marker.exists()


def test_a_checkpoint_with_code_in_its_pickle_is_refused(random_tiny_dir,
                                                         tmp_path):
    from dopr_lite.policy import load_policy
    from dopr_lite.checkpoint import (_sha256, load_checkpoint,
                                      save_checkpoint)
    from dopr_lite.errors import CheckpointError

    marker = tmp_path / "pwned"
    cfg = _cfg(random_tiny_dir, tmp_path)
    pol = load_policy(cfg)
    opt = torch.optim.AdamW(pol.trainable_parameters().values())
    ckpt = save_checkpoint(tmp_path, 1, pol, opt, {"step": 1})
    torch.save({"state": _Evil(marker)}, ckpt / "optimizer.pt")
    manifest = json.loads((ckpt / "manifest.json").read_text())
    manifest["sha256"]["optimizer.pt"] = _sha256(ckpt / "optimizer.pt")
    (ckpt / "manifest.json").write_text(json.dumps(manifest))  # forged
    with pytest.raises(CheckpointError, match="refused to load"):
        load_checkpoint(ckpt, pol, opt)
    assert not marker.exists()


def test_remote_code_is_not_run_unless_asked(random_tiny_dir, tmp_path):
    from dopr_lite.errors import PolicyLoadError
    from dopr_lite.policy import load_policy

    marker = tmp_path / "pwned"
    model_dir = tmp_path / "model"
    shutil.copytree(random_tiny_dir, model_dir)
    config = json.loads((model_dir / "config.json").read_text())
    config.update(model_type="evil", auto_map={
        "AutoConfig": "configuration_evil.EvilConfig",
        "AutoModelForCausalLM": "modeling_evil.EvilModel"})
    (model_dir / "config.json").write_text(json.dumps(config))
    code = f"import pathlib\npathlib.Path({str(marker)!r}).touch()\n"
    (model_dir / "configuration_evil.py").write_text(code)
    (model_dir / "modeling_evil.py").write_text(code)
    with pytest.raises(PolicyLoadError, match="trust_remote_code"):
        load_policy(model=str(model_dir))
    assert not marker.exists()
