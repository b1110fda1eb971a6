"""Selection rules: which prompts of a candidate batch get rollouts.

Each step the training loop draws a candidate batch of prompt indices
(:func:`candidate_batch`) and asks its :class:`Selector` which of them to
roll out.  The selector sees a :class:`SelectContext`: the step, how often
each prompt was rolled out (:class:`PromptHistory`), the policy's entropy on
the candidates (one forward pass over the prompts, no rollouts) and, for
rules that need them, *probe* rollouts, which are charged to the ``probe``
rollout count.  It is told the rewards its choice caused (:func:`feedback`)
and its state goes into checkpoints (``state_dict``).  What a rule does with
a batch (one prompt or all, probes, refills) is its :class:`Shape`.

Rules (``SELECTORS``):

* ``full``     :class:`FullBatch`, standard GRPO: every candidate.
* ``random``   :class:`RandomOne`, one candidate uniformly (the ablation that
  isolates the value of a selection rule), or ``k`` of them (GRPO on k
  random prompts: the control for a rule that picks k).
* ``fixed``    :class:`FixedOneShot`, one example for the whole run, picked
  by the reward variance of probe rollouts (one-shot RLVR, Wang et al. 2025).
* ``dynamic``  :class:`DynamicSampling`, every candidate, but groups whose
  rewards are all equal are dropped and the batch is refilled (DAPO, Yu et
  al. 2025); the loop does the refilling.
* ``thompson`` :class:`Thompson`, Beta posterior per prompt, Thompson sample,
  pick the prompt whose sample is closest to p = 0.5 (MoPPS, Qu et al. 2025).
* ``dopr-v1``  :class:`DoPRv1` and ``dopr`` :class:`DoPR` share
  :class:`PosteriorRule` (posterior, empirical-Bayes prior, probes, the
  entropy cache, ``select`` = dedupe -> probe -> score -> rank);
  ``dopr-v1`` is this project's first formalisation of DoPR:
  reward volatility plus an entropy-modulated UCB bonus (kept for
  comparison).
* ``dopr``     :class:`DoPR`, one prompt per batch by its reward volatility
  u(p) = 1 - p^G - (1-p)^G at a posterior sample of p (``score="ucb"``:
  at its Bayes-UCB quantile, the policy's entropy ordering prompts the
  evidence cannot tell apart), and one probe rollout on each of the two
  best new candidates of the next batch, generated in this step's call
  (Zhang et al. 2026; our interpretation, see the class docstring).
"""

from __future__ import annotations

import inspect
import math
import random
from dataclasses import dataclass, field, replace
from typing import Callable

import torch

from dopr_lite.bound import informative_prob
from dopr_lite.errors import ConfigError

DRAW_SEED_STRIDE = 7_919  # seed offset of a step's 2nd, 3rd... candidate draw


def candidate_batch(step: int, pool: int, size: int, seed: int) -> list[int]:
    """Prompt indices for ``step``: epoch-wise permutations of the pool.

    A pure function of its arguments, so a resumed run (or another engine,
    TRL) draws the same candidates.  A pool smaller than ``size`` repeats
    within a batch, as one-shot RLVR duplicates its single example to fill
    the batch (Wang et al. 2025).
    """
    out, start, perms = [], step * size, {}
    for q in range(start, start + size):
        epoch, pos = divmod(q, pool)
        if epoch not in perms:  # one shuffle per epoch the batch meets
            perms[epoch] = list(range(pool))
            random.Random(f"{seed}:epoch:{epoch}").shuffle(perms[epoch])
        out.append(perms[epoch][pos])
    return out


@dataclass
class PromptHistory:
    """How often each prompt was rolled out for training (``n_i`` of the
    exploration bonus); kept by the loop, saved in its checkpoints."""

    visits: dict = field(default_factory=dict)  # prompt -> groups rolled out

    def record(self, prompts: list[int]) -> None:
        for i in prompts:
            self.visits[i] = self.visits.get(i, 0) + 1

    def state_dict(self) -> dict:
        return {"visits": dict(self.visits)}

    def load_state_dict(self, state: dict) -> None:
        self.visits = {int(k): v for k, v in state["visits"].items()}


@dataclass
class SelectContext:
    """What a selector may look at when it decides."""

    step: int
    history: PromptHistory
    num_generations: int = 8  # G, rollouts each picked prompt will get
    seed: int = 0  # the run's seed (for seeded tie-breaks and sampling)
    # probe_rewards(indices, n) -> (len(indices), n) rewards of n new
    # rollouts of each prompt, charged as "probe"
    probe_rewards: Callable[[list[int], int], torch.Tensor] | None = None
    # entropy(indices) -> (len(indices),) policy entropy (nats) of the first
    # completion token; a forward pass over the prompts, no rollouts
    entropy: Callable[[list[int]], torch.Tensor] | None = None

    def rng(self, salt: str = "") -> random.Random:
        """A generator that depends only on (seed, step, salt): resumable."""
        return random.Random(f"{self.seed}:{self.step}:{salt}")


