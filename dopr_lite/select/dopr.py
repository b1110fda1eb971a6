"""The DoPR rules: :class:`PosteriorRule` (what they share) with
:class:`DoPRv1` and :class:`DoPR` on it."""

from __future__ import annotations

import math
from dataclasses import replace
from typing import Callable

import torch

from dopr_lite.bound import informative_prob
from dopr_lite.select.base import SelectContext, Shape
from dopr_lite.select.posterior import (BayesianSelector,
                                        expected_informative_prob)


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
    COUNTS = ("k",)

    def __init__(self, gamma: float = 0.9, prior_n: float = 2.0,
                 k: int = 1, probe: int = 1, probe_top: int = 2,
                 ahead: bool = True):
        self.check_values(probe=probe, probe_top=probe_top, k=k)
        super().__init__(gamma)
        self.prior_n, self.k = prior_n, k
        self.probe, self.probe_top, self.ahead = probe, probe_top, ahead
        self.entropies = EntropyCache()
        self.last_scores: dict = {}  # term -> list, for plots and tests

    @classmethod
    def check_values(cls, **kwargs):
        super().check_values(**kwargs)
        probe, top = kwargs.get("probe", 1), kwargs.get("probe_top", 2)
        if probe < 0 or top < 0:
            raise ValueError(f"probe and probe_top must be >= 0, got "
                             f"probe={probe}, probe_top={top}")

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
        self.check_values(score=score, probe=probe, probe_top=probe_top, k=k)
        super().__init__(gamma, prior_n, k, probe, probe_top, ahead)
        self.score, self.entropy = score, entropy

    def uses_entropy(self) -> bool:  # a sample has no equal scores
        return self.entropy and self.score == "ucb"

    @classmethod
    def check_values(cls, **kwargs):
        super().check_values(**kwargs)
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
