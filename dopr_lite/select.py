"""Selection rules: which prompts of a candidate batch get rollouts.

Each step the training loop draws a candidate batch of prompt indices and
asks its :class:`Selector` which of them to roll out.  The selector sees a
:class:`SelectContext`: the step, the per-prompt :class:`PromptHistory`
(reward counts, recent rewards, the step each prompt was last seen), the
policy's entropy on the candidates (one forward pass over the prompts, no
rollouts) and, for rules that need them, *probe* rollouts, which are charged
to the ``probe`` rollout count.  It is told the rewards its choice caused
(``update``) and its state goes into checkpoints (``state_dict``).

Rules (``SELECTORS``):

* ``full``     :class:`FullBatch`, standard GRPO: every candidate.
* ``random``   :class:`RandomOne`, one candidate uniformly (the ablation that
  isolates the value of a selection rule).
* ``fixed``    :class:`FixedOneShot`, one example for the whole run, picked
  by the reward variance of probe rollouts (one-shot RLVR, Wang et al. 2025).
* ``dynamic``  :class:`DynamicSampling`, every candidate, but groups whose
  rewards are all equal are dropped and the batch is refilled (DAPO, Yu et
  al. 2025); the loop does the refilling.
* ``thompson`` :class:`Thompson`, Beta posterior per prompt, Thompson sample,
  pick the prompt whose sample is closest to p = 0.5 (MoPPS, Qu et al. 2025).
* ``dopr``     :class:`DoPR`, one prompt per batch by reward volatility plus
  an entropy-modulated exploration bonus, after one probe rollout on each
  of the two best new candidates (Zhang et al. 2026; our interpretation,
  see the class docstring).
"""

from __future__ import annotations

import math
import random
from collections import deque
from dataclasses import dataclass, field, replace
from typing import Callable

import torch


@dataclass
class PromptHistory:
    """What the run has seen of each prompt: counts and recent rewards."""

    window: int = 32  # recent rewards kept per prompt
    visits: dict = field(default_factory=dict)  # prompt -> times rolled out
    successes: dict = field(default_factory=dict)  # prompt -> sum rewards
    trials: dict = field(default_factory=dict)  # prompt -> rollouts
    recent: dict = field(default_factory=dict)  # prompt -> deque[float]
    last_step: dict = field(default_factory=dict)  # prompt -> step

    def record(self, prompt: int, rewards, step: int) -> None:
        rewards = [float(r) for r in rewards]
        self.visits[prompt] = self.visits.get(prompt, 0) + 1
        self.successes[prompt] = self.successes.get(prompt, 0.0) + sum(
            rewards)
        self.trials[prompt] = self.trials.get(prompt, 0) + len(rewards)
        q = self.recent.setdefault(prompt, deque(maxlen=self.window))
        q.extend(rewards)
        self.last_step[prompt] = step

    def success_rate(self, prompt: int) -> float | None:
        n = self.trials.get(prompt, 0)
        return self.successes[prompt] / n if n else None

    def recent_variance(self, prompt: int) -> float | None:
        """Variance of the prompt's last ``window`` rewards."""
        q = self.recent.get(prompt)
        if not q:
            return None
        m = sum(q) / len(q)
        return sum((r - m) ** 2 for r in q) / len(q)

    def state_dict(self) -> dict:
        return {"window": self.window,
                "visits": dict(self.visits),
                "successes": dict(self.successes),
                "trials": dict(self.trials),
                "recent": {k: list(v) for k, v in self.recent.items()},
                "last_step": dict(self.last_step)}

    def load_state_dict(self, state: dict) -> None:
        def keys_int(d):
            return {int(k): v for k, v in d.items()}

        self.window = int(state["window"])
        self.visits = keys_int(state["visits"])
        self.successes = keys_int(state["successes"])
        self.trials = keys_int(state["trials"])
        self.recent = {int(k): deque(v, maxlen=self.window)
                       for k, v in state["recent"].items()}
        self.last_step = keys_int(state["last_step"])