@dataclass(frozen=True)
class Shape:
    """What a rule does with a step's candidate batch.

    Declared by each selector and asked by everyone who must know: the loop
    (refills), the TRL integration (can the rule run there), benchmark
    budgets and out-of-memory advice.
    """

    picks: int | None  # prompts rolled out per step; None: every candidate
    probes: bool = False  # spends probe rollouts (before it picks, or on
    #                       the next step's candidates in this step's call)
    draws: int = 1  # >1: drops all-equal groups and refills from up to
    #                 this many candidate batches (DAPO's dynamic sampling)
    entropy: bool = False  # may prefill candidates for the policy's
    #                        entropy (a forward pass, no rollouts)
    probe_rollouts: int = 0  # rollouts per probed prompt, every step
    probe_top: int = 0  # prompts probed a step (0: every new candidate)
    probe_ahead: bool = False  # probes ride in the previous step's call

    def probe_rows(self, batch: int) -> int:
        """Probe rollouts a step while every candidate of a ``batch`` is
        new (a fresh pool): what the step-time model charges."""
        return self.probe_rollouts * (self.probe_top or batch)

    @property
    def own_probe_call(self) -> bool:
        """The probes run in a ``generate`` call of their own."""
        return self.probe_rollouts > 0 and not self.probe_ahead

    @property
    def trains_all_it_generates(self) -> bool:
        """Every rollout feeds the update: what TRL's trainer can run."""
        return not self.probes and self.draws == 1


class Selector:
    """Base class: pick prompts from a candidate batch; learn from rewards."""

    name = "selector"
    # the arguments that make this rule spend no probe rollouts (TRL's
    # trainer trains on all it generates); empty: the rule cannot
    PROBE_FREE: dict = {}

    @property
    def shape(self) -> Shape:
        return Shape(picks=None)

    @classmethod
    def check_args(cls, **kwargs) -> None:
        """Raise TypeError/ValueError where ``cls(**kwargs)`` would be
        refused, without building anything (config validation uses it)."""
        inspect.signature(cls).bind(**kwargs)

    def select(self, candidates: list[int], ctx: SelectContext) -> list[int]:
        raise NotImplementedError

    def update(self, prompts: list[int], rewards: torch.Tensor,
               ctx: SelectContext) -> None:
        """Called with the (len(prompts), G) rewards the choice caused."""

    def probes_ahead(self, candidates: list[int],
                     ctx: SelectContext) -> tuple[list[int], int]:
        """Which of the NEXT step's ``candidates`` to probe, and with how
        many rollouts each, inside this step's ``generate`` call (so probing
        costs no call of its own); their rewards come back through
        :meth:`observe_probes`.  Default: none."""
        return [], 0

    def observe_probes(self, prompts: list[int], rewards: torch.Tensor,
                       ctx: SelectContext) -> None:
        """Called with the (len(prompts), n) rewards of
        :meth:`probes_ahead`'s probes, at the step that generated them."""

    def warm_start(self, counts: dict) -> None:
        """Start from a pre-flight's success counts; only a
        :class:`BayesianSelector` keeps per-prompt rates to start from."""
        raise ValueError(f"{self.name!r} keeps no per-prompt success rates "
                         "to start from")

    def state_dict(self) -> dict:
        return {}

    def load_state_dict(self, state: dict) -> None:
        pass


def feedback(selector: Selector, prompts: list[int], rewards: torch.Tensor,
             ctx: SelectContext) -> None:
    """Tell the run what a step's groups got: count each prompt's visit in
    ``ctx.history``, then update the rule with the (prompts, G) rewards.
    Both engines (the loop and TRL) call this, and only this."""
    ctx.history.record(prompts)
    selector.update(prompts, rewards, ctx)


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

    def __init__(self, k: int = 1):
        self.check_args(k=k)
        self.k = k

    @classmethod
    def check_args(cls, **kwargs):
        super().check_args(**kwargs)
        if kwargs.get("k", 1) < 1:
            raise ValueError(f"k must be >= 1, got {kwargs['k']}")

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

    def __init__(self, max_draws: int = 3):
        self.check_args(max_draws=max_draws)
        self.max_draws = max_draws

    @classmethod
    def check_args(cls, **kwargs):
        super().check_args(**kwargs)
        if kwargs.get("max_draws", 1) < 1:
            raise ValueError(f"max_draws must be >= 1, got "
                             f"{kwargs['max_draws']}")

    @property
    def shape(self):
        return Shape(picks=None, draws=self.max_draws)


