import json
import math

import pytest
import torch

from dopr_lite.bound import informative_prob as point_informative
from dopr_lite.errors import ConfigError
from dopr_lite.select import (SELECTORS, BayesianSelector, BetaPosterior,
                              DoPR, DoPRv1, FixedOneShot, FullBatch,
                              PromptHistory, RandomOne, SelectContext,
                              Thompson, beta_moment, can_warm_start,
                              candidate_batch, expected_informative_prob,
                              feedback, informative_quantile, make_selector)


def _ctx(step=0, history=None, seed=0, **kw):
    return SelectContext(step=step, history=history or PromptHistory(),
                         num_generations=8, seed=seed, **kw)


def _feed(selector, history, prompt, successes, step, G=8):
    """Tell ``selector`` and ``history`` prompt got ``successes`` of G."""
    rewards = torch.tensor([[1.0] * successes + [0.0] * (G - successes)])
    feedback(selector, [prompt], rewards, _ctx(step, history))


def test_candidate_batches_cover_the_pool_each_epoch():
    seen = [i for s in range(5) for i in candidate_batch(s, 20, 4, seed=1)]
    assert sorted(seen) == list(range(20))
    assert candidate_batch(7, 20, 4, 1) == candidate_batch(7, 20, 4, 1)
    assert candidate_batch(0, 20, 4, 1) != candidate_batch(0, 20, 4, 2)
    assert candidate_batch(3, 1, 4, 0) == [0, 0, 0, 0]  # one-shot: repeat
    assert sorted(candidate_batch(0, 2, 4, 0)) == [0, 0, 1, 1]


def test_full_batch_selects_everything():
    assert FullBatch().select([4, 1, 9], _ctx()) == [4, 1, 9]


def test_history_counts_visits_and_roundtrips():
    h = PromptHistory()
    h.record([5, 7])
    h.record([5])
    assert h.visits == {5: 2, 7: 1}
    g = PromptHistory()
    g.load_state_dict(json.loads(json.dumps(h.state_dict())))
    assert g.state_dict() == h.state_dict() and g.visits == h.visits


def test_feedback_counts_the_visit_then_updates_the_rule():
    sel, h = Thompson(), PromptHistory()
    feedback(sel, [3, 4], torch.tensor([[1.0, 0.0], [1.0, 1.0]]),
             _ctx(2, h))
    assert h.visits == {3: 1, 4: 1}
    assert sel.post.counts[4][:2] == [2.0, 0.0]


def test_every_rule_declares_its_shape():
    shapes = {name: make_selector(name).shape for name in SELECTORS}
    assert [n for n, s in shapes.items() if s.picks == 1] == [
        "fixed", "random", "thompson", "dopr-v1", "dopr"]
    assert shapes["full"].picks is None and shapes["dynamic"].draws == 3
    assert shapes["fixed"].probes and shapes["dopr"].probes
    assert make_selector("dopr", probe=0).shape.trains_all_it_generates
    assert not shapes["dynamic"].trains_all_it_generates
    assert make_selector("thompson", k=4).shape.picks == 4


def test_unknown_selector_and_bad_args_name_the_field():
    with pytest.raises(ConfigError, match="full"):
        make_selector("nope")
    with pytest.raises(ConfigError, match="selector_args"):
        make_selector("dopr", nonsense=1)


def test_expected_informative_prob_is_the_mean_of_the_point_formula():
    # a concentrated posterior gives the point value
    for p in (0.1, 0.5, 0.9):
        n = 1e6
        v = expected_informative_prob(torch.tensor(p * n),
                                      torch.tensor((1 - p) * n), 8)
        assert float(v) == pytest.approx(point_informative(p, 8), abs=1e-4)
    # uniform prior: 1 - 2 / (G + 1), and a Monte Carlo check
    assert float(expected_informative_prob(1.0, 1.0, 8)) == pytest.approx(
        7 / 9)
    torch.manual_seed(0)
    ps = torch.distributions.Beta(3.0, 2.0).sample((200_000,))
    mc = (1 - ps**8 - (1 - ps) ** 8).mean()
    assert float(expected_informative_prob(3.0, 2.0, 8)) == pytest.approx(
        float(mc), abs=5e-3)


