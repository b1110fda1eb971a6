"""Checkpoints: an on-disk format that a crash cannot corrupt, and resume.

A checkpoint ``ckpt-NNNNNN/`` (the step, zero-padded) holds

* ``trainable.safetensors``: the trainable weights (LoRA adapters);
* ``optimizer.pt``: the optimizer's state, loaded with
  ``weights_only=True`` (tensors and plain containers, never code);
* ``state.json``: the loop's state (step, time, rollout counts, prompt
  history, the selector's state);
* ``manifest.json``: the SHA-256 digest of each file, written last, and
  what made the checkpoint (:func:`made_by`).

It is written to a temp folder, flushed to disk and renamed into place, so
a ``ckpt-*`` folder is always complete; a damaged one fails its digests and
is reported, never loaded.  The two newest are kept, so one damaged later
still leaves one to resume from.

Resuming is safe by construction: a run folder resumes only the run it
holds (:func:`check_resumable` refuses other settings, another package
version or other selector defaults), and a folder whose
checkpoints are all damaged stops the run rather than starting over on its
own (:func:`restore`); starting over is always the user's explicit choice.
"""

from __future__ import annotations

import hashlib
import inspect
import json
import os
import shutil
from importlib.metadata import version
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

from dopr_lite.config import DoprConfig
from dopr_lite.errors import CheckpointError, ConfigError
from dopr_lite.faults import die, fault
from dopr_lite.select import SELECTORS

FILES = ("trainable.safetensors", "optimizer.pt", "state.json")
# config fields a resumed run may change: its budget, when it evaluates and
# saves, and notes; any other difference makes it another run
RESUMABLE_CHANGES = ("max_steps", "max_rollouts", "eval_every", "eval_batch",
                     "save_every", "out_dir", "extra")
FRESH = "--fresh (in Python: train(..., resume=False))"


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def made_by(config: dict) -> dict:
    """What makes a run besides its config (a :meth:`DoprConfig.to_dict`):
    the package version and every argument of its selector, defaults
    included, since a default is not a config field and may change."""
    bound = inspect.signature(SELECTORS[config["selector"]]).bind(
        **config["selector_args"])
    bound.apply_defaults()
    return json.loads(json.dumps({  # as it reads back from the manifest
        "dopr_lite": version("dopr_lite"), "selector": config["selector"],
        "selector_args": bound.arguments}))


def _made_by_differences(saved: dict, now: dict) -> list[str]:
    saved_args, now_args = saved["selector_args"], now["selector_args"]
    return ([f"  package dopr_lite: {saved['dopr_lite']} (saved) vs "
             f"{now['dopr_lite']} (this code)"]
            * (saved["dopr_lite"] != now["dopr_lite"])) + [
        f"  {now['selector']} argument {k!r} (a default unless in "
        f"selector_args): {json.dumps(saved_args.get(k))} (saved) vs "
        f"{json.dumps(now_args.get(k))} (this code)"
        for k in dict.fromkeys([*saved_args, *now_args])
        if saved_args.get(k) != now_args.get(k)]


def save_checkpoint(out_dir: Path, step: int, policy, optimizer,
                    state: dict, keep: int = 2) -> Path:
    """Write ``ckpt-<step>`` atomically: temp dir, manifest last, rename;
    keep the ``keep`` newest.  The manifest records what made it
    (:func:`made_by` of the run's ``config.json`` in ``out_dir``)."""
    out_dir = Path(out_dir)
    final = out_dir / f"ckpt-{step:06d}"
    tmp = out_dir / f".tmp-ckpt-{step:06d}-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    weights = {n: p.detach().cpu().contiguous()
               for n, p in policy.trainable_parameters().items()}
    bad = [n for n, w in weights.items() if not torch.isfinite(w).all()]
    if bad:  # the update skips non-finite steps, so this is a bug
        shutil.rmtree(tmp, ignore_errors=True)
        raise CheckpointError(f"refusing to save non-finite weights: {bad}")
    save_file(weights, tmp / FILES[0])
    if fault("checkpoint", step):
        die()
    torch.save(optimizer.state_dict(), tmp / FILES[1])
    (tmp / FILES[2]).write_text(json.dumps(state))
    manifest = {"step": step, "sha256": {f: _sha256(tmp / f) for f in FILES}}
    config = out_dir / "config.json"
    if config.is_file():  # a run's checkpoint (not a bare one)
        manifest["made_by"] = made_by(json.loads(config.read_text()))
    (tmp / "manifest.json").write_text(json.dumps(manifest))
    for f in tmp.iterdir():  # flush to disk before the rename
        with open(f, "rb") as fh:
            os.fsync(fh.fileno())
    shutil.rmtree(final, ignore_errors=True)
    os.replace(tmp, final)
    for old in sorted(out_dir.glob("ckpt-*"))[:-keep]:
        shutil.rmtree(old, ignore_errors=True)
    return final