def beta_moment(alpha, beta, G: int) -> torch.Tensor:
    """E[p^G] for p ~ Beta(alpha, beta): the chance that G independent
    rewards are all 1 when the success rate p is only known through a
    posterior, prod_{j<G} (alpha+j) / (alpha+beta+j), in float64.  With
    alpha and beta swapped: the chance that all are 0."""
    alpha = torch.as_tensor(alpha, dtype=torch.float64)
    beta = torch.as_tensor(beta, dtype=torch.float64)
    j = torch.arange(G, dtype=torch.float64)
    tot = (alpha + beta).unsqueeze(-1) + j
    return ((alpha.unsqueeze(-1) + j) / tot).prod(-1)


def expected_informative_prob(alpha, beta, G: int):
    """E[1 - p^G - (1-p)^G] for p ~ Beta(alpha, beta): the chance that a
    group of G binary rewards is not all equal, i.e. that GRPO gets a
    non-zero advantage from it, when the success rate p is only known
    through a posterior (:func:`dopr_lite.bound.informative_prob` is the
    same chance for a known p).  E[p^G] is :func:`beta_moment`."""
    all_one = beta_moment(alpha, beta, G)
    all_zero = beta_moment(beta, alpha, G)
    return (1 - all_one - all_zero).float()


class BetaPosterior:
    """Discounted Beta(alpha, beta) posteriors of per-prompt success rates.

    Counts decay by ``gamma`` per step since the prompt's last update, so
    the posterior follows a policy that changes (MoPPS's discounting).
    Queries take an optional ``prior`` (alpha0, beta0) in place of the
    fixed one.
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

    def params(self, prompts: list[int], step: int,
               prior=None) -> torch.Tensor:
        """(len(prompts), 2): each prompt's alpha and beta at ``step``."""
        a0, b0 = prior or (self.alpha0, self.beta0)
        return torch.tensor([(a0 + s, b0 + f) for s, f in
                             (self._decayed(i, step) for i in prompts)])

    def mean(self, prompts: list[int], step: int,
             prior=None) -> torch.Tensor:
        """Each prompt's posterior mean success rate."""
        ab = self.params(prompts, step, prior)
        return ab[:, 0] / ab.sum(1)

    def volatility(self, prompts: list[int], step: int, G: int,
                   prior=None) -> torch.Tensor:
        """Each prompt's chance that a group of G rollouts has non-zero
        reward variance (:func:`expected_informative_prob`)."""
        ab = self.params(prompts, step, prior)
        return expected_informative_prob(ab[:, 0], ab[:, 1], G)

    def observe(self, prompt: int, rewards, step: int) -> None:
        s, f = self._decayed(prompt, step)
        succ = float(sum(rewards))
        self.counts[prompt] = [s + succ, f + len(rewards) - succ, step]

    def state_dict(self):
        return {str(k): list(v) for k, v in self.counts.items()}

    def load_state_dict(self, state):
        self.counts = {int(k): list(v) for k, v in state.items()}


class BayesianSelector(Selector):
    """A rule that keeps a :class:`BetaPosterior` of each prompt's success
    rate (``self.post``): it learns from every group and probe, can start
    from a pre-flight's counts, and saves the posterior in checkpoints."""

    def __init__(self, gamma: float, alpha0: float = 1.0,
                 beta0: float = 1.0):
        self.post = BetaPosterior(alpha0, beta0, gamma)

    def observe(self, prompts: list[int], rewards: torch.Tensor,
                step: int) -> None:
        """Enter the (len(prompts), n) rewards into the posterior."""
        for i, r in zip(prompts, rewards, strict=True):
            self.post.observe(i, r.tolist(), step)

    def update(self, prompts, rewards, ctx):  # a group, as a probe is
        self.observe(prompts, rewards, ctx.step)

    def observe_probes(self, prompts, rewards, ctx):
        self.observe(prompts, rewards, ctx.step)

    def warm_start(self, counts: dict) -> None:
        """Start from measured success counts ``{prompt: (right,
        sampled)}`` (a pre-flight), observed at step 0."""
        for prompt, (right, n) in counts.items():
            self.post.observe(prompt, [1.0] * right + [0.0] * (n - right),
                              step=0)

    def state_dict(self):
        return {"posterior": self.post.state_dict()}

    def load_state_dict(self, state):
        self.post.load_state_dict(state["posterior"])