def test_random_one_is_uniform_and_resumable():
    picks = [RandomOne().select(list(range(8)), _ctx(step=s))[0]
             for s in range(400)]
    assert set(picks) == set(range(8))
    counts = torch.bincount(torch.tensor(picks), minlength=8)
    assert counts.min() > 25  # ~50 each
    assert RandomOne().select([3, 4], _ctx(7)) == RandomOne().select(
        [3, 4], _ctx(7))


def test_random_k_picks_k_distinct_prompts_uniformly():
    rule = RandomOne(k=4)
    assert rule.shape.picks == 4
    picks = [rule.select([0, 1, 1, 2, 3, 4, 5, 6, 7], _ctx(step=s))
             for s in range(200)]
    assert all(len(p) == 4 and len(set(p)) == 4 for p in picks)
    counts = torch.bincount(torch.tensor(picks).flatten(), minlength=8)
    assert counts.min() > 60  # 100 each: the duplicate 1 is no likelier
    assert rule.select([5, 6], _ctx(3)) in ([5, 6], [6, 5])  # all there is
    assert RandomOne(k=4).select(list(range(8)), _ctx(9)) == picks[9]
    with pytest.raises(ValueError, match="k must be >= 1"):
        RandomOne(k=0)


def test_fixed_one_shot_probes_once_and_keeps_its_pick():
    calls = []

    def probe(indices, n):
        calls.append((list(indices), n))
        rate = {0: 1.0, 1: 0.0, 2: 0.5, 3: 0.875}
        return torch.tensor([[1.0] * int(rate[i] * n)
                             + [0.0] * (n - int(rate[i] * n))
                             for i in indices])

    sel = FixedOneShot(probe=8)
    assert sel.select([0, 1, 2, 3], _ctx(probe_rewards=probe)) == [2]
    assert sel.select([5, 6], _ctx(1, probe_rewards=probe)) == [2]
    assert calls == [([0, 1, 2, 3], 8)]
    again = FixedOneShot()
    again.load_state_dict(json.loads(json.dumps(sel.state_dict())))
    assert again.select([7], _ctx(2, probe_rewards=probe)) == [2]
    assert len(calls) == 1


def test_thompson_prefers_the_uncertain_prompt_and_keeps_the_global_rng():
    sel, h = Thompson(), PromptHistory()
    for step in range(4):
        _feed(sel, h, 0, 8, step)  # always solved
        _feed(sel, h, 1, 0, step)  # never solved
        _feed(sel, h, 2, 4, step)  # p = 0.5
    torch.manual_seed(123)
    before = torch.rand(3)
    torch.manual_seed(123)
    picks = [sel.select([0, 1, 2], _ctx(4, h, seed=s))[0]
             for s in range(50)]
    assert torch.equal(torch.rand(3), before)  # global stream untouched
    assert picks.count(2) >= 45
    clone = Thompson()
    clone.load_state_dict(json.loads(json.dumps(sel.state_dict())))
    assert [clone.select([0, 1, 2], _ctx(4, h, seed=s))[0]
            for s in range(50)] == picks


def test_dopr_picks_the_volatile_prompt_over_solved_and_hopeless_ones():
    sel, h = DoPRv1(revisit=8), PromptHistory()
    for step in range(3):
        _feed(sel, h, 0, 8, step)
        _feed(sel, h, 1, 0, step)
        _feed(sel, h, 2, 4, step)
    terms = sel.scores([0, 1, 2], _ctx(3, h))
    assert terms["volatility"][2] > 0.9 > 0.5 > terms["volatility"][0]
    assert terms["volatility"][1] < 0.5
    assert sel.select([0, 1, 2], _ctx(3, h)) == [2]
    assert sel.select([0, 1], _ctx(3, h)) == [2]  # revisited from history
    assert DoPRv1(revisit=0, probe=0).select([0, 1], _ctx(3, h))[0] in (0, 1)


