"""Held-out evaluation: greedy pass@1 and sampled pass@k.

Evaluation draws its samples inside ``torch.random.fork_rng`` with its own
seed, so evaluating (or not) never changes the training trajectory.  Its
rollouts are counted as ``eval``, never as training cost.
"""

from __future__ import annotations

from math import comb

import torch

from dopr_lite.rollout import RolloutCounter, generate_rollouts


def pass_at_k(n: int, c: int, k: int) -> float:
    """Unbiased pass@k from ``n`` samples with ``c`` correct (Chen 2021)."""
    if n < k:
        raise ValueError(f"pass@{k} needs at least {k} samples, got {n}")
    if n - c < k:
        return 1.0
    return 1.0 - comb(n - c, k) / comb(n, k)


def _rng_devices(model):
    dev = next(model.parameters()).device
    return [dev] if dev.type == "cuda" else []


def evaluate(model, tokenizer, dataset, reward_fn, *, k: int = 4,
             max_new_tokens: int = 48, temperature: float = 1.0,
             batch_size: int = 256, seed: int = 1234,
             counter: RolloutCounter | None = None) -> dict:
    """Greedy accuracy, mean sampled accuracy and pass@k on a split.

    ``dataset`` rows need ``prompt`` and the columns ``reward_fn`` reads.
    Set ``k = 0`` to skip the sampled pass.
    """
    rows = list(dataset)
    greedy, sampled, passk, lengths = [], [], [], []
    with torch.random.fork_rng(devices=_rng_devices(model)):
        torch.manual_seed(seed)
        for s in range(0, len(rows), batch_size):
            chunk = rows[s:s + batch_size]
            prompts = [r["prompt"] for r in chunk]
            cols = {key: [r[key] for r in chunk] for key in chunk[0]
                    if key != "prompt"}
            ro = generate_rollouts(model, tokenizer, prompts, 1,
                                   max_new_tokens=max_new_tokens,
                                   do_sample=False, counter=counter,
                                   kind="eval")
            greedy += reward_fn(ro.texts, **cols)
            lengths += ro.completion_mask.sum(1).tolist()
            if k:
                ro = generate_rollouts(model, tokenizer, prompts, k,
                                       max_new_tokens=max_new_tokens,
                                       temperature=temperature,
                                       counter=counter, kind="eval")
                rep = {key: [v for v in vals for _ in range(k)]
                       for key, vals in cols.items()}
                r = torch.tensor(reward_fn(ro.texts, **rep)).view(-1, k)
                passk += [pass_at_k(k, int((g > 0.5).sum()), k) for g in r]
                sampled += r.mean(1).tolist()
    n = len(rows)
    out = {"accuracy": sum(greedy) / n, "n": n,
           "mean_length": sum(lengths) / n}
    if k:
        out[f"pass@{k}"] = sum(passk) / n
        out["sampled_accuracy"] = sum(sampled) / n
    return out