class Thompson(BayesianSelector):
    """MoPPS-style prompt selection (Qu et al. 2025): one Thompson sample
    p~ ~ Beta(alpha_i, beta_i) per candidate; pick the ``k`` candidates
    whose sample is closest to ``target`` (0.5: the most informative
    success rate for a group-relative advantage)."""

    name = "thompson"

    def __init__(self, k: int = 1, target: float = 0.5, gamma: float = 0.9,
                 alpha0: float = 1.0, beta0: float = 1.0):
        super().__init__(gamma, alpha0, beta0)
        self.k, self.target = k, target

    @property
    def shape(self):
        return Shape(picks=self.k)

    def select(self, candidates, ctx):
        cands = list(dict.fromkeys(candidates))
        ab = self.post.params(cands, ctx.step)
        with torch.random.fork_rng(devices=[]):  # own stream: resumable
            torch.manual_seed(ctx.rng("thompson").getrandbits(62))
            sample = torch.distributions.Beta(ab[:, 0], ab[:, 1]).sample()
        order = torch.argsort((sample - self.target).abs(), stable=True)
        return [cands[int(j)] for j in order[:self.k]]


class EntropyCache:
    """The policy's first-token entropies, each prompt measured at most once
    per step (``values``, for ``step``).  Measured ahead with a step's
    probes, they carry over to the step they were measured for.  Its state
    goes into checkpoints under the key ``entropy_ahead``."""

    def __init__(self):
        self.step = -1
        self.values: dict = {}  # prompt -> nats, measured for self.step

    def cached(self, entropy: Callable[[list[int]], torch.Tensor],
               step: int) -> Callable[[list[int]], torch.Tensor]:
        """``entropy`` at ``step``, computing each prompt's value once."""
        if step != self.step:
            self.step, self.values = step, {}

        def measured(indices: list[int]) -> torch.Tensor:
            new = [i for i in dict.fromkeys(indices) if i not in self.values]
            if new:
                self.values.update(zip(new, entropy(new).float().cpu()
                                       .tolist(), strict=True))
            return torch.tensor([self.values[i] for i in indices])

        return measured

    def state_dict(self) -> dict:
        return {"entropy_ahead": {"step": self.step, "values": {
            str(k): v for k, v in self.values.items()}}}

    def load_state_dict(self, state: dict) -> None:
        ahead = state["entropy_ahead"]
        self.step = int(ahead["step"])
        self.values = {int(k): float(v) for k, v in ahead["values"].items()}


