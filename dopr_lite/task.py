"""The embedded synthetic task: four arithmetic skills, three difficulties.

Each problem belongs to one *family* (a skill) and one *tier* (how hard it is
for the embedded model); a completion is judged only by its final
``#### <n>`` line, exactly like GSM8K:

=======  ========================  ============================================
family   prompt                    careful solution
=======  ========================  ============================================
``add``  ``57+38-19=?``            ``sum`` / ``57+38=95`` / ``95-19=76``
``mul``  ``37*6=?``                ``mul`` / ``30*6=180`` / ``7*6=42`` /
                                   ``180+42=222``
``max``  ``max(41,17,63)=?``       ``cmp`` / ``41,17=41`` / ``41,63=63``
``word`` ``Ann had 12, got 5,      ``let`` / ``12+5=17`` / ``17-3=14``
         lost 3. Now?``
=======  ========================  ============================================

(each careful solution ends with ``#### <answer>``).  The other style is a
*direct guess*, ``#### <n>`` at once, right only by luck.  The warm-up
corpus (:mod:`dopr_lite.tiny`) uses the careful style at a per-problem rate
(:func:`careful_rate`, a "laziness" in family-specific features), so the
warmed-up model *knows* each procedure but starts it only on some prompts.
Each family's procedure opens with its own keyword (``sum``, ``mul``,
``cmp``, ``let``), so the decision to work carefully is a different first
token per family and unlocking one skill carries over to the others only in
part (the transfer matrix in ``bench/task_shape.py`` measures how much).

Tiers give the pools the spread of difficulty real RLVR pools have:

* ``easy``: small problems whose answer the corpus gives directly and right:
  solved (almost) always, so a group of G rollouts is all-right;
* ``medium``: the latent skill: careful solutions are right, guesses are
  not, and the model is careful on some of them;
* ``hard``: 4-digit arithmetic the warm-up never shows (and longer
  solutions): beyond the model, careful or not, so its groups are
  all-wrong.  These are genuinely hard, not mislabelled (label noise is the
  separate ``label_noise`` knob).

The RL pool and the held-out split share one mix (:class:`TaskMix`: family
weights and the easy and hard shares).  The default mix is calibrated to
published numbers for real math pools: for a base model such as
Qwen2.5-Math-1.5B, on the order of 40% of the prompts of a curated pool give
all-equal (zero-variance) groups at G = 8, most of them all-wrong (GRESO,
Zheng et al. 2025, arXiv 2506.02177, on DAPO + MATH; DAPO's dynamic
sampling, Yu et al. 2025, exists because of them; the figure is the one
PAPER.md and practitioners' pre-flight checks report).  ``bench/task_shape.py``
measures what the embedded model gives on the default mix
(``dopr_lite/assets/tiny/build_info.json``: ``task_shape``).

Splits are assigned by a hash of the prompt text, so the warm-up (``sft``),
RL (``rl``) and held-out (``test``) splits are disjoint for every seed and
every mix.

Departures from the paper: the paper trains on real math (MATH, DeepScaleR);
this task exists so that every experiment runs in minutes on a laptop CPU.
"""

from __future__ import annotations

import hashlib
import math
import random
from dataclasses import dataclass, field

from datasets import Dataset

SPLITS = ("sft", "rl", "test")
# Shares of the hash space given to each split (out of 10 buckets).
_SPLIT_BUCKETS = {"sft": range(0, 6), "rl": range(6, 8), "test": range(8, 10)}
FAMILIES = ("add", "mul", "max", "word")
TIERS = ("easy", "medium", "hard")
KEYWORDS = {"add": "sum", "mul": "mul", "max": "cmp", "word": "let"}
NAMES = ("Ann", "Bo", "Cy", "Di", "Ed", "Flo")
GAINS = ("got", "won", "found")  # + in word problems
LOSSES = ("lost", "gave", "ate")  # - in word problems
GUESS_SPREAD = 9  # a direct guess lands within this of the answer


class MixError(ValueError):
    """An impossible mix; ``field`` is the TaskMix field at fault."""

    def __init__(self, field: str, why: str):
        super().__init__(why)
        self.field = field


