"""Per-prompt success rates under discounted Beta posteriors, the chance
that a group is informative under them, and the rules built on them:
:class:`BayesianSelector` and Thompson sampling (MoPPS)."""

from __future__ import annotations

import torch

from dopr_lite.select.base import Selector, Shape


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
    COUNTS = ("k",)

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
