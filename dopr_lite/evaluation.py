"""Held-out evaluation: greedy pass@1 and sampled pass@k; pool shape.

:func:`evaluate` scores a split; :func:`success_counts` and
:func:`group_shares` measure a prompt pool the way GRPO meets it: how many
of G sampled completions of each prompt are right, and the shares of
all-wrong, all-right and mixed groups (only mixed ones carry a signal;
:func:`expected_shares` is the one place those shares are computed, here
and in the pre-flight).  Sampled passes use the run's
``GenerationConfig`` (:func:`~dopr_lite.rollout.generation_config`), as
training does; the greedy pass keeps its length cap.

Evaluation draws its samples inside ``torch.random.fork_rng`` with its own
seed, so evaluating (or not) never changes the training trajectory.  Its
rollouts are counted as ``eval``, never as training cost.
"""

from __future__ import annotations

from math import comb

import numpy as np
import torch
from transformers import GenerationConfig

from dopr_lite import task as T
from dopr_lite.rewards import exact_answer_reward
from dopr_lite.rollout import (RolloutCounter, as_generation_config,
                               generate_rollouts, greedy_config)


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
             generation_config: GenerationConfig | None = None,
             batch_size: int = 256, seed: int = 1234,
             counter: RolloutCounter | None = None,
             by: str | None = None, **settings) -> dict:
    """Greedy accuracy, mean sampled accuracy and pass@k on a split.

    ``dataset`` rows need ``prompt`` and the columns ``reward_fn`` reads.
    Set ``k = 0`` to skip the sampled pass.  ``by`` names a column (such as
    the embedded task's ``family``) to also report each group's accuracy
    (``accuracy/<group>``, and ``pass@k/<group>``).  ``generation_config``
    (or ``settings``: ``max_new_tokens``, ``temperature``, ``top_p``,
    ``top_k``) is how the pass@k samples are drawn; the greedy pass keeps
    its length cap.
    """
    gen = as_generation_config(generation_config, settings)
    argmax = greedy_config(gen)
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
                                   generation_config=argmax,
                                   counter=counter, kind="eval")
            greedy += reward_fn(ro.texts, **cols)
            lengths += ro.completion_mask.sum(1).tolist()
            if k:
                r = sample_rewards(model, tokenizer, prompts, cols,
                                   reward_fn, k, gen, counter=counter,
                                   kind="eval")
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
                   reward_fn, k: int, generation_config: GenerationConfig,
                   *, counter: RolloutCounter | None = None,
                   kind: str = "eval") -> torch.Tensor:
    """(len(prompts), k) rewards of ``k`` completions per prompt, drawn as
    ``generation_config`` says; ``columns`` holds the reward's dataset
    columns, one value a prompt."""
    ro = generate_rollouts(model, tokenizer, prompts, k,
                           generation_config=generation_config,
                           counter=counter, kind=kind)
    rep = {key: [v for v in vals for _ in range(k)]
           for key, vals in columns.items()}
    return torch.tensor(reward_fn(ro.texts, **rep)).view(-1, k)


def success_counts(model, tokenizer, dataset, reward_fn, k: int = 8, *,
                   generation_config: GenerationConfig | None = None,
                   batch_size: int = 64, seed: int = 1234,
                   counter: RolloutCounter | None = None,
                   kind: str = "eval", on_batch=None,
                   **settings) -> torch.Tensor:
    """(len(dataset),) how many of ``k`` sampled completions of each
    prompt are right (reward > 0.5), ``batch_size`` prompts a ``generate``
    call, counted as ``kind`` (a pre-flight's are ``probe``: training
    cost); ``on_batch(rollouts)`` after each call (a progress bar).
    Sampled as ``generation_config`` (or ``settings``, as for
    :func:`evaluate`) says, under its own seed, so the caller's random
    stream is untouched."""
    gen = as_generation_config(generation_config, settings)
    rows, counts = list(dataset), []
    with torch.random.fork_rng(devices=rng_devices(model)):
        torch.manual_seed(seed)
        for s in range(0, len(rows), batch_size):
            chunk = rows[s:s + batch_size]
            cols = {key: [r[key] for r in chunk] for key in chunk[0]
                    if key != "prompt"}
            r = sample_rewards(model, tokenizer, [r["prompt"] for r in chunk],
                               cols, reward_fn, k, gen, counter=counter,
                               kind=kind)
            counts += (r > 0.5).sum(1).tolist()
            if on_batch:
                on_batch(len(chunk) * k)
    return torch.tensor(counts)


def group_shares(counts, k: int) -> dict:
    """Shares of groups of ``k`` that are all wrong, all right, or mixed
    (the only ones with a non-zero GRPO advantage), as ``counts`` (right
    answers out of ``k``, one per prompt) observed them."""
    counts = np.asarray(counts)
    return expected_shares((counts == 0).astype(float),
                           (counts == k).astype(float))


def expected_shares(all_wrong, all_right, bootstrap: int = 0,
                    seed: int = 0) -> dict:
    """Shares of all-wrong, all-right and mixed groups in a pool: the
    means over prompts of each prompt's probability of each (mixed:
    neither).  With ``bootstrap`` > 0, also a 95% interval for each
    (``<share>_95``) from that many resamples of the prompts, so that it
    carries both the pool's spread and each estimate's noise."""
    wrong, right = np.asarray(all_wrong), np.asarray(all_right)
    per = {"all_wrong": wrong, "all_right": right,
           "mixed": 1.0 - wrong - right}
    idx = np.random.default_rng(seed).integers(
        0, len(wrong), (bootstrap, len(wrong))) if bootstrap else None
    out = {}
    for name, v in per.items():
        out[name] = float(v.mean())
        if bootstrap:
            lo, hi = np.quantile(v[idx].mean(1), [0.025, 0.975])
            out[f"{name}_95"] = [float(lo), float(hi)]
    return out


HELDOUT_K = 8  # sampled completions per prompt in a build's pass@k


def heldout_scores(model, tokenizer, k: int = HELDOUT_K) -> dict:
    """Accuracy and pass@k of a built model on the held-out split, per
    skill and tier (``"add/easy"``: 20 prompts for easy, 50 otherwise);
    the same for every mix, so ``build_info.json`` records them once."""
    scores = {}
    for family in T.FAMILIES:
        for tier in T.TIERS:
            mix = T.TaskMix(families={family: 1.0},
                            easy=float(tier == "easy"),
                            hard=float(tier == "hard"))
            r = evaluate(model, tokenizer, T.task_dataset(
                "test", 20 if tier == "easy" else 50, mix=mix),
                exact_answer_reward, k=k)
            scores[f"{family}/{tier}"] = {
                key: r[key] for key in ("n", "accuracy", f"pass@{k}")}
    return scores
