"""Pre-flight: measure a prompt pool before spending rollouts on it.

GRPO learns only from groups that hold a right and a wrong answer: on a
prompt the policy solves with probability p, a group of G rollouts carries
a signal with probability q(p, G) = 1 - p^G - (1 - p)^G
(:func:`dopr_lite.bound.informative_prob`).  :func:`preflight` samples
``k`` rollouts on each of N prompts of the RL pool, with the run's sampling
settings, and :func:`pool_numbers` turns the counts, once, into what a run
will meet (kept in the :class:`PoolReport`): the histogram of per-prompt
success, the shares of all-wrong, all-right and mixed groups at each G
(with a 95% interval), the share of full-batch GRPO's rollouts that teach
nothing and notebook 01's bounds on this pool; :func:`recommend` reads
plain advice off those numbers and :func:`format_report` prints them.

Estimating the shares.  For G <= k the estimate is unbiased prompt by
prompt: of the C(k, G) G-subsets of a prompt's k samples, C(c, G) are all
right (c right answers), and E[C(c, G) / C(k, G)] = p^G.  For G > k no
unbiased estimate exists: the report uses the posterior mean of p^G under
Jeffreys' prior Beta(c + 1/2, k - c + 1/2) and marks those G as
extrapolated.  The interval bootstraps prompts: each prompt's estimate is
its own draw, so resampling prompts carries both the pool's spread and the
binomial noise of k samples.

The counts can also start DoPR's or Thompson's per-prompt posterior
(config field ``preflight``), so that a run begins knowing which prompts are
undecided; :func:`read_counts` checks that the file measured this pool, and
the run counts the pre-flight's rollouts in its cost, as probes.
"""

from __future__ import annotations

import hashlib
import json
import math
import random
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
from tqdm.auto import tqdm

from dopr_lite.bound import instances_to_find, rollouts_to_signal
from dopr_lite.config import DoprConfig
from dopr_lite.data import PromptData
from dopr_lite.errors import ConfigError
from dopr_lite.evaluation import expected_shares, success_counts
from dopr_lite.files import write_atomic
from dopr_lite.inputs import load_inputs
from dopr_lite.policy import Policy
from dopr_lite.rewards import get_reward
from dopr_lite.rollout import RolloutCounter, generation_config
from dopr_lite.select import beta_moment

GROUP_SIZES = (2, 4, 8, 16, 32)  # the G the report covers, with the run's
DELTA = 0.05  # failure probability of the bounds
BOOTSTRAP = 2000  # resamples for the 95% intervals
WASTE_SMALL = 0.10  # below this all-equal share, selection has little to save
SEED_OFFSET = 20_011  # pre-flight samples with seed + this


def digest(prompt: str) -> str:
    """A short fingerprint of a prompt's text (to match a file to a pool)."""
    return hashlib.sha256(prompt.encode()).hexdigest()[:16]


def all_equal_estimates(counts, k: int, G: int) -> tuple[np.ndarray,
                                                         np.ndarray]:
    """Per prompt, estimates of P(G rollouts all wrong) and P(all right)
    from ``counts`` right answers out of ``k`` (unbiased when G <= k,
    Jeffreys posterior means beyond; see the module docstring)."""
    c = np.asarray(counts, dtype=float)
    if G <= k:
        total = math.comb(k, G)
        right = np.array([math.comb(int(x), G) for x in c]) / total
        wrong = np.array([math.comb(k - int(x), G) for x in c]) / total
        return wrong, right
    a, b = c + 0.5, k - c + 0.5
    return beta_moment(b, a, G).numpy(), beta_moment(a, b, G).numpy()


def pool_shares(counts, k: int, G: int, seed: int = 0) -> dict:
    """Expected shares of all-wrong, all-right and mixed groups of ``G``
    from ``counts`` right answers out of ``k``, each with a 95% bootstrap
    interval (``seed``: the resampling's)."""
    wrong, right = all_equal_estimates(counts, k, G)
    return {"G": G, "extrapolated": G > k, "n": len(counts),
            **expected_shares(wrong, right, BOOTSTRAP, seed)}


