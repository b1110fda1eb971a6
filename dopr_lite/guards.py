"""What can go wrong in a long run, and what the loop does about it.

Each guard is one line in the loop:

* :func:`oom_advice`: an out-of-memory error becomes :class:`OutOfMemory`,
  naming the knobs to turn with their current values;
* :class:`NonFiniteStreak`: a step with NaN/inf is skipped (the row says
  why); ``MAX_NONFINITE_STEPS`` in a row stop the run with the knobs;
* :func:`stop_after_step`: Ctrl-C finishes the current step, then the loop
  checkpoints and stops (a second Ctrl-C stops at once).
"""

from __future__ import annotations

import contextlib
import signal
import threading

import torch

from dopr_lite.errors import NonFiniteError, OutOfMemory
from dopr_lite.select import Shape

MAX_NONFINITE_STEPS = 3  # consecutive NaN/inf steps before giving up


@contextlib.contextmanager
def oom_advice(cfg, phase: str, shape: Shape):
    """Turn an out-of-memory error in ``phase`` ("rollouts", "update",
    "evaluation") into one that says what to change."""
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
        elif shape.picks is None:  # every candidate is rolled out
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


class NonFiniteStreak:
    """Counts consecutive steps that met NaN/inf (``row["nonfinite"]``)."""

    def __init__(self, limit: int = MAX_NONFINITE_STEPS):
        self.limit, self.count = limit, 0

    def check(self, row: dict, log=print) -> None:
        if not row["nonfinite"]:
            self.count = 0
            return
        log(f"step {row['step']}: update skipped ({row['skipped']})")
        self.count += 1
        if self.count >= self.limit:
            raise NonFiniteError(
                f"{self.count} steps in a row produced NaN/inf "
                f"({row['skipped']}); the weights are unchanged since the "
                "last good step. Lower learning_rate or max_grad_norm, or "
                "load in bfloat16/float32 rather than float16 (config field "
                "'dtype')")


@contextlib.contextmanager
def stop_after_step(log=print):
    """Yield a function that tells whether Ctrl-C was pressed.

    The first Ctrl-C only sets the flag (the loop finishes the step,
    checkpoints and stops); a second raises KeyboardInterrupt at once,
    losing only the current step.  Off the main thread signals cannot be
    caught, and Ctrl-C behaves as usual.
    """
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