def test_dopr_bonus_picks_an_unseen_prompt_and_entropy_modulates_it():
    sel, h = DoPRv1(volatility=False, c=1.0, probe=0), PromptHistory()
    _feed(sel, h, 0, 4, 0)
    assert sel.select([0, 5], _ctx(1, h)) == [5]  # unseen: larger bonus
    ent = {5: 0.1, 6: 2.0}

    def entropy(indices):
        return torch.tensor([ent.get(i, 1.0) for i in indices])

    assert sel.select([5, 6], _ctx(1, h, entropy=entropy)) == [6]
    flat = DoPRv1(volatility=False, c=1.0, entropy_mod=False)
    terms = flat.scores([5, 6], _ctx(1, h, entropy=entropy))
    assert terms["score"][0] == terms["score"][1]


def test_dopr_probes_new_candidates_once_and_their_rewards_steer_v():
    calls = []
    outcome = {0: [1.0, 1.0], 1: [1.0, 0.0], 2: [0.0, 0.0], 3: [1.0, 0.0]}

    def probe(indices, n):
        calls.append((list(indices), n))
        return torch.tensor([outcome[i] for i in indices])

    # V only (the probes decide), probing in a call of its own
    sel = DoPRv1(c=0.0, probe=2, probe_top=0, ahead=False)
    assert sel.select([0, 1, 2], _ctx(probe_rewards=probe)) == [1]
    assert calls == [([0, 1, 2], 2)]
    assert sel.select([2, 3, 0], _ctx(1, probe_rewards=probe)) == [3]
    assert calls[1] == ([3], 2)  # only the new candidate is probed
    # the probes inform the posterior but are not training visits
    assert sel.post.counts[1][:2] == [1.0, 1.0]
    with pytest.raises(RuntimeError, match="probe=0"):
        DoPRv1(probe=1, ahead=False).select([5], _ctx())
    with pytest.raises(ConfigError, match="probe and probe_top must be"):
        make_selector("dopr", probe=-1)
    with pytest.raises(ConfigError, match="probe_top=-1"):
        make_selector("dopr", probe=1, probe_top=-1)


def test_dopr_probe_top_probes_only_the_best_scoring_new_candidates():
    calls = []

    def probe(indices, n):
        calls.append(list(indices))
        return torch.zeros(len(indices), n)

    asked = []

    def entropy(indices):  # the bonus ranks 3 > 1 > 0 > 2
        asked.extend(indices)
        return torch.tensor([{0: 0.5, 1: 0.8, 2: 0.1, 3: 0.9}[i]
                             for i in indices])

    sel = DoPRv1(probe=1, probe_top=2, ahead=False)
    sel.select([0, 1, 2, 3], _ctx(probe_rewards=probe, entropy=entropy))
    assert calls == [[3, 1]]
    assert set(sel.post.counts) == {1, 3}  # the others stay unprobed
    assert sorted(asked) == [0, 1, 2, 3]  # one forward pass per prompt


def test_dopr_probes_ahead_the_next_batch_in_this_steps_call():
    """ahead=True: at step t the rule names the probes of step t+1's
    candidates (the loop generates them with step t's group), measures
    their entropies once, and the pick at t+1 uses both, probing nothing
    itself."""
    asked = []

    def entropy(indices):  # ranks the new candidates 3 > 1 > 0 > 2
        asked.extend(indices)
        return torch.tensor([{0: 0.5, 1: 0.8, 2: 0.1, 3: 0.9, 7: 0.2}[i]
                             for i in indices])

    def no_probe(indices, n):
        raise AssertionError("probed in a call of its own")

    sel, h = DoPRv1(probe=1, probe_top=2), PromptHistory()
    ctx = _ctx(0, h, probe_rewards=no_probe, entropy=entropy)
    sel.select([7], ctx)  # step 0: nothing probed, nothing known
    assert sel.probes_ahead([0, 1, 2, 3], ctx) == ([3, 1], 1)
    assert sorted(asked) == [0, 1, 2, 3, 7]
    # the probes' rewards: 3 solved (no signal left), 1 undecided
    sel.observe_probes([3, 1], torch.tensor([[1.0], [0.0]]), ctx)
    assert sel.post.counts[3][:2] == [1.0, 0.0] and not h.visits
    nxt = _ctx(1, h, probe_rewards=no_probe, entropy=entropy)
    sel.select([0, 1, 2, 3], nxt)
    assert sorted(asked) == [0, 1, 2, 3, 7]  # entropies measured ahead
    assert sel.last_scores["entropy"] == pytest.approx(
        [0.5 / 0.9, 0.8 / 0.9, 0.1 / 0.9, 1.0])
    # without probes nothing is planned ahead
    assert DoPRv1(probe=0).probes_ahead([0, 1], ctx) == ([], 0)