def pool_bounds(counts, k: int, G: int, mixed: float,
                delta: float = DELTA) -> dict:
    """Notebook 01's bounds on a pool whose groups of ``G`` are ``mixed``
    (a share) and whose prompts had ``counts`` right answers out of
    ``k``."""
    find = instances_to_find(min(max(mixed, 0.0), 1.0), delta)
    undecided = [c / k for c in counts if 0 < c < k]
    per_prompt = [rollouts_to_signal(p, G, delta) for p in undecided]
    return {
        "delta": delta,
        "informative_share": mixed,
        # random prompts a rule must try to meet one informative group
        "instances_to_find": find,
        "rollouts_to_first_signal": G * find,
        # prompts that showed both outcomes in k samples, and the
        # rollouts a typical one needs for a first signal
        "undecided_share": len(undecided) / len(counts),
        "median_rollouts_to_signal_undecided": float(
            np.median(per_prompt)) if per_prompt else math.inf,
    }


def pool_numbers(counts, k: int, G: int, groups: dict) -> dict:
    """Everything a pre-flight's counts say, computed once: the histogram
    of right answers, the shares at each G of :data:`GROUP_SIZES` and the
    run's ``G`` (keyed by G), the shares at ``G`` of each group of
    positions in ``groups``, and the bounds at ``G``."""
    c = np.asarray(counts)
    shares = {g: pool_shares(c, k, g) for g in sorted({*GROUP_SIZES, G})}
    return {
        "histogram": np.bincount(c, minlength=k + 1).tolist(),
        "shares": shares,
        "by_group": {name: pool_shares(c[list(pos)], k, G)
                     for name, pos in groups.items()},
        "bounds": pool_bounds(counts, k, G, shares[G]["mixed"]),
    }


def recommend(numbers: dict, G: int) -> list[str]:
    """Plain advice read off a pre-flight's :func:`pool_numbers` for a run
    with groups of ``G``; heuristics, stated as such."""
    shares = numbers["shares"]
    at = shares[G]
    waste, lines = 1.0 - at["mixed"], []
    mixed = {g: shares[g]["mixed"] for g in GROUP_SIZES}
    enough = [g for g, m in mixed.items() if m >= 0.5]
    if enough:
        g = enough[0]
        lines.append(f"G: {g} is the smallest group size with at least "
                     f"half the groups mixed ({mixed[g]:.0%}" + (
                         f"; the run's G = {G}: {at['mixed']:.0%})"
                         if g != G else ")"))
    else:
        lines.append(f"G: even G = {GROUP_SIZES[-1]} leaves most groups "
                     "all-equal here; filter the pool first")
    find = numbers["bounds"]["instances_to_find"]
    if math.isfinite(find):
        batch = max(8, 2 ** math.ceil(math.log2(max(find, 1))))
        lines.append(f"candidate batch: >= {batch} prompts, so that a "
                     f"batch holds an informative prompt with "
                     f"probability >= {1 - DELTA:.0%}")
    if at["all_wrong"] > 0.5:
        lines.append(f"{at['all_wrong']:.0%} of groups would be all "
                     "wrong: most prompts are beyond this model; an "
                     "easier pool or a warm-up first")
    elif at["all_right"] > 0.5:
        lines.append(f"{at['all_right']:.0%} of groups would be all "
                     "right: most prompts are solved; a harder pool")
    if waste < WASTE_SMALL:
        lines.append(f"full-batch GRPO wastes only {waste:.0%} of its "
                     "rollouts here: a selection rule has little to save")
    else:
        lines.append(f"full-batch GRPO would spend {waste:.0%} of its "
                     "rollouts on all-equal groups: dynamic sampling "
                     "(DAPO) discards them after paying for them; a rule "
                     "that ranks prompts by their measured success rate "
                     "(Thompson, DoPR) can avoid only the ones it has "
                     "evidence on, and a one-prompt rule updates every G "
                     "rollouts whatever the share")
    return lines


