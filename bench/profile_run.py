"""Where a run's time goes: start-up, each step's parts, evaluation.

Trains one run (default: Thompson sampling, one prompt of B = 128 a step,
1024 rollouts, evaluated every 8 steps on the 300 held-out problems: the
benchmark's one-prompt run) on one thread, and charges every second to the
innermost phase running (exclusive time): ``startup`` (model and data),
``draw`` (candidate batches), ``select`` (the rule), ``generate`` split
into ``prefill``, ``decode`` (the model's forward passes) and the rest of
``generate`` (sampling, masks, the cache; behaviour log-probs, when
``num_iterations`` > 1, count as its ``prefill``), ``reward``, ``update`` (its
``forward`` and the rest: backward, optimiser), ``evaluation`` (its own
generate and reward), ``checkpoint``, ``logging``; what no phase claims
is ``other``.

It also counts the tokens the run needs (prompt and completion tokens of
every generate call, 3x for the update's forward and backward) and
prices them at the model's matmul FLOPs (2 per weight of every linear
layer) at the speed of a plain matmul loop over the same shapes in this
process (:func:`matmul_gflops`): the run's FLOP floor, the time an
engine with no padding and no per-layer overhead would need.

The hooks wrap functions by name, so the same script profiles an older
checkout (``PYTHONPATH=<checkout> python bench/profile_run.py``), which is
how ``bench/speed.py`` reads both sides.  Writes JSON to ``--out``
(default ``bench/results/profile_run.json``) and prints a table.

    python bench/profile_run.py
    python bench/profile_run.py --selector random --batch 8 --rollouts 256
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

import torch

import dopr_lite
from dopr_lite import evaluation, loop, runlog
from dopr_lite.config import DoprConfig
from dopr_lite.env import versions
from dopr_lite.rewards import get_reward
from dopr_lite.select import make_selector


MISSING = object()  # an attribute the patched owner did not hold itself


class Phases:
    """Exclusive seconds per phase path (``evaluation/generate/decode``):
    time is charged to the innermost phase entered and not yet left."""

    def __init__(self):
        self.seconds = defaultdict(float)
        self.calls = defaultdict(int)
        self.stack: list[str] = []
        self.tokens = defaultdict(int)  # FLOP-floor tokens by kind
        self.patched: list = []  # (owner, attr, original) to put back
        self.hooks: list = []  # forward hooks to remove
        self._t = time.perf_counter()

    def _charge(self) -> None:
        now = time.perf_counter()
        self.seconds["/".join(self.stack) or "other"] += now - self._t
        self._t = now

    def enter(self, name: str) -> None:
        self._charge()
        self.stack.append(name)
        self.calls["/".join(self.stack)] += 1

    def leave(self) -> None:
        self._charge()
        self.stack.pop()

    def wrap(self, owner, attr: str, name: str, after=None) -> None:
        """Time ``owner.attr`` as phase ``name``; ``after(result, args)``
        reads what it returned."""
        inner = getattr(owner, attr)

        def timed(*args, **kwargs):
            self.enter(name)
            try:
                out = inner(*args, **kwargs)
            finally:
                self.leave()
            if after is not None:
                after(out, args, kwargs)
            return out
        self.patch(owner, attr, timed)

    def patch(self, owner, attr: str, value) -> None:
        self.patched.append((owner, attr, owner.__dict__.get(attr, MISSING)))
        setattr(owner, attr, value)

    def restore(self) -> None:
        """Put back every attribute :meth:`patch` replaced (one the owner
        did not hold itself is deleted, uncovering the inherited one) and
        remove the forward hooks."""
        for owner, attr, original in reversed(self.patched):
            if original is MISSING:
                delattr(owner, attr)
            else:
                setattr(owner, attr, original)
        self.patched.clear()
        for hook in self.hooks:
            hook.remove()
        self.hooks.clear()

    def forward_hooks(self, module) -> None:
        """Time ``module``'s forward passes: ``prefill`` or ``decode``
        inside generate (one new token a row: decode), else ``forward``."""
        def pre(mod, args, kwargs):
            ids = kwargs.get("input_ids", args[0] if args else None)
            gen = "generate" in self.stack
            kind = ("forward" if not gen else "decode"
                    if ids is not None and ids.shape[1] == 1 else "prefill")
            self.enter(kind)

        def post(mod, args, kwargs, out):
            self.leave()
        self.hooks += [module.register_forward_pre_hook(pre, with_kwargs=True),
                       module.register_forward_hook(post, with_kwargs=True)]


def linear_shapes(model) -> list[tuple[int, int]]:
    """(in, out) of every matmul a token passes through: the base model's
    linear layers, LoRA's own left out (folded, they cost nothing)."""
    return [(m.in_features, m.out_features) for name, m in
            model.named_modules() if isinstance(m, torch.nn.Linear)
            and "lora_" not in name]


def matmul_gflops(shapes, rows: int = 64, seconds: float = 1.0) -> float:
    """GFLOP/s of a plain loop of ``x @ W.T`` over ``shapes`` with
    ``rows`` rows, in this process (the floor's speed)."""
    weights = [torch.randn(o, i) for i, o in shapes]
    x = {i: torch.randn(rows, i) for i, _ in shapes}
    flops = sum(2 * rows * i * o for i, o in shapes)
    n, t0 = 0, time.perf_counter()
    while time.perf_counter() - t0 < seconds or n < 3:
        for (i, _), w in zip(shapes, weights, strict=True):
            x[i] @ w.T
        n += 1
    return n * flops / (time.perf_counter() - t0) / 1e9