def test_dopr_prior_follows_the_pooled_success_rate():
    sel, h = DoPRv1(), PromptHistory()
    assert sel.prior(0) == (1.0, 1.0)
    for i in range(10):
        _feed(sel, h, i, 8, 0)
    a, b = sel.prior(0)
    assert a / (a + b) == pytest.approx(0.99)
    # an unseen prompt now looks as settled as the pool: low volatility
    assert float(sel.scores([99], _ctx(0, h))["volatility"][0]) < 0.2


def test_dopr_state_roundtrips_through_json():
    sel, h = DoPRv1(), PromptHistory()
    for step, (p, s) in enumerate([(0, 3), (1, 8), (2, 5), (0, 6)]):
        _feed(sel, h, p, s, step)
    ctx = _ctx(3, h, entropy=lambda idx: torch.arange(len(idx)) + 1.0)
    ahead = sel.probes_ahead([3, 4, 5, 0], ctx)  # entropies kept for step 4
    clone = DoPRv1()
    clone.load_state_dict(json.loads(json.dumps(sel.state_dict())))
    assert clone.probes_ahead([3, 4, 5, 0], ctx) == ahead

    def entropy(indices):  # measured anew, it would differ
        return torch.full((len(indices),), 9.0)

    for step in range(4, 9):
        ctx = _ctx(step, h, entropy=entropy)
        assert clone.select([3, 4, 0], ctx) == sel.select([3, 4, 0], ctx)
        assert torch.equal(clone.scores([0, 1, 2], ctx)["score"],
                           sel.scores([0, 1, 2], ctx)["score"])


def test_every_rule_is_registered():
    assert set(SELECTORS) == {"full", "random", "fixed", "dynamic",
                              "thompson", "dopr-v1", "dopr"}


def test_dopr_entropy_is_relative_to_the_runs_largest():
    sel, h = DoPRv1(c=1.0, probe=0), PromptHistory()
    calls = {"high": lambda idx: torch.full((len(idx),), 2.0),
             "low": lambda idx: torch.full((len(idx),), 0.1)}
    sel.select([1, 2], _ctx(0, h, entropy=calls["high"]))
    assert sel.last_scores["entropy"] == [1.0, 1.0]
    # a confident policy later: the bonus shrinks and volatility decides
    low = sel.scores([1, 2], _ctx(1, h, entropy=calls["low"]))["entropy"]
    assert low.tolist() == pytest.approx([0.05, 0.05])
    clone = DoPRv1(c=1.0)
    clone.load_state_dict(json.loads(json.dumps(sel.state_dict())))
    assert clone.peak == 2.0


def test_dopr_queries_change_nothing():
    sel, h = DoPRv1(revisit=4), PromptHistory()
    for step, (p, s) in enumerate([(0, 3), (1, 8), (2, 5)]):
        _feed(sel, h, p, s, step)
    before = json.dumps(sel.state_dict())

    def entropy(indices):
        return torch.arange(len(indices)) + 5.0

    ctx = _ctx(3, h, entropy=entropy)
    sel.scores([0, 4, 5, 6], ctx)
    sel.extra_candidates(ctx)
    sel.to_probe([4, 5, 6, 7], ctx)
    sel.prior(3)
    assert json.dumps(sel.state_dict()) == before