class PosteriorRule(BayesianSelector):
    """What the DoPR rules share: ``k`` prompts a step ranked by a score of
    each candidate's discounted Beta posterior under an empirical-Bayes
    prior (``prior_n`` pseudo-rollouts at the pool's pooled success rate:
    an unseen prompt is a typical one), probe rollouts on new candidates
    (``probe`` each on the ``probe_top`` best-ranked, generated one step
    ahead in the group's call, or now with ``ahead=False``), and the
    policy's entropy, measured once per prompt and step where the rule
    uses it.

    ``select`` = dedupe -> probe (when not ahead) -> :meth:`scores` ->
    :meth:`rank`; a subclass says how it scores and ranks, which new
    candidates it probes (:meth:`to_probe`) and whether it uses the entropy
    (:meth:`uses_entropy`), and holds only its own state.
    """

    PROBE_FREE = {"probe": 0}  # the arguments that spend no probe rollouts

    def __init__(self, gamma: float = 0.9, prior_n: float = 2.0,
                 k: int = 1, probe: int = 1, probe_top: int = 2,
                 ahead: bool = True):
        self.check_args(probe=probe, probe_top=probe_top, k=k)
        super().__init__(gamma)
        self.prior_n, self.k = prior_n, k
        self.probe, self.probe_top, self.ahead = probe, probe_top, ahead
        self.entropies = EntropyCache()
        self.last_scores: dict = {}  # term -> list, for plots and tests

    @classmethod
    def check_args(cls, **kwargs):
        super().check_args(**kwargs)
        probe, top = kwargs.get("probe", 1), kwargs.get("probe_top", 2)
        if probe < 0 or top < 0:
            raise ValueError(f"probe and probe_top must be >= 0, got "
                             f"probe={probe}, probe_top={top}")
        if kwargs.get("k", 1) < 1:
            raise ValueError(f"k must be >= 1, got {kwargs['k']}")

    @property
    def shape(self):
        return Shape(picks=self.k, probes=self.probe > 0,
                     entropy=self.uses_entropy(),
                     probe_rollouts=self.probe, probe_top=self.probe_top,
                     probe_ahead=self.ahead)

    def uses_entropy(self) -> bool:
        return False

    def prior(self, step: int) -> tuple[float, float]:
        m = self.post.pooled_mean(step)
        m = 0.5 if m is None else min(max(m, 0.01), 0.99)
        return self.prior_n * m, self.prior_n * (1 - m)

    def scores(self, candidates: list[int], ctx: SelectContext,
               salt: str = "dopr") -> dict:
        """Each candidate's ``score`` and the terms it is made of (changes
        nothing)."""
        raise NotImplementedError

    def rank(self, candidates: list[int], terms: dict,
             ctx: SelectContext) -> list[int]:
        """The ``k`` picks among ``candidates`` scored ``terms``."""
        raise NotImplementedError

    def to_probe(self, candidates: list[int],
                 ctx: SelectContext) -> list[int]:
        """Which new candidates get probe rollouts (none without probes)."""
        raise NotImplementedError

    def extra_candidates(self, ctx: SelectContext) -> list[int]:
        """Prompts scored beside the candidate batch (default: none)."""
        return []

    def _entropy(self, ctx: SelectContext, step: int) -> SelectContext:
        """``ctx`` whose entropy is measured once per prompt and step, or
        None where the rule does not use it."""
        if not (self.uses_entropy() and ctx.entropy is not None):
            return replace(ctx, entropy=None)
        return replace(ctx, entropy=self.entropies.cached(ctx.entropy, step))

    def probe_new(self, candidates: list[int], ctx: SelectContext) -> None:
        """``probe`` rollouts on :meth:`to_probe`'s candidates, now, in a
        ``generate`` call of their own (``ahead=False``)."""
        new = self.to_probe(candidates, ctx)
        if not new:
            return
        if ctx.probe_rewards is None:
            raise RuntimeError(f"{self.name}(probe=...) needs probe "
                               "rollouts, which this trainer does not "
                               "provide; set probe=0")
        self.observe_probes(new, ctx.probe_rewards(new, self.probe), ctx)

    def measure_ahead(self, candidates: list[int],
                      ctx: SelectContext) -> None:
        """Entropies to measure now for the next step (default: only those
        :meth:`to_probe` asks for)."""

    def probes_ahead(self, candidates, ctx):
        if not (self.probe and self.ahead):
            return [], 0
        nxt = self._entropy(replace(ctx, step=ctx.step + 1), ctx.step + 1)
        self.measure_ahead(list(candidates), nxt)
        return self.to_probe(list(candidates), nxt), self.probe

    def select(self, candidates, ctx):
        ctx = self._entropy(ctx, ctx.step)
        cands = list(dict.fromkeys(list(candidates)
                                   + self.extra_candidates(ctx)))
        if not self.ahead:
            self.probe_new(cands, ctx)
        terms = self.scores(cands, ctx)
        picks = self.rank(cands, terms, ctx)
        self.last_scores = {k: v.tolist() for k, v in terms.items()}
        self.last_scores["candidates"] = cands
        return picks

    def state_dict(self):
        return {**super().state_dict(), **self.entropies.state_dict()}

    def load_state_dict(self, state):
        super().load_state_dict(state)
        self.entropies.load_state_dict(state)