def profile(cfg: DoprConfig) -> dict:
    """Train ``cfg`` under :class:`Phases`; the functions wrapped for it
    are put back afterwards."""
    ph = Phases()
    try:
        return _profile(cfg, ph)
    finally:
        ph.restore()


def _profile(cfg: DoprConfig, ph: Phases) -> dict:
    # what every step and evaluation calls, by the names loop and
    # evaluation import them under
    def count_gen(ro, args, kwargs):
        kind = "eval" if "evaluation" in ph.stack else "train"
        ph.tokens[kind] += int(ro.prompt_mask.sum() + ro.completion_mask.sum())

    def count_update(stats, args, kwargs):
        batch = args[1]
        ph.tokens["update"] += 3 * cfg.num_iterations * int(
            batch.rollouts.attention_mask.sum())

    for mod in (loop, evaluation):
        ph.wrap(mod, "generate_rollouts", "generate", count_gen)
    ph.wrap(loop, "load_inputs", "startup")
    ph.wrap(loop, "candidate_batch", "draw")
    ph.wrap(loop, "feedback", "select")
    ph.wrap(loop, "update", "update", count_update)
    ph.wrap(loop, "evaluate_run", "evaluation")
    ph.wrap(loop, "checkpoint", "checkpoint")
    if hasattr(loop, "prompt_entropy"):
        ph.wrap(loop, "prompt_entropy", "entropy")
    for name in ("add_metrics", "add_eval", "write_csv"):
        ph.wrap(runlog.RunLog, name, "logging")
    selector = make_selector(cfg.selector, **cfg.selector_args)
    for name in ("select", "probes_ahead", "observe_probes"):
        if hasattr(selector, name):
            ph.wrap(selector, name, "select")
    reward = get_reward(cfg.reward)

    def reward_fn(*args, **kwargs):
        ph.enter("reward")
        try:
            return reward(*args, **kwargs)
        finally:
            ph.leave()
    hooked = {}

    def hook_model(policy):
        model = policy.model
        base = model.get_base_model() if hasattr(model, "get_base_model") \
            else model
        if id(base) not in hooked:
            ph.forward_hooks(base)
            hooked[id(base)] = linear_shapes(base)
    inner_start = loop.Run.start.__func__

    def start(cls, cfg, **kwargs):
        run = inner_start(cls, cfg, **kwargs)
        hook_model(run.policy)
        return run
    ph.patch(loop.Run, "start", classmethod(start))
    t0 = time.perf_counter()
    ph._t = t0
    result = loop.train(cfg, selector=selector, reward_fn=reward_fn,
                        progress=False, resume=False, log=lambda *a: None)
    ph._charge()
    total = ph._t - t0
    shapes = next(iter(hooked.values()))
    per_token = sum(2 * i * o for i, o in shapes)
    gflops = matmul_gflops(shapes)
    floor = {k: n * per_token / gflops / 1e9 for k, n in ph.tokens.items()}
    steps = len(result.metrics)
    return {"seconds": total, "steps": steps, "evaluations":
            len(result.evals), "rollouts": result.counter.cost,
            "final_accuracy": result.final_accuracy,
            "phases": dict(sorted(ph.seconds.items())),
            "calls": dict(sorted(ph.calls.items())),
            "floor": {"tokens": dict(ph.tokens), "flop_per_token": per_token,
                      "matmul_gflops": gflops, "seconds": floor,
                      "total_seconds": sum(floor.values())},
            "times_floor": total / sum(floor.values())}


def table(record: dict) -> str:
    """Markdown: seconds per top-level phase and its parts, share of the
    run, per step where the phase runs every step."""
    p, total = record["phases"], record["seconds"]
    lines = ["| phase | seconds | share | per step (ms) |", "|---|---|---|---|"]
    for path, s in sorted(p.items(), key=lambda kv: -kv[1]):
        per = (f"{1000 * s / record['steps']:.1f}"
               if not path.startswith(("evaluation", "startup")) else "")
        lines.append(f"| {path} | {s:.2f} | {s / total:.0%} | {per} |")
    f = record["floor"]
    lines.append(f"| **total** | {total:.2f} | 100% | |")
    lines.append(f"| FLOP floor ({f['matmul_gflops']:.1f} GFLOP/s) | "
                 f"{f['total_seconds']:.2f} | {record['times_floor']:.1f}x "
                 "over it | |")
    return "\n".join(lines)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--selector", default="thompson")
    ap.add_argument("--batch", type=int, default=128)
    ap.add_argument("--rollouts", type=int, default=1024)
    ap.add_argument("--eval-every", type=int, default=8)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", default="bench/results/profile_run.json")
    args = ap.parse_args(argv)
    torch.set_num_threads(1)
    with tempfile.TemporaryDirectory() as tmp:
        cfg = DoprConfig(selector=args.selector, prompts_per_step=args.batch,
                         max_rollouts=args.rollouts, eval_k=0,
                         eval_every=args.eval_every, save_every=0,
                         seed=args.seed, out_dir=tmp)
        record = profile(cfg)
    record.update(command="python bench/profile_run.py " + " ".join(
        sys.argv[1:] if argv is None else argv), package=str(
        Path(dopr_lite.__file__).parent), versions=versions(),
        config=cfg.to_dict())
    print(table(record))
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(json.dumps(record, indent=1) + "\n")
        print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