def test_the_bayesian_rules_share_one_posterior_base():
    assert [n for n, c in SELECTORS.items()
            if issubclass(c, BayesianSelector)] == ["thompson", "dopr-v1",
                                                    "dopr"]
    assert [n for n in SELECTORS if can_warm_start(n)] == [
        "thompson", "dopr-v1", "dopr"]
    for sel in (Thompson(), DoPRv1(), DoPR()):
        sel.warm_start({0: (8, 8), 1: (2, 8)})
        sel.observe_probes([2], torch.tensor([[1.0, 0.0]]), _ctx(0))
        assert sel.post.counts == {0: [8.0, 0.0, 0], 1: [2.0, 6.0, 0],
                                   2: [1.0, 1.0, 0]}
    with pytest.raises(ValueError, match="no per-prompt success rates"):
        RandomOne().warm_start({0: (1, 2)})


def test_posterior_volatility_is_the_informative_prob_of_its_params():
    post = BetaPosterior(gamma=0.5)
    post.observe(0, [1.0, 1.0, 0.0], step=0)
    ab = post.params([0, 9], step=2, prior=(1.0, 3.0))
    assert ab.tolist() == [[1.5, 3.25], [1.0, 3.0]]  # decayed by 0.5^2
    assert torch.equal(post.volatility([0, 9], 2, 8, prior=(1.0, 3.0)),
                       expected_informative_prob(ab[:, 0], ab[:, 1], 8))
    assert post.mean([9], 2, prior=(1.0, 3.0)).tolist() == [0.25]


def test_beta_moment_is_the_product_formula():
    a, b = torch.tensor([0.5, 2.0]), torch.tensor([1.5, 3.0])
    want = [math.prod((x + j) / (x + y + j) for j in range(5))
            for x, y in ((0.5, 1.5), (2.0, 3.0))]
    assert beta_moment(a, b, 5).tolist() == pytest.approx(want, rel=1e-12)
    assert float(beta_moment(1.0, 1.0, 8)) == pytest.approx(1 / 9)


def test_informative_quantile_is_on_u_scale_and_shrinks_with_evidence():
    G = 8
    # a concentrated posterior: every quantile is the point value u(p)
    for p in (0.1, 0.5, 0.8):
        n = 1e5
        q = informative_quantile(p * n, (1 - p) * n, G, 0.9)
        assert float(q) == pytest.approx(  # to the grid: |du/dp| <= G
            1 - p ** G - (1 - p) ** G, abs=G / 1024)
    # monotone in the level, bounded by u's range
    levels = [0.5, 0.8, 0.95, 0.99]
    qs = [float(informative_quantile(2.0, 6.0, G, lv)) for lv in levels]
    assert qs == sorted(qs) and 0 <= qs[0] and qs[-1] <= 1
    # a solved prompt: its optimism fades as its evidence grows
    few, many = informative_quantile([3.0, 30.0], [1.0, 1.0], G, 0.95)
    assert float(many) < float(few)
    # Monte Carlo agrees with the grid
    torch.manual_seed(0)
    p = torch.distributions.Beta(3.0, 5.0).sample((200_000,))
    u = 1 - p ** G - (1 - p) ** G
    mc = torch.quantile(u[:100_000], 0.9)
    assert float(informative_quantile(3.0, 5.0, G, 0.9)) == pytest.approx(
        float(mc), abs=5e-3)


def test_dopr_scores_put_a_volatile_prompt_above_solved_and_hopeless():
    for score in ("ucb", "sample"):
        sel, h = DoPR(score=score, probe=0), PromptHistory()
        for step in range(3):
            _feed(sel, h, 0, 8, step)
            _feed(sel, h, 1, 0, step)
            _feed(sel, h, 2, 4, step)
        assert sel.select([0, 1, 2], _ctx(3, h)) == [2]
        terms = sel.scores([0, 1, 2], _ctx(3, h))
        assert terms["score"][2] > max(terms["score"][0], terms["score"][1])
        assert all(0 <= v <= 1 for v in terms["score"].tolist())


