import json
import shutil

import pytest

from dopr_lite.checkpoint import latest_checkpoint, verify_checkpoint
from dopr_lite.config import DoprConfig
from dopr_lite.errors import CheckpointError, ConfigError
from dopr_lite.loop import train


def _cfg(model_dir, out, **kw):
    return DoprConfig(model=model_dir, out_dir=str(out), n_train=16,
                      n_test=8, num_generations=4, prompts_per_step=4,
                      max_new_tokens=8, eval_every=2, eval_k=2, save_every=2,
                      lora_r=4, learning_rate=5e-2, **kw)


def test_corrupt_checkpoint_is_detected_not_loaded(random_tiny_dir,
                                                   tmp_path):
    train(_cfg(random_tiny_dir, tmp_path, max_steps=2), progress=False)
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


def test_no_usable_checkpoint_stops_and_keeps_the_history(random_tiny_dir,
                                                          tmp_path):
    cfg = _cfg(random_tiny_dir, tmp_path, max_steps=4)
    train(cfg, progress=False)
    before = (tmp_path / "metrics.jsonl").read_text()
    for ckpt in tmp_path.glob("ckpt-*"):
        (ckpt / "optimizer.pt").write_bytes(b"truncated")
    logs = []
    with pytest.raises(CheckpointError, match="no checkpoint.*usable.*"
                       "--fresh"):
        train(_cfg(random_tiny_dir, tmp_path, max_steps=6), progress=False,
              log=logs.append)
    assert (tmp_path / "metrics.jsonl").read_text() == before
    assert len(list(tmp_path.glob("ckpt-*"))) == 2  # nothing deleted
    # starting over is the user's call
    r = train(_cfg(random_tiny_dir, tmp_path, max_steps=1), progress=False,
              resume=False)
    assert len(r.metrics) == 1


def _files(folder):
    return {p: p.read_bytes() for p in sorted(folder.rglob("*"))
            if p.is_file()}


def test_a_run_resumes_only_under_the_code_that_made_it(random_tiny_dir,
                                                        tmp_path,
                                                        monkeypatch):
    """Each checkpoint says what made it; a changed selector default (not
    a config field) or an unrecorded maker is refused, writing nothing."""
    from dopr_lite.select import DoPR

    train(_cfg(random_tiny_dir, tmp_path, max_steps=2, selector="dopr"),
          progress=False)
    (ckpt,) = tmp_path.glob("ckpt-*")
    made = json.loads((ckpt / "manifest.json").read_text())["made_by"]
    assert made["selector"] == "dopr" and made["selector_args"]["gamma"] == 0.9
    before = _files(tmp_path)
    defaults = DoPR.__init__.__defaults__
    names = DoPR.__init__.__code__.co_varnames[1:1 + len(defaults)]
    changed = tuple(0.5 if n == "gamma" else d
                    for n, d in zip(names, defaults, strict=True))
    monkeypatch.setattr(DoPR.__init__, "__defaults__", changed)
    with pytest.raises(ConfigError, match=r"(?s)other code.*dopr argument "
                       r"'gamma'.*0\.9 \(saved\) vs 0\.5 \(this code\).*"
                       r"--fresh"):
        train(_cfg(random_tiny_dir, tmp_path, max_steps=4, selector="dopr"),
              progress=False)
    assert _files(tmp_path) == before
    monkeypatch.setattr(DoPR.__init__, "__defaults__", defaults)
    manifest = ckpt / "manifest.json"
    stamped = manifest.read_text()
    manifest.write_text(json.dumps({k: v for k, v in json.loads(
        stamped).items() if k != "made_by"}))  # made before the record
    before = _files(tmp_path)
    with pytest.raises(ConfigError, match="does not say what made it.*"
                       "--fresh"):
        train(_cfg(random_tiny_dir, tmp_path, max_steps=4, selector="dopr"),
              progress=False)
    assert _files(tmp_path) == before
    manifest.write_text(stamped)  # the same code: it resumes
    logs = []
    r = train(_cfg(random_tiny_dir, tmp_path, max_steps=4, selector="dopr"),
              progress=False, log=logs.append)
    assert any("resumed from" in m for m in logs) and len(r.metrics) == 4


def test_another_package_version_is_named(tmp_path, monkeypatch):
    from dopr_lite import checkpoint

    cfg = DoprConfig(out_dir=str(tmp_path)).to_dict()
    (tmp_path / "config.json").write_text(json.dumps(cfg))
    (tmp_path / "ckpt-000001").mkdir()
    made = {**checkpoint.made_by(cfg), "dopr_lite": "0.0.1"}
    (tmp_path / "ckpt-000001" / "manifest.json").write_text(
        json.dumps({"made_by": made}))
    with pytest.raises(ConfigError, match=r"dopr_lite: 0\.0\.1 \(saved\)"):
        checkpoint.check_resumable(tmp_path, cfg)
