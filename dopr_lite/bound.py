"""Sample-complexity lower bounds for unlocking a capability with RLVR.

The paper proves a lower bound on the number of training instances needed to
unlock a reasoning capability; its statement is not public.  These are OUR
formalisations, stated and proved in ``notebooks/01_sample_complexity``.

Setting.  Rewards are binary and verifiable.  On prompt ``i`` the base
policy succeeds with probability ``p_i``.  GRPO draws groups of ``G``
rollouts; a group whose rewards are all equal has zero advantage, so it
cannot move the policy.  A group is *informative* with probability

    q(p, G) = 1 - p**G - (1 - p)**G.

Results (each a lower bound that every algorithm obeys):

1. :func:`groups_to_signal` — on one prompt, reaching a first non-zero
   update with probability >= 1 - delta takes at least
   ``ln(1/delta) / -ln(1 - q)`` groups (``G`` times that in rollouts).
2. :func:`rollouts_to_detect` — telling apart success rates ``p0`` (no
   capability) and ``p1`` (capability) with both error probabilities <= delta
   takes at least ``ln(1/(4 delta)) / KL(p1 || p0)`` rollouts
   (Bretagnolle-Huber inequality; Kaufmann et al. 2016 for bandits).
3. :func:`instances_to_find` — if a share ``pi`` of candidate prompts is
   informative (``eps <= p <= 1 - eps``), then ``k`` prompts drawn at random
   *with replacement* contain one with probability >= 1 - delta only if
   ``k >= ln(1/delta) / -ln(1 - pi)``.  Distinct prompts (drawn without
   replacement from a pool of ``N``, ``M = pi N`` of them informative) miss
   with probability ``C(N-M, k) / C(N, k) <= (1 - pi)^k``, so fewer can be
   enough: the exact count (``pool_size=N``) is at most the i.i.d. one.
   With a capability shared across prompts one informative instance can be
   enough, so the instance count depends on ``pi`` and ``delta``, not on
   the dataset size.

Theorems 1 and 3 are one fact, "independent tries that each hit with
probability ``s`` all miss with probability ``(1 - s)^m``"
(:func:`draws_to_hit`), applied to different tries: groups on a prompt (a
group hits if it is mixed) and prompts from a pool (a prompt hits if it is
informative).  Applied to *groups on prompts drawn at random* it gives the
groups a random-prompt rule needs for a first signal, with ``s`` the pool's
mean ``q(p_i, G)``.
"""

from __future__ import annotations

import math


def _check_prob(name: str, x: float, open_: bool = False) -> None:
    lo_ok = x > 0 if open_ else x >= 0
    hi_ok = x < 1 if open_ else x <= 1
    if not (lo_ok and hi_ok):
        raise ValueError(f"{name} must be in {'(0, 1)' if open_ else '[0, 1]'}"
                         f", got {x!r}")


def informative_prob(p, G: int):
    """q(p, G) = 1 - p^G - (1-p)^G: the chance that a group of G rollouts
    holds both outcomes, for a success rate p (a float, checked, or a
    tensor or array of them, elementwise): the one place it is written."""
    if G < 1:
        raise ValueError(f"G must be >= 1, got {G}")
    if isinstance(p, (int, float)):
        _check_prob("p", p)
        return max(0.0, 1.0 - p ** G - (1.0 - p) ** G)
    return 1 - p ** G - (1 - p) ** G


def draws_to_hit(share: float, delta: float) -> float:
    """Fewest independent tries, each a hit with probability ``share``,
    for at least one hit with probability >= 1 - delta (``inf`` if
    ``share`` is 0)."""
    _check_prob("share", share)
    _check_prob("delta", delta, open_=True)
    if share <= 0.0:
        return math.inf
    if share >= 1.0:
        return 1.0
    return max(1.0, math.ceil(math.log(delta) / math.log1p(-share)))


def groups_to_signal(p: float, G: int, delta: float) -> float:
    """Fewest groups on one prompt for a non-zero update w.p. >= 1 - delta.

    ``inf`` when ``q = 0`` (p in {0, 1}, or G = 1): no number of groups
    ever gives GRPO a signal.
    """
    _check_prob("delta", delta, open_=True)
    return draws_to_hit(informative_prob(p, G), delta)


def rollouts_to_signal(p: float, G: int, delta: float) -> float:
    """Bound 1 in rollouts: ``G * groups_to_signal``."""
    return G * groups_to_signal(p, G, delta)


def bernoulli_kl(a: float, b: float) -> float:
    """KL(Ber(a) || Ber(b)) in nats."""
    _check_prob("a", a)
    _check_prob("b", b)

    def term(x, y):
        if x == 0:
            return 0.0
        if y == 0:
            return math.inf
        return x * math.log(x / y)

    return term(a, b) + term(1 - a, 1 - b)


def rollouts_to_detect(p0: float, p1: float, delta: float) -> float:
    """Fewest rollouts to tell success rate p1 from p0 with error <= delta.

    Bretagnolle-Huber: for any test, P0(reject) + P1(accept) >=
    exp(-n KL(P1 || P0)) / 2, so both errors <= delta needs
    ``n >= ln(1 / (4 delta)) / KL(p1 || p0)``.  Returns 0 when
    ``delta >= 1/4`` (a coin flip's error is already small enough).
    """
    _check_prob("delta", delta, open_=True)
    if p0 == p1:
        return math.inf
    kl = bernoulli_kl(p1, p0)
    need = math.log(1.0 / (4.0 * delta))
    return max(0.0, need / kl) if kl > 0 else math.inf


def instances_to_find(pi: float, delta: float,
                      pool_size: int | None = None) -> float:
    """Fewest random prompts that contain an informative one w.p. >= 1-delta.

    ``pi``: the share of informative prompts in the pool.  Without
    ``pool_size`` the prompts are independent draws (with replacement);
    with it they are distinct prompts of a pool of that size, of which
    ``round(pi * pool_size)`` are informative (hypergeometric: never more
    than the independent count).
    """
    _check_prob("pi", pi)
    _check_prob("delta", delta, open_=True)
    if pool_size is None:
        return draws_to_hit(pi, delta)
    if pool_size < 1:
        raise ValueError(f"pool_size must be >= 1, got {pool_size}")
    hits = round(pi * pool_size)
    if hits == 0:
        return math.inf
    miss = 1.0  # P(the first k distinct prompts are all uninformative)
    for k in range(1, pool_size - hits + 2):
        miss *= (pool_size - hits - k + 1) / (pool_size - k + 1)
        if miss <= delta:
            return float(k)
    return float(pool_size - hits + 1)
