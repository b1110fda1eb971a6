"""Held-out evaluation: greedy pass@1 and sampled pass@k; pool shape.

:func:`evaluate` scores a split; :func:`success_counts` and
:func:`group_shares` measure a prompt pool the way GRPO meets it: how many
of G sampled completions of each prompt are right, and the shares of
all-wrong, all-right and mixed groups (only mixed ones carry a signal).

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


def rng_devices(model):
    dev = next(model.parameters()).device
    return [dev] if dev.type == "cuda" else []


def evaluate(model, tokenizer, dataset, reward_fn, *, k: int = 4,
             max_new_tokens: int = 48, temperature: float = 1.0,
             batch_size: int = 256, seed: int = 1234,
             counter: RolloutCounter | None = None,
             by: str | None = None) -> dict:
    """Greedy accuracy, mean sampled accuracy and pass@k on a split.

    ``dataset`` rows need ``prompt`` and the columns ``reward_fn`` reads.
    Set ``k = 0`` to skip the sampled pass.  ``by`` names a column (such as
    the embedded task's ``family``) to also report each group's accuracy
    (``accuracy/<group>``, and ``pass@k/<group>``).
    """
    rows = list(dataset)
    greedy, sampled, passk, lengths = [], [], [], []
    with torch.random.fork_rng(devices=rng_devices(model)):
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
                r = sample_rewards(model, tokenizer, prompts, cols,
                                   reward_fn, k, max_new_tokens, temperature,
                                   counter=counter, kind="eval")
                passk += [pass_at_k(k, int((g > 0.5).sum()), k) for g in r]
                sampled += r.mean(1).tolist()
    n = len(rows)
    out = {"accuracy": sum(greedy) / n, "n": n,
           "mean_length": sum(lengths) / n}
    if k:
        out[f"pass@{k}"] = sum(passk) / n
        out["sampled_accuracy"] = sum(sampled) / n
    for group in dict.fromkeys(r[by] for r in rows) if by else ():
        idx = [i for i, r in enumerate(rows) if r[by] == group]
        out[f"accuracy/{group}"] = sum(greedy[i] for i in idx) / len(idx)
        if k:
            out[f"pass@{k}/{group}"] = sum(passk[i] for i in idx) / len(idx)
    return out


def sample_rewards(model, tokenizer, prompts: list[str], columns: dict,
                   reward_fn, k: int, max_new_tokens: int = 48,
                   temperature: float = 1.0, *, top_p: float = 1.0,
                   top_k: int = 0, counter: RolloutCounter | None = None,
                   kind: str = "eval") -> torch.Tensor:
    """(len(prompts), k) rewards of ``k`` sampled completions per prompt;
    ``columns`` holds the reward's dataset columns, one value a prompt."""
    ro = generate_rollouts(model, tokenizer, prompts, k,
                           max_new_tokens=max_new_tokens,
                           temperature=temperature, top_p=top_p, top_k=top_k,
                           counter=counter, kind=kind)
    rep = {key: [v for v in vals for _ in range(k)]
           for key, vals in columns.items()}
    return torch.tensor(reward_fn(ro.texts, **rep)).view(-1, k)


def success_counts(model, tokenizer, dataset, reward_fn, k: int = 8, *,
                   max_new_tokens: int = 48, temperature: float = 1.0,
                   top_p: float = 1.0, top_k: int = 0, batch_size: int = 64,
                   seed: int = 1234, counter: RolloutCounter | None = None,
                   kind: str = "eval", on_batch=None) -> torch.Tensor:
    """(len(dataset),) how many of ``k`` sampled completions of each
    prompt are right (reward > 0.5), ``batch_size`` prompts a ``generate``
    call, counted as ``kind`` (a pre-flight's are ``probe``: training
    cost); ``on_batch(rollouts)`` after each call (a progress bar).
    Sampled under its own seed, so the caller's random stream is
    untouched."""
    rows, counts = list(dataset), []
    with torch.random.fork_rng(devices=rng_devices(model)):
        torch.manual_seed(seed)
        for s in range(0, len(rows), batch_size):
            chunk = rows[s:s + batch_size]
            cols = {key: [r[key] for r in chunk] for key in chunk[0]
                    if key != "prompt"}
            r = sample_rewards(model, tokenizer, [r["prompt"] for r in chunk],
                               cols, reward_fn, k, max_new_tokens,
                               temperature, top_p=top_p, top_k=top_k,
                               counter=counter, kind=kind)
            counts += (r > 0.5).sum(1).tolist()
            if on_batch:
                on_batch(len(chunk) * k)
    return torch.tensor(counts)


def group_shares(counts: torch.Tensor, k: int) -> dict:
    """Shares of groups of ``k`` that are all wrong, all right, or mixed
    (the only ones with a non-zero GRPO advantage)."""
    counts = torch.as_tensor(counts)
    wrong = float((counts == 0).float().mean())
    right = float((counts == k).float().mean())
    return {"all_wrong": wrong, "all_right": right,
            "mixed": 1.0 - wrong - right}
