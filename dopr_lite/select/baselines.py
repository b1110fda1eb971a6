"""The rules without a posterior: full-batch GRPO, random-k, one fixed
example, DAPO's dynamic sampling."""

from __future__ import annotations

from dopr_lite.select.base import Selector, Shape


class FullBatch(Selector):
    """Standard GRPO: every candidate gets G rollouts."""

    name = "full"

    def select(self, candidates, ctx):
        return list(candidates)


class RandomOne(Selector):
    """``k`` distinct candidates, uniformly at random (seeded by run seed
    and step): with ``k = 1`` random-one, the control every one-prompt
    rule must beat; with ``k`` > 1 GRPO on ``k`` random prompts a step,
    the control for a rule that picks ``k``."""

    name = "random"
    COUNTS = ("k",)

    def __init__(self, k: int = 1):
        self.check_values(k=k)
        self.k = k

    @property
    def shape(self):
        return Shape(picks=self.k)

    def select(self, candidates, ctx):
        rng = ctx.rng("random")
        if self.k == 1:  # one draw, as random-one always made it
            return [rng.choice(list(candidates))]
        cands = list(dict.fromkeys(candidates))
        return rng.sample(cands, min(self.k, len(cands)))


class FixedOneShot(Selector):
    """One example for the whole run (one-shot RLVR, Wang et al. 2025).

    Wang et al. rank examples by the variance of their historical training
    accuracy in a previous run.  Without a previous run we spend probe
    rollouts: the first step's candidates get ``probe`` rollouts each
    (charged as ``probe``) and the prompt whose success rate has the largest
    variance p(1 - p) is used for every later step.
    """

    name = "fixed"
    shape = Shape(picks=1, probes=True)

    def __init__(self, probe: int = 16):
        self.probe = probe  # probe rollouts per candidate
        self.chosen: int | None = None
        self.probe_rates: dict = {}

    def select(self, candidates, ctx):
        if self.chosen is None:
            cands = list(dict.fromkeys(candidates))
            rates = ctx.probe_rewards(cands, self.probe).float().mean(1)
            variance = rates * (1 - rates)
            self.chosen = cands[int(variance.argmax())]
            self.probe_rates = dict(zip(cands, rates.tolist(), strict=True))
        return [self.chosen]

    def state_dict(self):
        return {"chosen": self.chosen, "probe_rates": self.probe_rates}

    def load_state_dict(self, state):
        self.chosen = state["chosen"]
        self.probe_rates = {int(k): v
                            for k, v in state["probe_rates"].items()}


class DynamicSampling(FullBatch):
    """DAPO's dynamic sampling (Yu et al. 2025): all candidates are rolled
    out; groups whose rewards are all equal are dropped and the batch is
    refilled with further candidates until it is full again or
    ``max_draws`` candidate batches were spent (the loop does the refilling,
    as its :class:`Shape` says).  Every generated rollout, dropped or kept,
    counts as cost."""

    name = "dynamic"
    COUNTS = ("max_draws",)

    def __init__(self, max_draws: int = 3):
        self.check_values(max_draws=max_draws)
        self.max_draws = max_draws

    @property
    def shape(self):
        return Shape(picks=None, draws=self.max_draws)