class DoPRv1(PosteriorRule):
    r"""DoPR as this project first formalised it (``dopr-v1``), kept so
    every table can show it against :class:`DoPR`.  Its exploration term
    is not on the volatility's scale: on a fresh pool every n_i is 0, so
    the bonus grows with t while V varies across candidates by ~0.2, and
    most picks are the highest-entropy candidate (``bench/README.md``).

    One prompt per batch, for candidate i at step t (t >= 0)::

        score_i = V_i + c * h_i * sqrt(ln(t + 2) / (n_i + 1))

    * ``V_i``, the *volatility*: the posterior probability that a group of
      G rollouts on prompt i has non-zero reward variance (so GRPO learns
      from it), E[1 - p^G - (1 - p)^G] with p ~ Beta(alpha_i, beta_i)
      (:meth:`BetaPosterior.volatility`).
    * ``alpha_i, beta_i``: a prior plus prompt i's successes and failures,
      discounted by ``gamma`` per step since they were seen, because the
      policy they describe keeps changing.
    * the prior: ``prior_n`` pseudo-rollouts at the pooled (discounted)
      success rate m of all prompts seen so far (empirical Bayes; m = 0.5
      before any data).  An unseen prompt is as volatile as the run's
      typical prompt: high early, low once most prompts are solved.
    * ``h_i``: the policy's entropy on prompt i (of its first completion
      token; a forward pass, no rollouts) divided by the largest candidate
      entropy seen so far in the run (:class:`EntropyMemo`), so h_i is in
      [0, 1]: the bonus goes to prompts the policy is unsure about, and
      fades as the policy grows confident everywhere, leaving the choice
      to the volatility.
    * ``n_i``: how often prompt i was rolled out; ``c``: the bonus weight.

    The prompt with the highest score gets the G rollouts (ties broken by a
    seeded coin).  With ``revisit > 0`` the rule also scores the ``revisit``
    already tried prompts with the highest volatility, so it can keep
    refining one prompt while its rewards stay volatile (one-shot RLVR whose
    one shot follows the policy); off by default, as a fresh prompt each
    step generalises better where one prompt's lesson does not carry over.

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

    With ``ahead=True`` (the default) the probes cost no ``generate`` call
    of their own: at step t the rule chooses which of step t+1's
    candidates to probe (the candidate stream is a pure function of the
    seed and step) and the loop generates them in step t's call, next to
    the group.  What that changes: the probes, and the entropies h of step
    t+1's candidates (measured at step t to rank them), describe the policy
    one update before the pick uses them; step 0 picks without probes.
    ``ahead=False`` probes step t's own candidates in a second call.

    Ablations: ``volatility=False`` drops V_i; ``c=0`` drops the bonus;
    ``entropy_mod=False`` sets h_i = 1; ``revisit=8`` adds tried prompts;
    ``probe=0`` stops probing; ``ahead=False`` probes in a call of its
    own.  How the defaults were chosen, on design seeds apart from the
    reported ones: ``bench/README.md``.

    Our interpretation, not the paper's text (its formula is not public):
    the volatility as an informative-group probability under a Beta
    posterior, the discounting, the empirical-Bayes prior, first-token
    entropy as the modulation, the UCB form of the bonus, and revisiting
    tried prompts, probing new candidates.
    """

    name = "dopr-v1"

    def __init__(self, c: float = 1.0, gamma: float = 0.9,
                 prior_n: float = 2.0, volatility: bool = True,
                 entropy_mod: bool = True, revisit: int = 0, k: int = 1,
                 probe: int = 1, probe_top: int = 2, ahead: bool = True):
        super().__init__(gamma, prior_n, k, probe, probe_top, ahead)
        self.c, self.revisit = c, revisit
        self.volatility, self.entropy_mod = volatility, entropy_mod
        self.peak = 0.0  # the largest entropy among picked-from candidates

    def uses_entropy(self) -> bool:
        return bool(self.entropy_mod and self.c)

    def scale(self, entropy: torch.Tensor) -> torch.Tensor:
        """h in [0, 1]: ``entropy`` over the largest seen, these included
        (changes nothing)."""
        return entropy / max(self.peak, float(entropy.max()), 1e-8)

    def scores(self, candidates, ctx, salt="dopr"):
        """Every term of the score for each candidate (changes nothing)."""
        prior = self.prior(ctx.step)
        vol = self.post.volatility(candidates, ctx.step,
                                   ctx.num_generations, prior)
        n = torch.tensor([float(ctx.history.visits.get(i, 0))
                          for i in candidates])
        bonus = torch.sqrt(math.log(ctx.step + 2) / (n + 1))
        h = torch.ones(len(candidates))
        if self.uses_entropy() and ctx.entropy is not None:
            h = self.scale(ctx.entropy(candidates).float().cpu())
        score = (vol if self.volatility else torch.zeros_like(vol)) \
            + self.c * h * bonus
        return {"volatility": vol, "entropy": h, "bonus": bonus,
                "visits": n, "score": score,
                "mean": self.post.mean(candidates, ctx.step, prior)}

    def extra_candidates(self, ctx):
        """The ``revisit`` tried prompts with the highest volatility."""
        if not self.revisit or not self.post.counts:
            return []
        tried = sorted(self.post.counts)
        vol = self.post.volatility(tried, ctx.step, ctx.num_generations,
                                   self.prior(ctx.step))
        top = torch.argsort(vol, descending=True, stable=True)
        return [tried[int(j)] for j in top[:self.revisit]]

    def to_probe(self, candidates, ctx):
        """The candidates with no rewards yet (with ``probe_top``, the
        best-scoring ``probe_top`` of them): those a probe tells most."""
        new = [i for i in candidates if i not in self.post.counts]
        if self.probe_top and len(new) > self.probe_top:
            score = self.scores(new, ctx)["score"]
            top = torch.argsort(score, descending=True, stable=True)
            new = [new[int(j)] for j in top[:self.probe_top]]
        return new if self.probe else []

    def measure_ahead(self, candidates, ctx):
        """Every next candidate's entropy, with the policy that ranks them
        for probing (the pick scales them all by one peak)."""
        if ctx.entropy is not None:
            ctx.entropy(list(dict.fromkeys(candidates)))

    def rank(self, candidates, terms, ctx):
        """The highest scores, equal ones ordered by a seeded coin; the
        candidates' entropies count in the peak that scales h."""
        if ctx.entropy is not None:
            self.peak = max(self.peak, float(ctx.entropy(candidates).max()))
        rng = ctx.rng("dopr")
        tie = torch.tensor([rng.random() for _ in candidates]) * 1e-6
        order = torch.argsort(terms["score"] + tie, descending=True)
        return [candidates[int(j)] for j in order[:self.k]]

    def state_dict(self):
        return {**super().state_dict(), "max_entropy": self.peak}

    def load_state_dict(self, state):
        super().load_state_dict(state)
        self.peak = float(state["max_entropy"])