def test_dopr_entropy_orders_only_equal_scores_and_is_measured_for_them():
    sel, h = DoPR(score="ucb", probe=0), PromptHistory()
    for step in range(3):
        _feed(sel, h, 0, 8, step)  # solved: a low score
    asked = []

    def entropy(indices):
        asked.extend(indices)
        return torch.tensor([{0: 9.0, 5: 0.1, 6: 2.0, 7: 1.0}[i]
                             for i in indices])

    # 5, 6, 7 are unseen (equal scores): the entropy orders them; the
    # solved prompt's high entropy does not lift it
    assert sel.select([0, 5, 6, 7], _ctx(3, h, entropy=entropy)) == [6]
    assert sorted(asked) == [5, 6, 7]
    # one candidate alone at the top: no entropy is measured
    asked.clear()
    _feed(sel, h, 5, 4, 3)
    assert sel.select([0, 5, 6, 7], _ctx(4, h, entropy=entropy)) == [5]
    assert asked == []
    # entropy=False: a seeded coin among equals, nothing measured
    flat = DoPR(score="ucb", probe=0, entropy=False)
    picks = {flat.select([5, 6, 7], _ctx(s, PromptHistory(), seed=s,
                                         entropy=entropy))[0]
             for s in range(20)}
    assert asked == [] and len(picks) > 1


def _exhaustive_pick(sel, cands, ctx, ent):
    """The pick with every candidate's entropy ``ent`` known: the highest
    score, equal scores won by the higher entropy (``ent``'s values are
    distinct, so no coin is ever needed)."""
    score = sel.scores(cands, ctx)["score"].tolist()
    top = [c for c, s in zip(cands, score, strict=True) if s == max(score)]
    return [max(top, key=lambda c: float(ent[c]))]


def test_dopr_coin_breaks_equal_scores_uniformly_and_reproducibly():
    """entropy=False: among equal scores a coin that depends on (seed,
    step) only; a lower score never wins, whatever the coin."""
    flat, h = DoPR(score="ucb", probe=0, entropy=False), PromptHistory()
    for step in range(3):
        _feed(flat, h, 0, 8, step)  # solved: below the unseen 5-8
    cands, steps = [0, 5, 6, 7, 8], range(3, 13)
    for step in steps:
        terms = flat.scores(cands, _ctx(step, h))["score"].tolist()
        assert terms[0] < min(terms[1:]) and len(set(terms[1:])) == 1

    def pick(seed, step, rule=flat):
        return rule.select(cands, _ctx(step, h, seed=seed))[0]

    picks = {(seed, step): pick(seed, step) for seed in range(100)
             for step in steps}
    counts = [list(picks.values()).count(c) for c in cands]
    # 1000 fair draws among 4: 250 each, standard deviation 13.7
    assert counts[0] == 0 and all(abs(n - 250) < 60 for n in counts[1:])
    again = DoPR(score="ucb", probe=0, entropy=False)
    again.load_state_dict(json.loads(json.dumps(flat.state_dict())))
    assert all(pick(seed, step, again) == p
               for (seed, step), p in picks.items())
    assert len({picks[0, step] for step in steps}) > 1
    assert len({picks[seed, 3] for seed in range(10)}) > 1


def test_dopr_a_strictly_higher_score_always_wins():
    cands = [0, 1, 2, 9]
    for score in ("ucb", "sample"):
        sel, h = DoPR(score=score, probe=0, entropy=False), PromptHistory()
        for step in range(3):
            _feed(sel, h, 0, 8, step)
            _feed(sel, h, 1, 0, step)
            _feed(sel, h, 2, 4, step)
        strict = 0
        for seed in range(5):
            for step in range(3, 43):
                ctx = _ctx(step, h, seed=seed)
                # a sampled score is drawn per (seed, step): read it first
                terms = sel.scores(cands, ctx)["score"].tolist()
                top = [c for c, t in zip(cands, terms, strict=True)
                       if t == max(terms)]
                picked = sel.select(cands, ctx)
                assert picked == top if len(top) == 1 else picked[0] in top
                strict += len(top) == 1
        assert strict > 100, score  # of 200 (seed, step)s


