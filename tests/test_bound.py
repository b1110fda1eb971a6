import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dopr_lite import bound as B

probs = st.floats(0.01, 0.99)
deltas = st.floats(0.001, 0.5)


def test_informative_prob_values():
    assert B.informative_prob(0.5, 2) == pytest.approx(0.5)
    assert B.informative_prob(0.5, 8) == pytest.approx(1 - 2 / 256)
    assert B.informative_prob(0.0, 8) == 0.0
    assert B.informative_prob(1.0, 8) == 0.0
    assert B.informative_prob(0.3, 1) == 0.0


@settings(max_examples=200, deadline=None)
@given(probs, st.integers(2, 64))
def test_informative_prob_symmetric_and_increasing_in_G(p, G):
    q = B.informative_prob(p, G)
    assert q == pytest.approx(B.informative_prob(1 - p, G))
    assert B.informative_prob(p, G + 1) >= q - 1e-12


@settings(max_examples=200, deadline=None)
@given(probs, st.integers(2, 32), deltas)
def test_groups_to_signal_monotone(p, G, delta):
    n = B.groups_to_signal(p, G, delta)
    assert n >= 1
    assert B.groups_to_signal(p, G, delta / 2) >= n  # more confidence
    # exactness: with n groups the failure chance is <= delta, with n - 1
    # groups it is not (unless n == 1)
    q = B.informative_prob(p, G)
    assert (1 - q) ** n <= delta * (1 + 1e-9)
    if n > 1:
        assert (1 - q) ** (n - 1) > delta


def test_signal_limits():
    assert B.groups_to_signal(0.0, 8, 0.1) == math.inf
    assert B.groups_to_signal(0.5, 1, 0.1) == math.inf
    assert B.rollouts_to_signal(0.5, 8, 0.05) == 8.0  # q ~ 0.992
    # rare successes need many rollouts: p = 0.01, G = 8 -> q ~ 0.077
    assert B.rollouts_to_signal(0.01, 8, 0.05) > 250


@settings(max_examples=200, deadline=None)
@given(st.floats(0.05, 0.9), st.floats(0.01, 0.09), deltas)
def test_detection_needs_more_rollouts_for_smaller_gaps(p0, gap, delta):
    n = B.rollouts_to_detect(p0, p0 + gap, delta)
    assert n <= B.rollouts_to_detect(p0, p0 + gap / 2, delta) + 1e-9


def test_detection_limits():
    assert B.rollouts_to_detect(0.3, 0.3, 0.05) == math.inf
    assert B.rollouts_to_detect(0.3, 0.5, 0.3) == 0.0
    kl = B.bernoulli_kl(0.5, 0.3)
    assert B.rollouts_to_detect(0.3, 0.5, 0.01) == pytest.approx(
        math.log(25) / kl)


def test_bernoulli_kl():
    assert B.bernoulli_kl(0.3, 0.3) == 0.0
    assert B.bernoulli_kl(1.0, 0.0) == math.inf
    assert B.bernoulli_kl(0.0, 0.5) == pytest.approx(math.log(2))


@settings(max_examples=200, deadline=None)
@given(st.floats(0.01, 0.99), deltas)
def test_instances_to_find(pi, delta):
    k = B.instances_to_find(pi, delta)
    assert (1 - pi) ** k <= delta * (1 + 1e-9)
    assert B.instances_to_find(min(1.0, pi * 1.5), delta) <= k


@settings(max_examples=200, deadline=None)
@given(st.integers(1, 300), st.floats(0.01, 1.0), deltas)
def test_instances_without_replacement_exact_and_never_more(n, pi, delta):
    """Distinct prompts: the smallest k whose hypergeometric miss
    probability C(N-M, k) / C(N, k) is <= delta, and never more than the
    independent-draws count."""
    m = round(pi * n)
    k = B.instances_to_find(pi, delta, pool_size=n)
    if m == 0:
        assert k == math.inf
        return

    def miss(j):
        return math.comb(n - m, j) / math.comb(n, j)

    assert miss(int(k)) <= delta * (1 + 1e-9)
    assert k == 1 or miss(int(k) - 1) > delta
    assert k <= B.instances_to_find(m / n, delta)


def test_draws_to_hit_is_both_theorems():
    assert B.groups_to_signal(0.3, 8, 0.05) == B.draws_to_hit(
        B.informative_prob(0.3, 8), 0.05)
    assert B.instances_to_find(0.2, 0.05) == B.draws_to_hit(0.2, 0.05)


def test_bad_arguments_are_named():
    with pytest.raises(ValueError, match="delta"):
        B.groups_to_signal(0.5, 8, 0.0)
    with pytest.raises(ValueError, match="p must"):
        B.informative_prob(1.5, 8)