QUANTILE_CELLS = 1024  # grid cells in p for posterior quantiles of u(p)


def informative_quantile(alpha, beta, G: int, level: float) -> torch.Tensor:
    """The upper ``level`` quantile of u(p) = 1 - p^G - (1-p)^G, the chance
    that a group of G binary rewards is not all equal, for p ~ Beta(alpha,
    beta): the largest y with P(u(p) >= y) >= 1 - level.  Computed on a
    grid of :data:`QUANTILE_CELLS` cells in p (deterministic, float64), so
    equal posteriors give exactly equal values."""
    alpha = torch.as_tensor(alpha, dtype=torch.float64).reshape(-1, 1)
    beta = torch.as_tensor(beta, dtype=torch.float64).reshape(-1, 1)
    x = (torch.arange(QUANTILE_CELLS, dtype=torch.float64) + 0.5) \
        / QUANTILE_CELLS
    u = informative_prob(x, G)
    order = torch.argsort(u, descending=True, stable=True)
    mass = torch.softmax((alpha - 1) * torch.log(x)
                         + (beta - 1) * torch.log1p(-x), dim=1)
    above = mass[:, order].cumsum(1)  # P(u(p) >= u of that cell)
    first = (above < (1 - level) - 1e-12).sum(1).clamp(max=len(x) - 1)
    return u[order][first]