@dataclass(frozen=True)
class TaskMix:
    """Which problems the RL pool and the held-out split hold.

    ``families``: relative weights of the skills; ``easy`` and ``hard``:
    the shares of trivial and too-hard prompts (the rest are ``medium``).
    The defaults are calibrated (module docstring); change them with the
    config fields ``task_families``, ``task_easy`` and ``task_hard``.
    """

    families: dict = field(default_factory=lambda: dict.fromkeys(FAMILIES,
                                                                 1.0))
    easy: float = 0.13  # bench/task_calibration.py, on the shipped model
    hard: float = 0.19

    def __post_init__(self):
        unknown = sorted(set(self.families) - set(FAMILIES))
        if unknown:
            raise MixError("families", f"unknown families {unknown}; "
                           f"choose from {list(FAMILIES)}")
        weights = list(self.families.values())
        if any(not isinstance(w, (int, float)) or w < 0 for w in weights) \
                or not sum(weights) > 0:
            raise MixError("families", "weights must be numbers >= 0, not "
                           f"all 0 (got {self.families})")
        for name in ("easy", "hard"):
            if not 0 <= getattr(self, name) <= 1:
                raise MixError(name, "must be in [0, 1]")
        if self.easy + self.hard > 1:
            raise MixError("hard", f"easy + hard = {self.easy + self.hard} "
                           "> 1: no room left for medium problems")


DEFAULT_MIX = TaskMix()


@dataclass(frozen=True)
class Problem:
    """One problem: its prompt, answer, careful steps and laziness logit."""

    family: str
    tier: str
    prompt: str
    answer: int
    steps: tuple  # the careful procedure's lines, before the final answer
    laziness: float  # logit of the careful rate (the corpus' style mix)

    @property
    def solution(self) -> str:
        """The careful solution: keyword, steps, final answer."""
        return "\n".join([KEYWORDS[self.family], *self.steps,
                          f"#### {self.answer}"])

    @property
    def careful_rate(self) -> float:
        """Share of careful solutions for this problem in the warm-up
        corpus (``easy`` problems: answered directly, and right)."""
        return 1.0 / (1.0 + math.exp(-self.laziness))


def problem_split(text: str) -> str:
    bucket = int(hashlib.sha256(text.encode()).hexdigest(), 16) % 10
    for name, buckets in _SPLIT_BUCKETS.items():
        if bucket in buckets:
            return name
    raise AssertionError(bucket)


# --- the four families: draw(rng, tier) -> Problem ----------------------------

def _chain(rng, n_ops, lo, hi, max_total):
    """Operands and +/- operators whose running totals stay in range."""
    while True:
        items, total = [rng.randint(lo, hi)], None
        total = items[0]
        for _ in range(n_ops - 1):
            op, x = rng.choice("+-"), rng.randint(lo, hi)
            total = total + x if op == "+" else total - x
            if not 0 <= total <= max_total:
                break
            items += [op, x]
        else:
            return items


def _steps(items) -> tuple[list[str], int]:
    """One ``a+b=c`` line per operation of a chain; and the result."""
    lines, total = [], items[0]
    for i in range(1, len(items), 2):
        op, x = items[i], items[i + 1]
        new = total + x if op == "+" else total - x
        lines.append(f"{total}{op}{x}={new}")
        total = new
    return lines, total


def _tier_chain(rng, tier, medium_terms: tuple, medium_top: int) -> list:
    """A tier's running-total chain (add and word share it): two one-digit
    terms (easy); ``medium_terms`` terms up to ``medium_top`` (medium);
    three or four four-digit terms (hard)."""
    if tier == "easy":
        return _chain(rng, 2, 1, 9, 18)
    if tier == "medium":
        return _chain(rng, rng.randint(*medium_terms), 1, medium_top, 999)
    return _chain(rng, rng.randint(3, 4), 1000, 9999, 99_999)


def draw_add(rng, tier) -> Problem:
    items = _tier_chain(rng, tier, (2, 4), 99)
    lines, answer = _steps(items)
    n_ops = (len(items) + 1) // 2
    z = (items[0] / 99 - 0.75) * 6.0 - 0.8 * (n_ops - 3)
    return Problem("add", tier, "".join(map(str, items)) + "=?", answer,
                   tuple(lines), z)


def draw_mul(rng, tier) -> Problem:
    if tier == "easy":  # by 1 or 10: copy the digits, or append a 0
        a, b = rng.randint(2, 99), rng.choice((1, 10))
        lines = [f"{a}*{b}={a * b}"]
    elif tier == "medium":
        a, b = rng.randint(13, 99), rng.randint(2, 9)
        tens, ones = a - a % 10, a % 10
        lines = [f"{tens}*{b}={tens * b}"]
        if ones:
            lines += [f"{ones}*{b}={ones * b}",
                      f"{tens * b}+{ones * b}={a * b}"]
    else:
        a, b = rng.randint(101, 999), rng.randint(11, 99)
        lines = [f"{a}*{b}={a * b}"]  # the procedure has no 2-digit step
    z = (a / 99 - 0.7) * 5.0 - (b - 5) * 0.3
    return Problem("mul", tier, f"{a}*{b}=?", a * b, tuple(lines), z)