@dataclass
class SelectContext:
    """What a selector may look at when it decides."""

    step: int
    history: PromptHistory
    num_generations: int = 8  # G, rollouts each picked prompt will get
    seed: int = 0  # the run's seed (for seeded tie-breaks and sampling)
    # probe(indices, n) -> rewards (len(indices), n); charged as "probe"
    probe: Callable[[list[int], int], torch.Tensor] | None = None
    # entropy(indices) -> (len(indices),) policy entropy (nats) of the first
    # completion token; a forward pass over the prompts, no rollouts
    entropy: Callable[[list[int]], torch.Tensor] | None = None

    def rng(self, salt: str = "") -> random.Random:
        """A generator that depends only on (seed, step, salt): resumable."""
        return random.Random(f"{self.seed}:{self.step}:{salt}")


class Selector:
    """Base class: pick prompts from a candidate batch; learn from rewards."""

    name = "selector"
    # True: the loop drops groups with all-equal rewards and refills the
    # batch from up to ``max_draws`` candidate draws (DAPO's dynamic sampling)
    drop_zero_std = False
    max_draws = 1

    def select(self, candidates: list[int], ctx: SelectContext) -> list[int]:
        raise NotImplementedError

    def update(self, prompts: list[int], rewards: torch.Tensor,
               ctx: SelectContext) -> None:
        """Called with the (len(prompts), G) rewards the choice caused."""

    def state_dict(self) -> dict:
        return {}

    def load_state_dict(self, state: dict) -> None:
        pass


class FullBatch(Selector):
    """Standard GRPO: every candidate gets G rollouts."""

    name = "full"

    def select(self, candidates, ctx):
        return list(candidates)


class RandomOne(Selector):
    """One candidate, uniformly at random (seeded by run seed and step)."""

    name = "random"

    def select(self, candidates, ctx):
        return [ctx.rng("random").choice(list(candidates))]


