"""The training loop: select -> roll out -> reward -> advantages -> update.

One loop serves every selection rule.  Each step draws a candidate batch of
``prompts_per_step`` prompt indices (epoch-wise without replacement), the
:class:`~dopr_lite.select.Selector` picks which get ``G`` rollouts, and the
GRPO update runs on those.  Budgets are in steps and/or rollouts.

Reproducibility: every step reseeds torch from ``(seed, step)`` and the
candidate draw is a pure function of ``(seed, step)``, so a resumed run
replays the uninterrupted one; evaluation samples under ``fork_rng`` with
its own seed, so it never changes the training trajectory.

Outputs in ``cfg.out_dir``: ``config.json``, ``metrics.jsonl`` (one row per
step), ``eval.jsonl`` (one row per evaluation), ``metrics.csv``,
``run.png`` and ``ckpt-NNNNNN/`` checkpoints (trainable weights as
safetensors, optimizer, loop state, and a manifest with SHA-256 digests
written last; a directory is renamed into place only when complete).
"""

from __future__ import annotations

import contextlib
import csv
import hashlib
import json
import math
import os
import random
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path

import torch

from dopr_lite.config import ConfigError, DoprConfig
from dopr_lite.data import PromptData, load_prompts
from dopr_lite.env import peak_memory_gb, reset_peak_memory
from dopr_lite.evaluate import evaluate
from dopr_lite.grpo import group_advantages, grpo_update, zero_std_fraction
from dopr_lite.policy import Policy, load_policy
from dopr_lite.rewards import get_reward
from dopr_lite.rollout import (RolloutCounter, concat_rollouts,
                               generate_rollouts, prompt_entropy,
                               select_groups)
from dopr_lite.select import (PromptHistory, SelectContext, Selector,
                              make_selector)


class CheckpointError(RuntimeError):
    """A checkpoint is incomplete or corrupt; it is reported, not loaded."""


class NonFiniteError(RuntimeError):
    """The policy keeps producing NaN/inf; the message names the knobs."""


MAX_NONFINITE_STEPS = 3  # consecutive NaN/inf steps before giving up


class OutOfMemory(RuntimeError):
    """The device ran out of memory; the message names the knobs to turn."""


@contextlib.contextmanager
def _oom_advice(cfg: DoprConfig, phase: str):
    """Turn an out-of-memory error into one that says what to change."""
    try:
        yield
    except torch.OutOfMemoryError as err:
        knobs = [f"num_generations={cfg.num_generations} (G)",
                 f"max_new_tokens={cfg.max_new_tokens}",
                 f"micro_batch={cfg.micro_batch}",
                 f"lora_r={cfg.lora_r} (needs --fresh)"]
        if phase == "evaluation":
            knobs = [f"eval_batch={cfg.eval_batch}",
                     f"eval_k={cfg.eval_k}"] + knobs[1:2]
        elif cfg.selector in ("full", "dynamic"):
            knobs.insert(0, f"prompts_per_step={cfg.prompts_per_step}")
        if not cfg.gradient_checkpointing and phase == "update":
            knobs.append("gradient_checkpointing=True")
        if not cfg.load_in_4bit:
            knobs.append("load_in_4bit=True")
        used = ""
        if torch.cuda.is_available():
            total = torch.cuda.get_device_properties(0).total_memory
            used = (f" (peak {torch.cuda.max_memory_allocated() / 1e9:.1f} "
                    f"of {total / 1e9:.1f} GB)")
        raise OutOfMemory(
            f"out of device memory during the {phase}{used}. Lower one of: "
            f"{', '.join(knobs)}; e.g. `--set micro_batch=1`. The last "
            "checkpoint is intact: run again to resume.") from err


def _fault(point: str, step: int) -> bool:
    """Crash-test hook: True where ``$DOPR_FAULT`` is ``point:step``.

    The reliability tests set it to SIGKILL a run at an exact place (half
    way through a checkpoint or a metrics line); unset, it costs nothing.
    """
    return os.environ.get("DOPR_FAULT") == f"{point}:{step}"