class DoPR(PosteriorRule):
    r"""Dynamic one-shot policy refinement: one prompt per batch, chosen by
    an optimistic estimate of its reward volatility.

    Our formalisation of the rule Zhang et al. (2026) describe as "reward
    volatility and uncertainty-aware exploration" (the formula is not
    public).  Everything is on one scale, the chance u(p) = 1 - p^G -
    (1-p)^G that a group of G rollouts on a prompt with success rate p has
    non-zero reward variance (so GRPO learns from it):

    * each prompt's p has a discounted Beta posterior (``gamma`` per step
      since its rewards were seen; the prior is ``prior_n`` pseudo-rollouts
      at the pool's pooled success rate: an unseen prompt is a typical one);
    * ``score="ucb"``: the score is the upper quantile of u(p) at level
      1 - 1/(t + 2) (Bayes-UCB, Kaufmann et al. 2012).  Exploration lives
      in the posterior's width: it shrinks as a prompt's evidence grows,
      and it can never outweigh the evidence by more than u's own range;
      ``volatility`` in :attr:`last_scores` is the posterior mean of u;
    * ``score="sample"``: the score is u(p~) of one posterior sample p~
      (Thompson sampling on the volatility);
    * the policy's entropy on a prompt (its first completion token) is
      prior information, not a term of the score: it orders prompts whose
      scores are equal, which on a fresh pool are the unseen ones, and it
      is measured only for them (where it can change the pick);
      ``entropy=False`` breaks ties by a seeded coin and never measures it;
    * probes (``probe=1, probe_top=2``, generated one step ahead with the
      group, as :class:`DoPRv1` does): the ``probe_top`` best-ranked
      candidates of the next batch that have no rewards get ``probe``
      rollouts each, so their posterior is not the prior's when picked.

    The default, ``score="sample"`` with the probes, won a protocol
    committed before its design runs (``bench/README.md``, "DoPR
    re-derived"; candidates: Bayes-UCB with and without the entropy or the
    probes, and the sample).  A sample has no ties, so the default never
    measures the entropy.  Ranking by u(p~) is ranking by |p~ - 0.5|, the
    order :class:`Thompson` (MoPPS) uses: what this rule adds to it is the
    probes and the empirical-Bayes prior.
    """

    name = "dopr"

    def __init__(self, score: str = "sample", entropy: bool = True,
                 gamma: float = 0.9, prior_n: float = 2.0, k: int = 1,
                 probe: int = 1, probe_top: int = 2, ahead: bool = True):
        self.check_args(score=score, probe=probe, probe_top=probe_top, k=k)
        super().__init__(gamma, prior_n, k, probe, probe_top, ahead)
        self.score, self.entropy = score, entropy

    def uses_entropy(self) -> bool:  # a sample has no equal scores
        return self.entropy and self.score == "ucb"

    @classmethod
    def check_args(cls, **kwargs):
        super().check_args(**kwargs)
        if kwargs.get("score", "sample") not in ("ucb", "sample"):
            raise ValueError(f"score must be 'ucb' or 'sample', got "
                             f"{kwargs['score']!r}")

    def scores(self, candidates: list[int], ctx: SelectContext,
               salt: str = "dopr") -> dict:
        """Each candidate's score and what it is made of (changes
        nothing; ``score="sample"`` draws from a stream seeded by the
        run's seed, step and ``salt``)."""
        prior = self.prior(ctx.step)
        ab = self.post.params(candidates, ctx.step, prior)
        G = ctx.num_generations
        if self.score == "ucb":
            score = informative_quantile(ab[:, 0], ab[:, 1], G,
                                         1 - 1 / (ctx.step + 2))
        else:
            with torch.random.fork_rng(devices=[]):  # own stream: resumable
                torch.manual_seed(ctx.rng(salt).getrandbits(62))
                p = torch.distributions.Beta(ab[:, 0], ab[:, 1]).sample()
            score = informative_prob(p, G)
        return {"score": score.float(),
                "volatility": expected_informative_prob(ab[:, 0], ab[:, 1],
                                                        G),
                "mean": ab[:, 0] / ab.sum(1),
                "visits": torch.tensor([float(ctx.history.visits.get(i, 0))
                                        for i in candidates])}

    def best(self, candidates: list[int], score: torch.Tensor, m: int,
             ctx: SelectContext, salt: str) -> list[int]:
        """The ``m`` best candidates by score, equal scores ordered by the
        policy's entropy (measured only for a group of equal scores that
        straddles the cut), then by a seeded coin."""
        rng = ctx.rng(salt)
        coin = [rng.random() for _ in candidates]
        vals = score.tolist()
        order = sorted(range(len(candidates)), key=lambda j: (-vals[j],
                                                              coin[j]))
        chosen, j = [], 0
        while len(chosen) < m and j < len(order):
            group = [o for o in order[j:] if vals[o] == vals[order[j]]]
            j += len(group)
            if len(chosen) + len(group) > m and ctx.entropy is not None:
                h = ctx.entropy([candidates[o] for o in group]).tolist()
                group = [o for _, _, o in sorted(
                    zip((-e for e in h), (coin[o] for o in group), group,
                        strict=True))]
            chosen += group[:m - len(chosen)]
        return [candidates[o] for o in chosen]

    def to_probe(self, candidates, ctx):
        new = [i for i in dict.fromkeys(candidates)
               if i not in self.post.counts]
        if not self.probe:
            return []
        if self.probe_top and len(new) > self.probe_top:
            new = self.best(new, self.scores(new, ctx, "probe")["score"],
                            self.probe_top, ctx, "probe")
        return new

    def rank(self, candidates, terms, ctx):
        return self.best(candidates, terms["score"], self.k, ctx, "dopr")

    def load_state_dict(self, state):
        super().load_state_dict(state)  # a dopr checkpoint before the
        #  PosteriorRule base also saved v1's "max_entropy" (always 0): unused


SELECTORS: dict[str, type[Selector]] = {  # baselines first, DoPR last
    "full": FullBatch, "dynamic": DynamicSampling, "fixed": FixedOneShot,
    "random": RandomOne, "thompson": Thompson, "dopr-v1": DoPRv1,
    "dopr": DoPR}


def _selector_class(name: str) -> type[Selector]:
    if name not in SELECTORS:
        raise ConfigError(f"config field 'selector': unknown selector "
                          f"{name!r}; choose one of {sorted(SELECTORS)}")
    return SELECTORS[name]


def check_selector(name: str, args: dict) -> None:
    """Raise ConfigError, naming the field, unless ``make_selector(name,
    **args)`` would work; builds nothing."""
    try:
        _selector_class(name).check_args(**args)
    except (TypeError, ValueError) as err:
        if isinstance(err, ConfigError):
            raise
        raise ConfigError(f"config field 'selector_args': {err}") from err


def can_warm_start(name: str) -> bool:
    """Whether rule ``name`` can start from a pre-flight's counts."""
    return issubclass(_selector_class(name), BayesianSelector)


def make_selector(name: str, **kwargs) -> Selector:
    """A selector by its config name; unknown names list the choices."""
    check_selector(name, kwargs)
    return SELECTORS[name](**kwargs)