class FixedOneShot(Selector):
    """One example for the whole run (one-shot RLVR, Wang et al. 2025).

    Wang et al. rank examples by the variance of their historical training
    accuracy in a previous run.  Without a previous run we spend probe
    rollouts: the first step's candidates get ``probe_n`` rollouts each
    (charged as ``probe``) and the prompt whose success rate has the largest
    variance p(1 - p) is used for every later step.
    """

    name = "fixed"

    def __init__(self, probe_n: int = 16):
        self.probe_n = probe_n
        self.chosen: int | None = None
        self.probe_rates: dict = {}

    def select(self, candidates, ctx):
        if self.chosen is None:
            cands = list(dict.fromkeys(candidates))
            rates = ctx.probe(cands, self.probe_n).float().mean(1)
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
    ``max_draws`` candidate batches were spent.  Every generated rollout,
    dropped or kept, counts as cost."""

    name = "dynamic"
    drop_zero_std = True

    def __init__(self, max_draws: int = 3):
        self.max_draws = max_draws


class BetaPosterior:
    """Discounted Beta(alpha, beta) posteriors of per-prompt success rates.

    Counts decay by ``gamma`` per step since the prompt's last update, so
    the posterior follows a policy that changes (MoPPS's discounting).
    """

    def __init__(self, alpha0: float = 1.0, beta0: float = 1.0,
                 gamma: float = 1.0):
        self.alpha0, self.beta0, self.gamma = alpha0, beta0, gamma
        self.counts: dict = {}  # prompt -> [successes, failures, step]

    def _decayed(self, prompt: int, step: int) -> tuple[float, float]:
        s, f, last = self.counts.get(prompt, (0.0, 0.0, step))
        d = self.gamma ** max(step - last, 0)
        return s * d, f * d

    def pooled_mean(self, step: int) -> float | None:
        """Success rate over all observed prompts (discounted counts)."""
        s = f = 0.0
        for prompt in self.counts:
            si, fi = self._decayed(prompt, step)
            s, f = s + si, f + fi
        return s / (s + f) if s + f > 0 else None

    def params(self, prompt: int, step: int, prior=None):
        a0, b0 = prior or (self.alpha0, self.beta0)
        s, f = self._decayed(prompt, step)
        return a0 + s, b0 + f

    def observe(self, prompt: int, rewards, step: int) -> None:
        s, f = self._decayed(prompt, step)
        succ = float(sum(rewards))
        self.counts[prompt] = [s + succ, f + len(rewards) - succ, step]

    def state_dict(self):
        return {str(k): list(v) for k, v in self.counts.items()}

    def load_state_dict(self, state):
        self.counts = {int(k): list(v) for k, v in state.items()}


class Thompson(Selector):
    """MoPPS-style prompt selection (Qu et al. 2025): one Thompson sample
    p~ ~ Beta(alpha_i, beta_i) per candidate; pick the ``k`` candidates
    whose sample is closest to ``target`` (0.5: the most informative
    success rate for a group-relative advantage)."""

    name = "thompson"

    def __init__(self, k: int = 1, target: float = 0.5, gamma: float = 0.9,
                 alpha0: float = 1.0, beta0: float = 1.0):
        self.k, self.target = k, target
        self.post = BetaPosterior(alpha0, beta0, gamma)

    def select(self, candidates, ctx):
        cands = list(dict.fromkeys(candidates))
        ab = torch.tensor([self.post.params(i, ctx.step) for i in cands])
        with torch.random.fork_rng(devices=[]):  # own stream: resumable
            torch.manual_seed(ctx.rng("thompson").getrandbits(62))
            sample = torch.distributions.Beta(ab[:, 0], ab[:, 1]).sample()
        order = torch.argsort((sample - self.target).abs(), stable=True)
        return [cands[int(j)] for j in order[:self.k]]

    def update(self, prompts, rewards, ctx):
        for i, r in zip(prompts, rewards, strict=True):
            self.post.observe(i, r.tolist(), ctx.step)

    def state_dict(self):
        return {"posterior": self.post.state_dict()}

    def load_state_dict(self, state):
        self.post.load_state_dict(state["posterior"])


def informative_prob(alpha, beta, G: int):
    """E[1 - p^G - (1-p)^G] for p ~ Beta(alpha, beta): the chance that a
    group of G binary rewards is not all equal, i.e. that GRPO gets a
    non-zero advantage from it (``bound.informative_prob`` averaged over
    the posterior).  Uses E[p^G] = prod_{j<G} (alpha+j) / (alpha+beta+j)."""
    alpha = torch.as_tensor(alpha, dtype=torch.float64)
    beta = torch.as_tensor(beta, dtype=torch.float64)
    j = torch.arange(G, dtype=torch.float64)
    tot = (alpha + beta).unsqueeze(-1) + j
    all_one = ((alpha.unsqueeze(-1) + j) / tot).prod(-1)
    all_zero = ((beta.unsqueeze(-1) + j) / tot).prod(-1)
    return (1 - all_one - all_zero).float()


class DoPR(Selector):
    r"""Dynamic one-shot policy refinement: one prompt per batch.

    Our precise version of the rule Zhang et al. (2026) describe as reward
    volatility plus an exploration-driven acquisition term (summaries call
    it an entropy-modulated UCB).  For candidate i at step t (t >= 1)::

        score_i = V_i + c * h_i * sqrt(ln(t + 1) / (n_i + 1))

    * ``V_i``, the *volatility*: the posterior probability that a group of
      G rollouts on prompt i has non-zero reward variance (so GRPO learns
      from it), E[1 - p^G - (1 - p)^G] with p ~ Beta(alpha_i, beta_i).
    * ``alpha_i, beta_i``: a prior plus prompt i's successes and failures,
      discounted by ``gamma`` per step since they were seen, because the
      policy they describe keeps changing.
    * the prior: ``prior_n`` pseudo-rollouts at the pooled (discounted)
      success rate m of all prompts seen so far (empirical Bayes; m = 0.5
      before any data).  An unseen prompt is as volatile as the run's
      typical prompt: high early, low once most prompts are solved.
    * ``h_i``: the policy's entropy on prompt i (of its first completion
      token; a forward pass, no rollouts) divided by the largest candidate
      entropy seen so far in the run, so h_i is in [0, 1]: the bonus goes
      to prompts the policy is unsure about, and fades as the policy grows
      confident everywhere, leaving the choice to the volatility.
    * ``n_i``: how often prompt i was rolled out; ``c``: the bonus weight.

    The prompt with the highest score gets the G rollouts (ties broken by a
    seeded coin).  With ``revisit > 0`` the rule also scores the ``revisit``
    already tried prompts with the highest volatility, so it can keep
    refining one prompt while its rewards stay volatile (one-shot RLVR whose
    one shot follows the policy).  That wastes fewer groups but, on the
    embedded task, generalises worse than a fresh prompt each step
    (notebook 04), so it is off by default.

    The rule pays for the evidence V needs (``probe=1, probe_top=2``): the
    ``probe_top`` best-scoring candidates the run has no rewards for (by
    their score before probing: the bonus's, as their V is the prior's) get
    ``probe`` probe rollouts each (charged as ``probe``) before the pick;
    their rewards enter the posterior, so V can tell a likely solved or
    hopeless prompt from a volatile one before spending G rollouts on it.
    On a fresh pool that is 2 rollouts a step on top of the group's G = 8.
    The probes are not reused in the chosen prompt's group: they chose it,
    and reusing them would bias its advantages.  ``probe=0`` turns probing
    off (then V only knows prompts the run has trained on, which on a fresh
    pool are few); ``probe_top=0`` probes every new candidate.

    Ablations: ``volatility=False`` drops V_i; ``c=0`` drops the bonus;
    ``entropy_mod=False`` sets h_i = 1; ``revisit=8`` adds tried prompts;
    ``probe=0`` stops probing.  The defaults (c = 1, revisit = 0, probe = 1,
    probe_top = 2) were chosen on seeds 10-15, apart from the seeds 0-2
    that notebooks and benchmarks report (README, "Paying for the
    volatility").

    Our interpretation, not the paper's text (its formula is not public):
    the volatility as an informative-group probability under a Beta
    posterior, the discounting, the empirical-Bayes prior, first-token
    entropy as the modulation, the UCB form of the bonus, and revisiting
    tried prompts, probing new candidates.
    """

    name = "dopr"

    def __init__(self, c: float = 1.0, gamma: float = 0.9,
                 prior_n: float = 2.0, volatility: bool = True,
                 entropy_mod: bool = True, revisit: int = 0, k: int = 1,
                 probe: int = 1, probe_top: int = 2):
        if probe < 0 or probe_top < 0:
            raise ValueError(f"probe and probe_top must be >= 0, got "
                             f"probe={probe}, probe_top={probe_top}")
        self.c, self.prior_n, self.k, self.revisit = c, prior_n, k, revisit
        self.probe, self.probe_top = probe, probe_top
        self.volatility, self.entropy_mod = volatility, entropy_mod
        self.post = BetaPosterior(gamma=gamma)
        self.max_entropy = 0.0  # largest candidate entropy seen in the run
        self.last_scores: dict = {}  # term -> list, for plots and tests

    def prior(self, step: int) -> tuple[float, float]:
        m = self.post.pooled_mean(step)
        m = 0.5 if m is None else min(max(m, 0.01), 0.99)
        return self.prior_n * m, self.prior_n * (1 - m)

    def scores(self, candidates: list[int], ctx: SelectContext) -> dict:
        """Every term of the score for each candidate (for inspection)."""
        prior = self.prior(ctx.step)
        ab = torch.tensor([self.post.params(i, ctx.step, prior)
                           for i in candidates])
        vol = informative_prob(ab[:, 0], ab[:, 1], ctx.num_generations)
        n = torch.tensor([float(ctx.history.visits.get(i, 0))
                          for i in candidates])
        bonus = torch.sqrt(math.log(ctx.step + 2) / (n + 1))
        h = torch.ones(len(candidates))
        if self.entropy_mod and self.c and ctx.entropy is not None:
            ent = ctx.entropy(candidates).float().cpu()
            self.max_entropy = max(self.max_entropy, float(ent.max()))
            h = ent / max(self.max_entropy, 1e-8)
        score = (vol if self.volatility else torch.zeros_like(vol)) \
            + self.c * h * bonus
        return {"volatility": vol, "entropy": h, "bonus": bonus,
                "visits": n, "score": score,
                "mean": ab[:, 0] / ab.sum(1)}

    def revisit_set(self, ctx: SelectContext) -> list[int]:
        """The ``revisit`` tried prompts with the highest volatility."""
        if not self.revisit or not self.post.counts:
            return []
        tried, prior = sorted(self.post.counts), self.prior(ctx.step)
        ab = torch.tensor([self.post.params(i, ctx.step, prior)
                           for i in tried])
        vol = informative_prob(ab[:, 0], ab[:, 1], ctx.num_generations)
        top = torch.argsort(vol, descending=True, stable=True)
        return [tried[int(j)] for j in top[:self.revisit]]

    def probe_new(self, candidates: list[int], ctx: SelectContext) -> None:
        """``probe`` rollouts on each candidate with no rewards yet (with
        ``probe_top``, on the best-scoring ``probe_top`` of them)."""
        new = [i for i in candidates if i not in self.post.counts]
        if not (self.probe and new):
            return
        if self.probe_top and len(new) > self.probe_top:
            score = self.scores(new, ctx)["score"]
            top = torch.argsort(score, descending=True, stable=True)
            new = [new[int(j)] for j in top[:self.probe_top]]
        if ctx.probe is None:
            raise RuntimeError("DoPR(probe=...) needs probe rollouts, which "
                               "this trainer does not provide; set probe=0")
        rewards = ctx.probe(new, self.probe)
        for i, r in zip(new, rewards, strict=True):
            self.post.observe(i, r.tolist(), ctx.step)

    def select(self, candidates, ctx):
        if ctx.entropy is not None:  # one forward pass per prompt and step
            ctx = replace(ctx, entropy=_memo(ctx.entropy))
        cands = list(dict.fromkeys(list(candidates) + self.revisit_set(ctx)))
        self.probe_new(cands, ctx)
        terms = self.scores(cands, ctx)
        self.last_scores = {k: v.tolist() for k, v in terms.items()}
        self.last_scores["candidates"] = cands
        rng = ctx.rng("dopr")
        tie = torch.tensor([rng.random() for _ in cands]) * 1e-6
        order = torch.argsort(terms["score"] + tie, descending=True)
        return [cands[int(j)] for j in order[:self.k]]

    def update(self, prompts, rewards, ctx):
        for i, r in zip(prompts, rewards, strict=True):
            self.post.observe(i, r.tolist(), ctx.step)

    def state_dict(self):
        return {"posterior": self.post.state_dict(),
                "max_entropy": self.max_entropy}

    def load_state_dict(self, state):
        self.post.load_state_dict(state["posterior"])
        self.max_entropy = float(state["max_entropy"])


def _memo(entropy: Callable[[list[int]], torch.Tensor]):
    """``entropy`` that computes each prompt's value at most once."""
    known: dict[int, float] = {}

    def cached(indices: list[int]) -> torch.Tensor:
        new = [i for i in dict.fromkeys(indices) if i not in known]
        if new:
            known.update(zip(new, entropy(new).float().cpu().tolist(),
                             strict=True))
        return torch.tensor([known[i] for i in indices])

    return cached


SELECTORS: dict[str, type[Selector]] = {
    "full": FullBatch, "random": RandomOne, "fixed": FixedOneShot,
    "dynamic": DynamicSampling, "thompson": Thompson, "dopr": DoPR}


def make_selector(name: str, **kwargs) -> Selector:
    """A selector by its config name; unknown names list the choices."""
    from dopr_lite.config import ConfigError

    if name not in SELECTORS:
        raise ConfigError(f"config field 'selector': unknown selector "
                          f"{name!r}; choose one of {sorted(SELECTORS)}")
    try:
        return SELECTORS[name](**kwargs)
    except (TypeError, ValueError) as err:
        raise ConfigError(f"config field 'selector_args': {err}") from err