def draw_max(rng, tier) -> Problem:
    if tier == "easy":
        xs = rng.sample(range(1, 50), 2)
    elif tier == "medium":
        xs = rng.sample(range(10, 100), rng.randint(3, 4))
    else:
        xs = rng.sample(range(1000, 10_000), rng.randint(6, 7))
    lines, best = [], xs[0]
    for x in xs[1:]:
        new = max(best, x)
        lines.append(f"{best},{x}={new}")
        best = new
    spread = (max(xs) - min(xs)) / 90
    z = 1.5 - 1.0 * (len(xs) - 3) - 2.5 * spread
    return Problem("max", tier, f"max({','.join(map(str, xs))})=?", best,
                   tuple(lines), z)


def draw_word(rng, tier) -> Problem:
    items = _tier_chain(rng, tier, (2, 3), 60)
    words = [rng.choice(GAINS if op == "+" else LOSSES) + f" {x}"
             for op, x in zip(items[1::2], items[2::2], strict=True)]
    name = rng.choice(NAMES)
    prompt = f"{name} had {items[0]}, {', '.join(words)}. Now?"
    lines, answer = _steps(items)
    z = 0.6 - 1.2 * (len(words) - 1) - 0.02 * max(items[::2]) \
        + 0.6 * (name in NAMES[:3])
    return Problem("word", tier, prompt, answer, tuple(lines), z)


DRAW = {"add": draw_add, "mul": draw_mul, "max": draw_max, "word": draw_word}


def direct_guess(problem: Problem, rng: random.Random) -> str:
    """The lazy style: an answer at once.  Right for ``easy`` problems
    (the corpus knows them by heart); otherwise a near miss (``max``: a
    random element of the list), right only by luck."""
    if problem.tier == "easy":
        return f"#### {problem.answer}"
    if problem.family == "max":
        xs = [int(x) for x in problem.prompt[4:-3].split(",")]
        return f"#### {rng.choice(xs)}"
    guess = problem.answer + rng.randint(-GUESS_SPREAD, GUESS_SPREAD)
    return f"#### {max(0, guess)}"


def draw(rng: random.Random, mix: TaskMix = DEFAULT_MIX) -> Problem:
    """One problem: a family by weight, then a tier by the mix's shares."""
    names = list(mix.families)
    family = rng.choices(names, [mix.families[n] for n in names])[0]
    u = rng.random()
    tier = "easy" if u < mix.easy else "hard" if u < mix.easy + mix.hard \
        else "medium"
    return DRAW[family](rng, tier)


def make_problems(n: int, split: str, seed: int = 0,
                  mix: TaskMix = DEFAULT_MIX) -> list[dict]:
    """``n`` distinct problems of one split, reproducible from ``seed``.

    Each row: ``id``, ``prompt``, ``answer`` (a string, as in GSM8K),
    ``family``, ``tier``, ``solution`` (the careful one) and
    ``careful_rate``.
    """
    if split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
    rng = random.Random(f"{seed}:{split}")
    rows, seen, tries = [], set(), 0
    while len(rows) < n:
        tries += 1
        if tries > 200 * n + 10_000:
            raise ValueError(
                f"could not draw {n} distinct {split!r} problems from "
                f"{mix}; ask for fewer, or give the small tiers (easy) "
                "less weight")
        p = draw(rng, mix)
        if p.prompt in seen or problem_split(p.prompt) != split:
            continue
        seen.add(p.prompt)
        rows.append({"id": f"{split}-{seed}-{len(rows)}",
                     "prompt": p.prompt + "\n", "answer": str(p.answer),
                     "family": p.family, "tier": p.tier,
                     "solution": p.solution,
                     "careful_rate": p.careful_rate})
    return rows


def task_dataset(split: str, n: int, seed: int = 0,
                 mix: TaskMix = DEFAULT_MIX):
    """The task as a ``datasets.Dataset`` with ``prompt`` and ``answer``."""
    return Dataset.from_list(make_problems(n, split, seed, mix))