def verify_checkpoint(path: Path) -> dict:
    """The manifest, if every file matches its digest; else raise."""
    mpath = path / "manifest.json"
    if not mpath.is_file():
        raise CheckpointError(f"{path}: no manifest.json (incomplete write)")
    try:
        manifest = json.loads(mpath.read_text())
        digests = manifest["sha256"]
    except (ValueError, KeyError) as err:
        raise CheckpointError(f"{mpath}: unreadable manifest") from err
    for name, digest in digests.items():
        f = path / name
        if not f.is_file() or _sha256(f) != digest:
            raise CheckpointError(f"{f}: missing or corrupt (digest differs)")
    return manifest


def latest_checkpoint(out_dir: Path, log=print) -> Path | None:
    """The newest complete checkpoint; corrupt ones are reported, skipped."""
    for path in sorted(Path(out_dir).glob("ckpt-*"), reverse=True):
        try:
            verify_checkpoint(path)
            return path
        except CheckpointError as err:
            log(f"warning: skipping checkpoint: {err}")
    return None


def load_checkpoint(path: Path, policy, optimizer) -> dict:
    """Load weights and optimizer state into place; return the loop state."""
    verify_checkpoint(path)
    weights = load_file(path / FILES[0])
    params = policy.trainable_parameters()
    if set(weights) != set(params):
        raise CheckpointError(f"{path}: trainable parameters differ from the "
                              "model's (different LoRA config?)")
    with torch.no_grad():
        for name, value in weights.items():
            params[name].copy_(value.to(params[name].device))
    try:  # weights_only: tensors and plain containers, never code
        opt_state = torch.load(path / FILES[1], weights_only=True)
    except Exception as err:  # torch raises UnpicklingError and others
        raise CheckpointError(f"{path / FILES[1]}: refused to load "
                              f"({type(err).__name__}); it holds more than "
                              "tensors") from err
    optimizer.load_state_dict(opt_state)
    return json.loads((path / FILES[2]).read_text())


def check_resumable(out_dir: Path, config: dict) -> None:
    """Refuse to resume a different run: if ``out_dir`` holds checkpoints
    of a run whose saved ``config.json`` differs from ``config`` (a
    :meth:`DoprConfig.to_dict`) in a field that changes the run, or that
    were made by another package version or with other selector defaults
    (:func:`made_by`), or by code too old to say, raise ConfigError
    listing each difference (saved vs now) and the ways out.  Writes
    nothing."""
    out_dir = Path(out_dir)
    saved_path = out_dir / "config.json"
    if not (saved_path.is_file() and any(out_dir.glob("ckpt-*"))):
        return
    try:
        saved = json.loads(saved_path.read_text())
    except ValueError as err:
        raise CheckpointError(f"{saved_path}: unreadable ({err}); {FRESH} "
                              "starts the run over") from err
    # a field newer than the saved run had its default value there
    saved = {**DoprConfig().to_dict(), **saved}
    differ = [f"  {k}: {json.dumps(saved.get(k))} (saved) vs "
              f"{json.dumps(v)} (requested)" for k, v in config.items()
              if k not in RESUMABLE_CHANGES and saved.get(k) != v]
    if differ:
        raise ConfigError(
            f"{out_dir} holds a run with other settings, which would be "
            "resumed as if they were the same:\n" + "\n".join(differ)
            + f"\nStart that run over with {FRESH}, or give this one "
            "another --out (config field 'out_dir').")
    now = made_by(config)
    for path in sorted(out_dir.glob("ckpt-*")):
        try:
            stamp = json.loads((path / "manifest.json").read_text())
        except (OSError, ValueError):  # damaged: restore reports it
            continue
        if "made_by" not in stamp:
            raise ConfigError(
                f"{path} does not say what made it (it predates that "
                "record), so it may hold a run with other selector "
                f"defaults. Start that run over with {FRESH}, or give this "
                "one another --out (config field 'out_dir').")
        differ = _made_by_differences(stamp["made_by"], now)
        if differ:
            raise ConfigError(
                f"{path} was made by other code, and the run would go on "
                "as if it were the same:\n" + "\n".join(differ)
                + f"\nStart that run over with {FRESH}, or give this one "
                "another --out (config field 'out_dir').")


def discard(out_dir: Path) -> None:
    """Remove every checkpoint in ``out_dir``: a run started over must never
    be resumed from the run it replaced."""
    for path in Path(out_dir).glob("*ckpt-*"):
        shutil.rmtree(path, ignore_errors=True)


def restore(out_dir: Path, policy, optimizer, log=print) -> dict | None:
    """Resume from the newest usable checkpoint in ``out_dir``: load it
    and return the loop state, or None if there is none.  Temp folders of
    a crash mid-checkpoint are removed first; if every checkpoint is
    damaged, raise rather than start over (which would drop the run's
    history)."""
    out_dir = Path(out_dir)
    for stale in out_dir.glob(".tmp-ckpt-*"):
        shutil.rmtree(stale, ignore_errors=True)
    path = latest_checkpoint(out_dir, log)
    if path is None:
        found = len(list(out_dir.glob("ckpt-*")))
        if found:
            raise CheckpointError(
                f"no checkpoint in {out_dir} is usable ({found} found, all "
                f"damaged: see the warnings above). {FRESH} starts the run "
                "over, replacing its checkpoints and logs.")
        return None
    return {**load_checkpoint(path, policy, optimizer), "path": str(path)}