def test_dopr_picks_equal_the_exhaustive_rule_on_a_seeded_run():
    """Measuring entropies only where they can change the pick picks what
    measuring every candidate's would, step by step, with probes."""
    gen = torch.Generator().manual_seed(3)
    rate = torch.rand(64, generator=gen)  # each prompt's success rate
    ent = torch.rand(64, generator=gen) * 2
    assert len(set(ent.tolist())) == 64
    measured = []

    def entropy(indices):
        measured.append(len(indices))
        return ent[indices]

    def rewards(i, n, step):
        g = torch.Generator().manual_seed(1000 * step + i)
        return (torch.rand(n, generator=g) < rate[i]).float()

    sel, h = DoPR(score="ucb", probe=1, probe_top=2), PromptHistory()
    for step in range(40):
        ctx = _ctx(step, h, entropy=entropy)
        cands = candidate_batch(step, 64, 16, seed=0)
        want = _exhaustive_pick(sel, list(dict.fromkeys(cands)), ctx, ent)
        assert sel.select(cands, ctx) == want
        probes, n = sel.probes_ahead(candidate_batch(step + 1, 64, 16, 0),
                                     ctx)
        feedback(sel, want, rewards(want[0], 8, step).unsqueeze(0), ctx)
        if probes:
            sel.observe_probes(probes, torch.stack(
                [rewards(i, n, step + 1) for i in probes]), ctx)
    assert sum(measured) < 40 * 16 * 2  # fewer than measuring every one


def test_dopr_v2_state_roundtrips_and_queries_change_nothing():
    for score in ("ucb", "sample"):
        sel, h = DoPR(score=score), PromptHistory()
        for step, (p, s) in enumerate([(0, 3), (1, 8), (2, 5), (0, 6)]):
            _feed(sel, h, p, s, step)
        ctx = _ctx(4, h, entropy=lambda idx: torch.arange(len(idx)) + 1.0)
        before = json.dumps(sel.state_dict())
        sel.scores([0, 4, 5], ctx)
        sel.to_probe([4, 5, 6, 7], ctx)
        assert json.dumps(sel.state_dict()) == before
        ahead = sel.probes_ahead([3, 4, 5, 0], ctx)
        clone = DoPR(score=score)
        clone.load_state_dict(json.loads(json.dumps(sel.state_dict())))
        assert clone.probes_ahead([3, 4, 5, 0], ctx) == ahead
        for step in range(5, 9):
            ctx = _ctx(step, h, entropy=lambda idx: torch.ones(len(idx)))
            assert clone.select([3, 4, 0], ctx) == sel.select([3, 4, 0], ctx)


def test_dopr_v2_refuses_an_unknown_score():
    with pytest.raises(ConfigError, match="score must be"):
        make_selector("dopr", score="mean")


def test_dopr_default_samples_and_never_measures_the_entropy():
    """The default (score="sample") has no equal scores to order."""
    asked = []

    def entropy(indices):
        asked.extend(indices)
        return torch.ones(len(indices))

    sel, h = DoPR(), PromptHistory()
    ctx = _ctx(0, h, entropy=entropy)
    sel.select(list(range(32)), ctx)
    assert sel.probes_ahead(list(range(32, 64)), ctx)[1] == 1
    assert asked == [] and sel.score == "sample"


def test_every_rules_picks_match_the_recorded_ones():
    """Each rule's picks on a seeded model-free run (tests/picks_sim.py)
    equal those recorded before the posterior rules were refactored onto
    one base (tests/data/picks.json): a change that moves a pick of any
    rule moves every seeded run's numbers, and must say so."""
    from pathlib import Path

    from picks_sim import RULES, simulate

    recorded = json.loads((Path(__file__).parent / "data" / "picks.json")
                          .read_text())
    assert set(recorded) == set(RULES)
    for label, (name, args) in RULES.items():
        assert simulate(name, args) == recorded[label], label