def _is_nonfinite(err: RuntimeError) -> bool:
    """torch.multinomial's complaint about NaN/inf sampling probabilities."""
    return "probability tensor contains either `inf`, `nan`" in str(err)


@contextlib.contextmanager
def _stop_after_step(log):
    """Ctrl-C finishes the current step, then the loop checkpoints and stops
    (a second Ctrl-C stops at once, losing only the current step).  Yields a
    function that tells whether Ctrl-C was pressed.  Off the main thread
    signals cannot be caught, and Ctrl-C behaves as usual."""
    import signal
    import threading

    if threading.current_thread() is not threading.main_thread():
        yield lambda: False
        return
    hits = []

    def handler(signum, frame):
        hits.append(signum)
        if len(hits) > 1:
            raise KeyboardInterrupt
        log("\ninterrupted: finishing this step and saving a checkpoint "
            "(Ctrl-C again to stop at once)")

    old = signal.signal(signal.SIGINT, handler)
    try:
        yield lambda: bool(hits)
    finally:
        signal.signal(signal.SIGINT, old)


def _die() -> None:
    import signal

    os.kill(os.getpid(), signal.SIGKILL)


def candidate_batch(step: int, pool: int, size: int, seed: int) -> list[int]:
    """Prompt indices for ``step``: epoch-wise permutations of the pool.

    A pool smaller than ``size`` repeats within a batch, as one-shot RLVR
    duplicates its single example to fill the batch (Wang et al. 2025).
    """
    out, start = [], step * size
    for q in range(start, start + size):
        epoch, pos = divmod(q, pool)
        perm = list(range(pool))
        random.Random(f"{seed}:epoch:{epoch}").shuffle(perm)
        out.append(perm[pos])
    return out


def step_seed(seed: int, step: int) -> int:
    return (seed * 1_000_003 + step * 7_919 + 17) % (2**63 - 1)


# --- checkpoints ------------------------------------------------------------

def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def save_checkpoint(out_dir: Path, step: int, policy: Policy, optimizer,
                    state: dict, keep: int = 2) -> Path:
    """Write ``ckpt-<step>`` atomically: temp dir, manifest last, rename.

    The ``keep`` newest are kept, so a checkpoint damaged on disk later
    still leaves an older one to resume from.
    """
    from safetensors.torch import save_file

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
    save_file(weights, tmp / "trainable.safetensors")
    if _fault("checkpoint", step):
        _die()
    torch.save(optimizer.state_dict(), tmp / "optimizer.pt")
    (tmp / "state.json").write_text(json.dumps(state))
    files = ["trainable.safetensors", "optimizer.pt", "state.json"]
    manifest = {"step": step, "sha256": {f: _sha256(tmp / f) for f in files}}
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


def load_checkpoint(path: Path, policy: Policy, optimizer) -> dict:
    from safetensors.torch import load_file

    verify_checkpoint(path)
    weights = load_file(path / "trainable.safetensors")
    params = policy.trainable_parameters()
    if set(weights) != set(params):
        raise CheckpointError(f"{path}: trainable parameters differ from the "
                              "model's (different LoRA config?)")
    with torch.no_grad():
        for name, value in weights.items():
            params[name].copy_(value.to(params[name].device))
    try:  # weights_only: tensors and plain containers, never code
        opt_state = torch.load(path / "optimizer.pt", weights_only=True)
    except Exception as err:  # torch raises UnpicklingError and others
        raise CheckpointError(f"{path / 'optimizer.pt'}: refused to load "
                              f"({type(err).__name__}); it holds more than "
                              "tensors") from err
    optimizer.load_state_dict(opt_state)
    return json.loads((path / "state.json").read_text())


# --- the loop ---------------------------------------------------------------

