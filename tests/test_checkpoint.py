import shutil

import pytest

from dopr_lite.checkpoint import latest_checkpoint, verify_checkpoint
from dopr_lite.config import DoprConfig
from dopr_lite.errors import CheckpointError
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
