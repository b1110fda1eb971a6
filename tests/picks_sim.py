"""A model-free run of every selection rule: seeded success rates per
prompt, seeded rewards, a deterministic entropy per prompt and step, and
the loop's order of calls (select, feedback, probes ahead).  The picks it
returns are a pure function of the rule's code, so a refactor that keeps
them keeps every seeded run's picks (tests/test_select.py)."""

import random

import torch

from dopr_lite.select import (PromptHistory, SelectContext, candidate_batch,
                              feedback, make_selector)

RULES = {  # label -> (selector, args)
    "fixed": ("fixed", {}), "random": ("random", {}),
    "random-k4": ("random", {"k": 4}), "thompson": ("thompson", {}),
    "thompson-k4": ("thompson", {"k": 4}), "dopr-v1": ("dopr-v1", {}),
    "dopr-v1-now": ("dopr-v1", {"ahead": False, "revisit": 3}),
    "dopr-v1-flat": ("dopr-v1", {"entropy_mod": False, "c": 0.5}),
    "dopr": ("dopr", {}), "dopr-ucb": ("dopr", {"score": "ucb"}),
    "dopr-ucb-now": ("dopr", {"score": "ucb", "ahead": False}),
    "dopr-p0": ("dopr", {"probe": 0}), "dopr-k4": ("dopr", {"k": 4}),
    "dopr-all": ("dopr", {"probe_top": 0, "score": "ucb"}),
}


def simulate(selector, args, steps=30, pool=40, batch=12, seed=3,
             G=8) -> list[list[int]]:
    """Each step's picks of rule ``selector(**args)``."""
    sel = make_selector(selector, **args)
    rate = random.Random(f"rates:{seed}")
    p = [rate.choice([0.0, 0.05, 0.3, 0.5, 0.7, 0.95, 1.0])
         for _ in range(pool)]
    history, out = PromptHistory(), []

    def rewards(prompts, n, salt):
        r = random.Random(f"{seed}:{salt}:{prompts}")
        return torch.tensor([[float(r.random() < p[i]) for _ in range(n)]
                             for i in prompts])

    def ctx(step):
        def entropy(idx):
            return torch.tensor([((i * 7 + step * 3) % 11) / 5.0 + 0.1
                                 for i in idx])
        return SelectContext(step=step, history=history, num_generations=G,
                             seed=seed, entropy=entropy,
                             probe_rewards=lambda idx, n: rewards(
                                 idx, n, f"probe{step}"))

    for step in range(steps):
        c = ctx(step)
        picks = sel.select(candidate_batch(step, pool, batch, seed), c)
        out.append([int(i) for i in picks])
        feedback(sel, picks, rewards(picks, G, f"group{step}"), c)
        ahead, n = sel.probes_ahead(
            candidate_batch(step + 1, pool, batch, seed), c)
        if ahead:
            sel.observe_probes(ahead, rewards(ahead, n, f"ahead{step}"), c)
    return out
