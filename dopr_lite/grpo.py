"""The GRPO update: group-relative advantages and the clipped surrogate.

For a prompt with rewards ``r_1..r_G``, the advantage of rollout ``i`` is
``A_i = r_i - mean(r)``, divided by ``std(r) + eps`` unless std-scaling is
off (Dr. GRPO, Liu et al. 2025).  Every completion token ``t`` of rollout
``i`` shares ``A_i``; with the probability ratio
``rho = exp(logp - logp_old)`` the per-token objective is the PPO clip
``min(rho * A, clip(rho, 1 - eps_low, 1 + eps_high) * A)`` (DAPO's clip-higher
when ``eps_high > eps_low``), minus ``beta * KL`` with the k3 estimator
``exp(ref - logp) - (ref - logp) - 1`` (Schulman 2020), plus an optional
entropy bonus (one-shot RLVR).

Token aggregation (``loss_type``):

* ``grpo``: mean over each sequence's tokens, then over sequences
  (Shao et al. 2024; biased towards short wrong answers, says Dr. GRPO);
* ``dr_grpo``: sum over tokens / (sequences * max_new_tokens);
* ``dapo``: sum over tokens / total tokens in the batch (Yu et al. 2025).

What the defaults make of this (``num_iterations=1``, ``beta=0``,
``scale_rewards="group"``, ``loss_type="dr_grpo"``):

* one update per batch: the old log-probs are the current ones, detached,
  so the ratio is exactly 1 and clipping never fires (``clip_frac`` 0);
* no KL term (``kl`` 0; the reference pass is not run);
* hence REINFORCE with a group-mean baseline, with GRPO's std-scaled
  advantages and Dr. GRPO's constant normaliser: a hybrid that is neither
  GRPO (per-sequence token means) nor Dr. GRPO (no std scaling) as
  published.  ``scale_rewards="none"`` gives Dr. GRPO, ``loss_type="grpo"``
  GRPO's aggregation.

The update is micro-batched: each micro-batch's loss is scaled so the summed
gradients equal the full batch's, so memory is bounded by ``micro_batch``.
Groups whose rewards are all equal carry no signal; their fraction is logged
as ``frac_reward_zero_std`` (TRL's name).  A step whose loss or gradient is
not finite is skipped, with the reason, so NaN never reaches the weights.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import torch

from dopr_lite.config import DoprConfig
from dopr_lite.policy import reference_mode
from dopr_lite.rollout import Rollouts, token_logprobs


def group_advantages(rewards: torch.Tensor, scale: str = "group",
                     eps: float = 1e-4) -> torch.Tensor:
    """``rewards`` is (prompts, G); returns advantages of the same shape.

    ``scale``: ``"group"`` divides by each group's std (GRPO), ``"batch"``
    by the batch std (Hu et al. 2025, REINFORCE++), ``"none"`` not at all
    (Dr. GRPO).
    """
    if rewards.dim() != 2:
        raise ValueError("rewards must be shaped (prompts, G)")
    adv = rewards - rewards.mean(dim=1, keepdim=True)
    if scale == "none":
        return adv
    if scale == "group":
        std = rewards.std(dim=1, keepdim=True)
    elif scale == "batch":
        std = rewards.std().expand(rewards.shape[0], 1)
    else:
        raise ValueError(f"unknown advantage scaling {scale!r}")
    # an all-equal group has adv == 0 exactly; keep it 0 (never 0/0 = NaN)
    return torch.where(std > 0, adv / (std + eps), torch.zeros_like(adv))


def zero_std_fraction(rewards: torch.Tensor) -> float:
    """Share of groups whose rewards are all equal (no GRPO signal)."""
    same = (rewards == rewards[:, :1]).all(dim=1)
    return same.float().mean().item()


def loss_normaliser(mask: torch.Tensor, loss_type: str,
                    max_new_tokens: int) -> torch.Tensor:
    """Per-token weights whose weighted sum is the aggregated loss."""
    mask = mask.float()
    n_seq = mask.shape[0]
    if loss_type == "grpo":
        return mask / mask.sum(1, keepdim=True).clamp(min=1) / n_seq
    if loss_type == "dr_grpo":
        return mask / (n_seq * max_new_tokens)
    if loss_type == "dapo":
        return mask / mask.sum().clamp(min=1)
    raise ValueError(f"unknown loss_type {loss_type!r}")


def clipped_objective(logp, old_logp, adv, eps_low: float = 0.2,
                      eps_high: float | None = None):
    """Per-token clipped surrogate (to maximise) and a clipped indicator."""
    eps_high = eps_low if eps_high is None else eps_high
    ratio = torch.exp(logp - old_logp)
    adv = adv.unsqueeze(-1) if adv.dim() == 1 else adv
    unclipped = ratio * adv
    clipped = torch.clamp(ratio, 1 - eps_low, 1 + eps_high) * adv
    return torch.min(unclipped, clipped), (clipped < unclipped).float()


def k3_kl(logp, ref_logp):
    """Per-token KL(pi || ref) estimate, non-negative (Schulman 2020)."""
    d = ref_logp - logp
    return torch.exp(d) - d - 1


def grpo_loss(logp, old_logp, adv, weights, *, ref_logp=None, beta=0.0,
              entropy=None, entropy_coef=0.0, eps_low=0.2, eps_high=None):
    """The scalar loss for one micro-batch, and its statistics.

    ``weights`` (from :func:`loss_normaliser`) carry the mask and the
    aggregation, so summing micro-batch losses gives the batch loss.
    """
    obj, clipped = clipped_objective(logp, old_logp, adv, eps_low, eps_high)
    per_token = -obj
    stats = {"clip_frac": (clipped * weights).sum()}
    if beta > 0 and ref_logp is not None:
        kl = k3_kl(logp, ref_logp)
        per_token = per_token + beta * kl
        stats["kl"] = (kl * weights).sum()
    if entropy is not None:
        stats["entropy"] = (entropy * weights).sum()
        if entropy_coef:
            per_token = per_token - entropy_coef * entropy
    loss = (per_token * weights).sum()
    return loss, stats


@dataclass(frozen=True)
class GRPOSettings:
    """How :func:`grpo_update` computes and applies the loss (the
    defaults are :func:`grpo_update`'s; a run builds its own once, with
    :meth:`from_config`)."""

    loss_type: str = "dr_grpo"  # token aggregation: grpo | dr_grpo | dapo
    max_new_tokens: int = 48  # dr_grpo's constant normaliser
    beta: float = 0.0  # KL weight (0: the reference pass is not run)
    entropy_coef: float = 0.0  # entropy bonus weight
    eps_low: float = 0.2  # clip range, lower side
    eps_high: float | None = None  # upper side (None: eps_low)
    temperature: float = 1.0  # the sampling temperature, for log-probs
    micro_batch: int = 64  # sequences per forward/backward pass
    max_grad_norm: float = 1.0  # gradient clipping norm

    @classmethod
    def from_config(cls, cfg: DoprConfig) -> "GRPOSettings":
        return cls(loss_type=cfg.loss_type,
                   max_new_tokens=cfg.max_new_tokens, beta=cfg.beta,
                   entropy_coef=cfg.entropy_coef, eps_low=cfg.epsilon,
                   eps_high=cfg.epsilon_high, temperature=cfg.temperature,
                   micro_batch=cfg.micro_batch,
                   max_grad_norm=cfg.max_grad_norm)

    @property
    def regularised(self) -> bool:
        """The loss has a term besides the advantages (KL or entropy), so
        a batch whose advantages are all 0 still has a gradient."""
        return bool(self.beta or self.entropy_coef)


def grpo_update(model, optimizer, rollouts: Rollouts, advantages,
                settings: GRPOSettings | None = None, *, trainable=None,
                **overrides) -> dict:
    """One optimiser step on a batch of rollouts; returns its statistics
    (``skipped``: why no step was taken, "" if one was; ``nonfinite``: the
    loss or gradient held NaN/inf, so the step was skipped).

    ``advantages`` is per rollout, shape (N,).  ``settings``: a
    :class:`GRPOSettings`, or its fields as keywords (``loss_type=...``),
    which override ``settings``'s.  Uses ``rollouts.old_logprobs`` when set
    (several updates per batch), else the current policy's detached
    log-probs (one update per batch, as in TRL).
    """
    s = replace(settings or GRPOSettings(), **overrides)
    params = trainable or [p for p in model.parameters() if p.requires_grad]
    ids, mask = rollouts.input_ids, rollouts.attention_mask
    cmask = rollouts.completion_mask
    n_comp = cmask.shape[1]
    weights = loss_normaliser(cmask, s.loss_type, s.max_new_tokens)
    adv = advantages.to(ids.device).float()
    totals = {"loss": 0.0, "clip_frac": 0.0, "entropy": 0.0, "kl": 0.0}
    model.train()
    optimizer.zero_grad(set_to_none=True)
    for start in range(0, ids.shape[0], s.micro_batch):
        sl = slice(start, start + s.micro_batch)
        logp, ent = token_logprobs(model, ids[sl], mask[sl], n_comp,
                                   s.temperature, with_entropy=True)
        old = (rollouts.old_logprobs[sl] if rollouts.old_logprobs is not None
               else logp.detach())
        ref = None
        if s.beta > 0:
            with torch.no_grad(), reference_mode(model):
                ref, _ = token_logprobs(model, ids[sl], mask[sl], n_comp,
                                        s.temperature)
        loss, stats = grpo_loss(
            logp, old, adv[sl], weights[sl], ref_logp=ref, beta=s.beta,
            entropy=ent if s.entropy_coef else ent.detach(),
            entropy_coef=s.entropy_coef, eps_low=s.eps_low,
            eps_high=s.eps_high)
        loss.backward()
        totals["loss"] += loss.item()
        for k, v in stats.items():
            totals[k] += float(v.detach())
    model.eval()
    grad_norm = torch.nn.utils.clip_grad_norm_(params, s.max_grad_norm)
    totals["grad_norm"] = float(grad_norm)
    if not (math.isfinite(totals["loss"]) and math.isfinite(grad_norm)):
        optimizer.zero_grad(set_to_none=True)
        totals.update(skipped="non-finite loss or gradient", nonfinite=True)
        return totals
    optimizer.step()
    totals.update(skipped="", nonfinite=False)
    return totals
