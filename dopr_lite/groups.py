"""What a training step generates: requests for rollouts, scored groups,
the step's groups (seen, trained on, probed), and the metrics they make
(:func:`rollout_stats`, the part of a ``metrics.jsonl`` row that describes
the rollouts and the calls that made them)."""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

from dopr_lite.grpo import zero_std_fraction
from dopr_lite.rollout import Rollouts, select_groups


@dataclass(frozen=True)
class Request:
    """``per_prompt`` rollouts of each of ``prompts`` (pool indices),
    counted as ``kind`` (:data:`~dopr_lite.rollout.KINDS`)."""

    prompts: list[int]
    per_prompt: int
    kind: str


@dataclass
class Groups:
    """``G`` scored rollouts for each of ``prompts`` (pool indices)."""

    prompts: list[int]
    rollouts: Rollouts
    rewards: torch.Tensor  # (len(prompts), G)

    def subset(self, keep: list[int]) -> "Groups":
        if len(keep) == len(self.prompts):
            return self
        return Groups([self.prompts[g] for g in keep],
                      select_groups(self.rollouts, keep), self.rewards[keep])


@dataclass
class StepRollouts:
    """What a step generated: every group (``seen``, each scored), the
    groups it trains on (``batch``; None if none is left) and the probes its
    rule asked for on the next step's candidates (``probed``; None if
    none)."""

    seen: list[Groups] = field(default_factory=list)
    batch: Groups | None = None
    probed: Groups | None = None


def rollout_stats(run, rolled: StepRollouts) -> dict:
    """What the step generated: rollout counts, prompts, rewards, lengths,
    and what it ran (:func:`step_shape`).  ``run``: a
    :class:`~dopr_lite.loop.Run` (its counter, config and the step's
    generate calls and entropy rows)."""
    seen, batch = rolled.seen, rolled.batch
    prompts = [i for g in seen for i in g.prompts]
    rewards = (torch.cat([g.rewards for g in seen]) if seen
               else torch.full((1, 1), float("nan")))
    lengths = [n for g in seen
               for n in g.rollouts.completion_mask.sum(1).tolist()]
    truncated = [t for g in seen for t in g.rollouts.truncated.tolist()]
    return {"rollouts": run.counter.cost,
            "tokens": run.counter.cost_tokens,
            "probe_rollouts": run.counter.sequences["probe"],
            "prompts": len(prompts),
            "trained_prompts": 0 if batch is None else len(batch.prompts),
            "picked": prompts[:8],
            "reward_mean": rewards.mean().item(),
            "frac_reward_zero_std": zero_std_fraction(rewards),
            "completion_length": sum(lengths) / max(len(lengths), 1),
            "truncated_frac": sum(truncated) / max(len(truncated), 1),
            **step_shape(run, batch)}


def step_shape(run, batch: Groups | None) -> dict:
    """What the step ran, as :mod:`dopr_lite.steptime` reads it: its
    generate calls ([rows, prompt width, decode steps] each: a call runs
    until its longest sequence ends), the prompts prefilled for the
    entropy, and the update batch: rows times ``num_iterations`` and their
    padded prompt and completion widths (back-propagated unless the row's
    ``skipped`` is :data:`~dopr_lite.steprow.ALL_EQUAL`)."""
    rows = prompt = completion = 0
    if batch is not None:
        ro = batch.rollouts
        rows = len(ro) * run.cfg.num_iterations
        prompt, completion = ro.prompt_ids.shape[1], ro.completion_ids.shape[1]
    return {"gen_calls": run.gen_calls, "entropy_rows": run.entropy_rows,
            "update_rows": rows, "update_prompt_width": prompt,
            "update_completion_width": completion}