@dataclass
class RunResult:
    out_dir: Path
    metrics: list = field(default_factory=list)  # one row per step
    evals: list = field(default_factory=list)  # one row per evaluation
    counter: RolloutCounter = field(default_factory=RolloutCounter)
    seconds: float = 0.0

    @property
    def base_accuracy(self) -> float:
        return self.evals[0]["accuracy"]

    @property
    def final_accuracy(self) -> float:
        return self.evals[-1]["accuracy"]


def _read_jsonl(path: Path, max_step: int, log=print) -> list[dict]:
    """Rows up to ``max_step``; a torn line (a crash mid-write) is dropped."""
    if not path.is_file():
        return []
    rows = []
    for n, line in enumerate(path.read_text().splitlines(), 1):
        try:
            rows.append(json.loads(line))
        except ValueError:
            if line.strip():
                log(f"warning: {path}: line {n} is incomplete (a crash "
                    "mid-write); dropped")
    return [r for r in rows if r["step"] <= max_step]


def _write_jsonl(path: Path, rows: list[dict]) -> None:
    tmp = path.with_suffix(".tmp")
    tmp.write_text("".join(json.dumps(r) + "\n" for r in rows))
    os.replace(tmp, path)


def _append(path: Path, row: dict) -> None:
    line = json.dumps(row) + "\n"
    with open(path, "a") as fh:
        if _fault(path.stem, row["step"]):  # a torn line, then death
            fh.write(line[:len(line) // 2])
            fh.flush()
            _die()
        fh.write(line)


def write_csv(path: Path, rows: list[dict]) -> None:
    keys = list(dict.fromkeys(k for r in rows for k in r))
    with open(path, "w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=keys)
        w.writeheader()
        w.writerows(rows)


def _budget_left(cfg: DoprConfig, step: int, counter: RolloutCounter):
    if cfg.max_steps and step >= cfg.max_steps:
        return False
    if cfg.max_rollouts and counter.cost >= cfg.max_rollouts:
        return False
    return True


def _gather_batch(cfg: DoprConfig, selector: Selector, ctx: SelectContext,
                  rollout, pool_size: int, pad_id: int):
    """Select, roll out and score one step's batch.

    Returns the rollouts to train on (``None`` when no group is left), their
    (prompts, G) rewards, and what was generated in total (for logging).
    Rules with ``drop_zero_std`` (DAPO's dynamic sampling) drop all-equal
    groups and draw further candidate batches until ``prompts_per_step``
    groups are kept or ``max_draws`` batches were drawn; every rollout
    generated counts as cost.
    """
    parts, kept, seen = [], [], {"prompts": [], "rewards": [],
                                 "length": [], "truncated": []}
    draws = selector.max_draws if selector.drop_zero_std else 1
    for draw in range(draws):
        candidates = candidate_batch(ctx.step, pool_size,
                                     cfg.prompts_per_step,
                                     cfg.seed + 7_919 * draw)
        chosen = selector.select(candidates, ctx)
        ro, rewards = rollout(chosen, ctx)
        seen["prompts"] += chosen
        seen["rewards"].append(rewards)
        seen["length"] += ro.completion_mask.sum(1).tolist()
        seen["truncated"] += ro.truncated.tolist()
        keep = list(range(len(chosen)))
        if selector.drop_zero_std:
            keep = [g for g in keep if rewards[g].max() > rewards[g].min()]
            keep = keep[:cfg.prompts_per_step - sum(map(len, kept))]
        if keep:
            parts.append(select_groups(ro, keep) if len(keep) < len(chosen)
                         else ro)
            kept.append(rewards[keep])
        if sum(map(len, kept)) >= cfg.prompts_per_step:
            break
    seen["rewards"] = torch.cat(seen["rewards"])
    seen["length"] = sum(seen["length"]) / len(seen["length"])
    seen["truncated"] = sum(seen["truncated"]) / len(seen["truncated"])
    if not parts:
        return None, seen["rewards"], seen
    ro = concat_rollouts(parts, pad_id)
    return ro, torch.cat(kept), seen


def _metrics_row(step: int, counter: RolloutCounter, seen, ro, rewards,
                 stats: dict, seconds: float, previous: list) -> dict:
    """One metrics.jsonl row; ``seen`` is None when generation failed."""
    prev = previous[-1] if previous else {}
    seen = seen or {"prompts": [], "rewards": torch.full((1, 1), math.nan),
                    "length": 0.0, "truncated": 0.0}
    return {"step": step, "rollouts": counter.cost,
            "tokens": counter.cost_tokens,
            "probe_rollouts": counter.sequences["probe"],
            "prompts": len(seen["prompts"]),
            "trained_prompts": 0 if ro is None else len(rewards),
            "picked": seen["prompts"][:8],
            "reward_mean": seen["rewards"].mean().item(),
            "frac_reward_zero_std": zero_std_fraction(seen["rewards"]),
            "completion_length": seen["length"],
            "truncated_frac": seen["truncated"],
            **stats, "seconds": seconds,
            "updates": prev.get("updates", 0) + (not stats["skipped"]),
            "train_seconds": prev.get("train_seconds", 0.0) + seconds}


def train(cfg: DoprConfig, *, policy: Policy | None = None,
          data: PromptData | None = None, reward_fn=None,
          selector: Selector | None = None, resume: bool = True,
          progress: bool = True, log=print, figure: bool = True,
          shuffle_rewards: bool = False) -> RunResult:
    """Run GRPO with ``cfg.selector`` until the budget is spent.

    ``shuffle_rewards`` permutes each batch's rewards across rollouts before
    the update (a control that should learn nothing).
    """
    if not (cfg.max_steps or cfg.max_rollouts):
        raise ConfigError("set a budget: config field 'max_steps' or "
                          "'max_rollouts' must be > 0")
    t_start = time.time()
    out = Path(cfg.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    cfg.save(out / "config.json")
    policy = policy or load_policy(cfg)
    model, tok = policy.model, policy.tokenizer
    data = data or load_prompts(cfg, tok)
    for reason, info in data.skipped.items():
        log(f"skipped {info['count']} rows ({reason}); first ids "
            f"{info['first_ids']}")
    reward_fn = reward_fn or get_reward(cfg.reward)
    selector = selector or make_selector(cfg.selector, **cfg.selector_args)
    params = list(policy.trainable_parameters().values())
    if not params:
        raise ConfigError("the model has no trainable parameters")
    opt = torch.optim.AdamW(params, lr=cfg.learning_rate,
                            weight_decay=cfg.weight_decay)
    counter, history = RolloutCounter(), PromptHistory()
    G = cfg.num_generations
    pool = data.train
    columns = [c for c in pool.column_names if c != "prompt"]
    step, elapsed = 0, 0.0
    result = RunResult(out_dir=out, counter=counter)

    for stale in out.glob(".tmp-ckpt-*"):  # a crash mid-checkpoint
        shutil.rmtree(stale, ignore_errors=True)
    ckpt = latest_checkpoint(out, log) if resume else None
    if ckpt is not None:
        state = load_checkpoint(ckpt, policy, opt)
        step, elapsed = state["step"], state["elapsed"]
        counter.load_state_dict(state["counter"])
        history.load_state_dict(state["history"])
        selector.load_state_dict(state["selector"])
        log(f"resumed from {ckpt} (step {step}, {counter.cost} rollouts)")
    else:
        for stale in ("metrics.jsonl", "eval.jsonl"):
            (out / stale).unlink(missing_ok=True)
    # rows written after the checkpoint belong to a run that crashed
    result.metrics = _read_jsonl(out / "metrics.jsonl", step, log)
    result.evals = _read_jsonl(out / "eval.jsonl", step, log)
    _write_jsonl(out / "metrics.jsonl", result.metrics)
    _write_jsonl(out / "eval.jsonl", result.evals)

    def evaluate_(*args, **kwargs):
        with _oom_advice(cfg, "evaluation"):
            return evaluate(*args, **kwargs)

    def run_eval():
        last = result.metrics[-1] if result.metrics else {}
        row = {"step": step, "rollouts": counter.cost,
               "updates": last.get("updates", 0),
               "train_seconds": last.get("train_seconds", 0.0),
               **evaluate_(model, tok, data.test, reward_fn, k=cfg.eval_k,
                          max_new_tokens=cfg.max_new_tokens,
                          temperature=cfg.temperature,
                          batch_size=cfg.eval_batch, seed=cfg.seed + 10_007,
                          counter=counter)}
        result.evals.append(row)
        _append(out / "eval.jsonl", row)
        return row

    def probe(indices: list[int], n: int) -> torch.Tensor:
        ro = generate_rollouts(
            model, tok, [pool[i]["prompt"] for i in indices], n,
            max_new_tokens=cfg.max_new_tokens, temperature=cfg.temperature,
            top_p=cfg.top_p, top_k=cfg.top_k, counter=counter, kind="probe")
        cols = {c: [pool[i][c] for i in indices for _ in range(n)]
                for c in columns}
        return torch.tensor(reward_fn(ro.texts, **cols)).view(len(indices), n)

    def entropy(indices: list[int]) -> torch.Tensor:
        return prompt_entropy(model, tok, [pool[i]["prompt"] for i in indices],
                              cfg.temperature)

    def rollout(indices: list[int], ctx: SelectContext):
        """G train rollouts per prompt, scored, recorded, told the rule."""
        ro = generate_rollouts(
            model, tok, [pool[i]["prompt"] for i in indices], G,
            max_new_tokens=cfg.max_new_tokens, temperature=cfg.temperature,
            top_p=cfg.top_p, top_k=cfg.top_k, counter=counter, kind="train",
            with_logprobs=cfg.num_iterations > 1, micro_batch=cfg.micro_batch)
        cols = {c: [pool[i][c] for i in indices for _ in range(G)]
                for c in columns}
        rewards = torch.tensor(reward_fn(ro.texts, **cols),
                               dtype=torch.float32).view(len(indices), G)
        for i, r in zip(indices, rewards, strict=True):
            history.record(i, r.tolist(), ctx.step)
        selector.update(indices, rewards, ctx)
        return ro, rewards

    def update(ro, adv) -> dict:
        """GRPO's num_iterations updates on one batch of rollouts."""
        with _oom_advice(cfg, "update"):
            for _ in range(cfg.num_iterations):
                stats = grpo_update(
                    model, opt, ro, adv, loss_type=cfg.loss_type,
                    max_new_tokens=cfg.max_new_tokens, beta=cfg.beta,
                    entropy_coef=cfg.entropy_coef, eps_low=cfg.epsilon,
                    eps_high=cfg.epsilon_high, temperature=cfg.temperature,
                    micro_batch=cfg.micro_batch,
                    max_grad_norm=cfg.max_grad_norm, trainable=params)
        return stats

    def checkpoint():
        state = {"step": step, "elapsed": elapsed + time.time() - t_start,
                 "counter": counter.state_dict(),
                 "history": history.state_dict(),
                 "selector": selector.state_dict()}
        save_checkpoint(out, step, policy, opt, state)

    if not result.evals:
        run_eval()
    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=cfg.max_rollouts or cfg.max_steps, initial=(
            counter.cost if cfg.max_rollouts else step),
            desc="rollouts" if cfg.max_rollouts else "steps",
            unit="ro" if cfg.max_rollouts else "step")
    nonfinite = 0  # consecutive steps with NaN/inf
    with _stop_after_step(log) as interrupted:
        while _budget_left(cfg, step, counter):
            t0 = time.time()
            torch.manual_seed(step_seed(cfg.seed, step))
            ctx = SelectContext(step=step, history=history,
                                num_generations=G, seed=cfg.seed,
                                probe=probe, entropy=entropy)
            cost_before = counter.cost
            stats: dict = {"skipped": "all groups have zero reward variance"}
            reset_peak_memory()
            try:
                with _oom_advice(cfg, "rollouts"):
                    ro, rewards, seen = _gather_batch(
                        cfg, selector, ctx, rollout, len(pool),
                        tok.pad_token_id)
            except RuntimeError as err:
                if not _is_nonfinite(err):
                    raise
                ro, rewards, seen = None, None, None
                stats["skipped"] = f"non-finite logits in generation ({err})"
            t_update = time.time()
            if ro is not None:
                if shuffle_rewards:
                    perm = torch.randperm(rewards.numel())
                    adv = group_advantages(
                        rewards.view(-1)[perm].view_as(rewards),
                        cfg.scale_rewards).view(-1)
                else:
                    adv = group_advantages(rewards, cfg.scale_rewards
                                           ).view(-1)
                if adv.abs().max() > 0:
                    stats = update(ro, adv)
            timing = {"rollout_seconds": t_update - t0,
                      "update_seconds": time.time() - t_update,
                      "peak_memory_gb": peak_memory_gb()}
            step += 1
            row = _metrics_row(step, counter, seen, ro, rewards,
                               {**stats, **timing}, time.time() - t0,
                               result.metrics)
            result.metrics.append(row)
            _append(out / "metrics.jsonl", row)
            if "finite" in row["skipped"]:  # zero-variance skips are routine
                log(f"step {step}: update skipped ({row['skipped']})")
                nonfinite += 1
                if nonfinite >= MAX_NONFINITE_STEPS:
                    raise NonFiniteError(
                        f"{nonfinite} steps in a row produced NaN/inf "
                        f"({row['skipped']}); the weights are unchanged "
                        "since the last good step. Lower learning_rate or "
                        "max_grad_norm, or load in bfloat16/float32 rather "
                        "than float16 (config field 'dtype')")
            else:
                nonfinite = 0
            if bar is not None:
                bar.update(counter.cost - cost_before if cfg.max_rollouts
                           else 1)
                bar.set_postfix(reward=f"{row['reward_mean']:.2f}",
                                acc=f"{result.evals[-1]['accuracy']:.3f}")
            if step % cfg.eval_every == 0:
                run_eval()
            if cfg.save_every and step % cfg.save_every == 0:
                checkpoint()
            if interrupted():
                if bar is not None:
                    bar.close()
                checkpoint()
                log(f"checkpoint saved at step {step} in {out}; run again "
                    "to resume")
                raise KeyboardInterrupt
    if bar is not None:
        bar.close()
    if result.evals[-1]["step"] != step:
        run_eval()
    checkpoint()
    result.seconds = elapsed + time.time() - t_start
    write_csv(out / "metrics.csv", result.metrics)
    if figure and result.metrics:
        from dopr_lite.plots import plot_run

        plot_run(result, out / "run.png")
    return result


def summary_table(results: dict[str, RunResult]) -> str:
    """A short text table: base/final accuracy, gain, rollouts, time."""
    head = (f"{'run':<14}{'base acc':>9}{'final acc':>10}{'gain':>7}"
            f"{'pass@k':>8}{'rollouts':>10}{'tokens':>9}{'steps':>6}"
            f"{'time s':>8}")
    lines = [head, "-" * len(head)]
    for name, r in results.items():
        last = r.evals[-1]
        pk = next((v for k, v in last.items() if k.startswith("pass@")),
                  float("nan"))
        lines.append(
            f"{name:<14}{r.base_accuracy:>9.3f}{r.final_accuracy:>10.3f}"
            f"{r.final_accuracy - r.base_accuracy:>+7.3f}{pk:>8.3f}"
            f"{r.counter.cost:>10d}{r.counter.cost_tokens:>9d}"
            f"{len(r.metrics):>6d}{r.seconds:>8.1f}")
    return "\n".join(lines)