@dataclass
class PoolReport:
    """What a pre-flight measured, and the numbers that follow from it
    (:func:`pool_numbers`, computed once when the report is made)."""

    k: int  # rollouts sampled per prompt
    G: int  # the run's group size
    prompts: list[int]  # RL-pool indices measured
    counts: list[int]  # right answers out of k, per measured prompt
    digests: list[str]  # fingerprint of each measured prompt's text
    groups: dict = field(default_factory=dict)  # label -> [positions]
    rollouts: int = 0
    tokens: int = 0
    seconds: float = 0.0
    settings: dict = field(default_factory=dict)  # model, data, sampling
    numbers: dict = field(init=False, repr=False)  # pool_numbers(...)

    def __post_init__(self):
        self.numbers = pool_numbers(self.counts, self.k, self.G,
                                    self.groups)

    def histogram(self) -> list[int]:
        """Prompts with 0, 1, ..., k right answers."""
        return self.numbers["histogram"]

    def shares(self, G: int | None = None) -> dict:
        """Expected shares of all-wrong, all-right and mixed groups of
        ``G`` (default: the run's), each with a 95% bootstrap interval."""
        G = G or self.G
        known = self.numbers["shares"].get(G)
        return known if known is not None else pool_shares(self.counts,
                                                           self.k, G)

    def bounds(self) -> dict:
        """Notebook 01's bounds on this pool, at the run's G."""
        return self.numbers["bounds"]

    def recommendation(self) -> list[str]:
        """Plain advice read off the shares (:func:`recommend`)."""
        return recommend(self.numbers, self.G)

    def to_dict(self) -> dict:
        out = asdict(self)
        numbers = out.pop("numbers")
        out["histogram"] = numbers["histogram"]
        out["shares"] = {str(G): s for G, s in numbers["shares"].items()}
        out["by_group"] = numbers["by_group"]
        out["bounds"] = numbers["bounds"]
        out["recommendation"] = self.recommendation()
        return out

    def table(self) -> str:
        """The report as text (:func:`format_report`)."""
        return format_report(self)

    def save(self, path) -> Path:
        """Write the report as JSON, atomically (no half-written file)."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        return write_atomic(path, json.dumps(self.to_dict(), indent=1))


def format_report(report: PoolReport) -> str:
    """A pre-flight as text: shares by G, by group, bounds, advice."""
    r, numbers = report, report.numbers
    lines = [f"pre-flight: {len(r.counts)} prompts x {r.k} "
             f"rollouts = {r.rollouts:,} rollouts ({r.seconds:.0f} s)",
             f"right answers out of {r.k}: " + " ".join(
                 f"{c}:{n}" for c, n in enumerate(numbers["histogram"])),
             "",
             f"{'G':>4}{'all wrong':>18}{'all right':>18}{'mixed':>18}"]
    for G, s in numbers["shares"].items():
        mark = "*" if s["extrapolated"] else "<" if G == r.G else ""
        lines.append(f"{G:>4}" + "".join(
            f"{s[n]:>7.1%} [{s[n + '_95'][0]:.0%},{s[n + '_95'][1]:.0%}]"
            .rjust(18) for n in ("all_wrong", "all_right", "mixed"))
            + f" {mark}")
    lines.append("(95% intervals; < the run's G; * G > k: "
                 "extrapolated from a Beta posterior)")
    if r.groups:
        lines += ["", f"by group, G = {r.G}:"]
        for g, pos in r.groups.items():
            s = numbers["by_group"][g]
            lines.append(f"  {g:<10} n={len(pos):<4} all wrong "
                         f"{s['all_wrong']:.0%}, all right "
                         f"{s['all_right']:.0%}, mixed {s['mixed']:.0%}")
    b = numbers["bounds"]
    lines += ["", f"bounds (notebook 01, delta = {b['delta']}, "
              f"G = {r.G}):",
              f"  full-batch GRPO wastes {1 - b['informative_share']:.0%}"
              " of its rollouts on all-equal groups",
              f"  a rule picking prompts at random tries "
              f">= {b['instances_to_find']:.0f} prompts "
              f"({b['rollouts_to_first_signal']:.0f} rollouts) before "
              "its first signal",
              f"  undecided prompts (both outcomes seen): "
              f"{b['undecided_share']:.0%}; a typical one needs "
              f"{b['median_rollouts_to_signal_undecided']:.0f} rollouts "
              "to a first signal",
              "", "recommendation:"]
    lines += [f"  - {line}" for line in recommend(numbers, r.G)]
    return "\n".join(lines)


def preflight(cfg: DoprConfig, *, prompts: int = 256, k: int | None = None,
              policy: Policy | None = None, data: PromptData | None = None,
              seed: int | None = None,
              by: str = "family", progress: bool = True,
              counter: RolloutCounter | None = None) -> PoolReport:
    """Sample ``k`` rollouts (default: the run's G) on ``prompts`` prompts
    of ``cfg``'s RL pool (all of them if it has fewer; else a seeded
    random subset) with the run's sampling settings, and score them with
    its reward.  ``by`` names a column to break the shares down by, where
    the data has it.  Each ``generate`` call holds about ``cfg.eval_batch``
    sequences (the memory evaluation is sized for).  Draws under its own
    seed (default ``cfg.seed``), so the caller's random stream is
    untouched."""
    k = k or cfg.num_generations
    if k < 1 or prompts < 1:
        raise ConfigError(f"preflight needs k >= 1 and prompts >= 1, got "
                          f"k={k}, prompts={prompts}")
    seed = cfg.seed if seed is None else seed
    # as the run loads them: a bad model path or data row fails first
    policy, data, _ = load_inputs(cfg, policy=policy, data=data)
    pool, reward_fn = data.train, get_reward(cfg.reward)
    chosen = list(range(len(pool)))
    if prompts < len(pool):
        chosen = sorted(random.Random(seed).sample(chosen, prompts))
    counter = counter or RolloutCounter()
    batch_size = max(1, cfg.eval_batch // k)  # prompts per generate call
    t0 = time.time()
    bar = tqdm(total=len(chosen) * k, unit="ro", desc="pre-flight",
               disable=not progress)
    counts = success_counts(
        policy.model, policy.tokenizer, pool.select(chosen), reward_fn, k,
        generation_config=generation_config(cfg), batch_size=batch_size,
        seed=seed + SEED_OFFSET, counter=counter, kind="probe",
        on_batch=bar.update).tolist()
    bar.close()
    groups: dict = {}
    if by in pool.column_names:
        for pos, i in enumerate(chosen):
            groups.setdefault(str(pool[i][by]), []).append(pos)
    return PoolReport(
        k=k, G=cfg.num_generations, prompts=chosen, counts=counts,
        digests=[digest(pool[i]["prompt"]) for i in chosen], groups=groups,
        rollouts=counter.sequences["probe"], tokens=counter.tokens["probe"],
        seconds=time.time() - t0,
        settings={"model": cfg.model, "dataset": cfg.dataset,
                  "n_train": cfg.n_train, "data_seed": cfg.data_seed,
                  "label_noise": cfg.label_noise, "reward": cfg.reward,
                  "temperature": cfg.temperature, "top_p": cfg.top_p,
                  "top_k": cfg.top_k, "max_new_tokens": cfg.max_new_tokens,
                  "seed": seed})


@dataclass
class WarmStart:
    """A pre-flight's counts for a run: prompt -> (right, sampled), and
    what they cost."""

    counts: dict
    rollouts: int
    tokens: int


def read_counts(path, pool) -> WarmStart:
    """The counts of a pre-flight JSON, checked against the RL pool
    ``pool`` (every measured prompt must be the same text at the same
    index); errors name the file and the fix."""
    path = Path(path)
    rerun = ("rerun `dopr-lite preflight` with this run's model and data "
             "settings, or unset config field 'preflight'")
    if not path.is_file():
        raise ConfigError(f"config field 'preflight': {path} is not a "
                          f"file; {rerun}")
    try:
        raw = json.loads(path.read_text())
        k, prompts, counts, digests = (raw["k"], raw["prompts"],
                                       raw["counts"], raw["digests"])
    except (ValueError, KeyError, TypeError) as err:
        raise ConfigError(f"config field 'preflight': {path} is not a "
                          f"pre-flight report ({err!r}); {rerun}") from err
    if not len(prompts) == len(counts) == len(digests):
        raise ConfigError(f"{path}: 'prompts', 'counts' and 'digests' "
                          f"differ in length; {rerun}")
    for i, c, d in zip(prompts, counts, digests, strict=True):
        if not (isinstance(i, int) and 0 <= i < len(pool)):
            raise ConfigError(f"{path}: prompt index {i!r} is outside this "
                              f"run's pool of {len(pool)}; {rerun}")
        if digest(pool[i]["prompt"]) != d:
            raise ConfigError(f"{path}: prompt {i} of this run's pool is "
                              f"not the prompt the file measured; {rerun}")
        if not (isinstance(c, int) and 0 <= c <= k):
            raise ConfigError(f"{path}: prompt {i}: count {c!r} is not in "
                              f"0..{k}; {rerun}")
    return WarmStart({i: (c, k) for i, c in zip(prompts, counts,
                                                strict=True)},
                     int(raw.get("rollouts", len(prompts) * k)),
                     int(raw.get("tokens", 0)))


def warm_start(cfg: DoprConfig, pool) -> WarmStart | None:
    """The counts of the pre-flight that ``cfg.preflight`` names (None if
    unset), checked against the RL pool ``pool`` and against the budget:
    their rollouts count in the run's cost, so they must leave some of
    ``max_rollouts`` for training."""
    if not cfg.preflight:
        return None
    warm = read_counts(cfg.preflight, pool)
    if cfg.max_rollouts and warm.rollouts >= cfg.max_rollouts:
        raise ConfigError(
            f"config field 'preflight': its {warm.rollouts:,} rollouts "
            f"count in this run's cost and already exceed max_rollouts "
            f"({cfg.max_rollouts:,}); raise max_rollouts or measure "
            "fewer prompts (dopr-lite preflight --prompts N --k K)")
    return warm
