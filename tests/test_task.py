import random
import re
from collections import Counter

import pytest

from dopr_lite import task as T

STEP = re.compile(r"(\d+)([+\-*,])(\d+)=(\d+)")


def _true(line: str) -> bool:
    """A step line ``a+b=c`` (or ``-``, ``*``, ``,`` for max) holds."""
    a, op, b, c = STEP.fullmatch(line).groups()
    a, b, c = int(a), int(b), int(c)
    return c == {"+": a + b, "-": a - b, "*": a * b, ",": max(a, b)}[op]


def test_splits_are_disjoint_and_reproducible():
    sets = {s: {r["prompt"] for r in T.make_problems(300, s, seed=3)}
            for s in T.SPLITS}
    assert not sets["sft"] & sets["rl"]
    assert not sets["rl"] & sets["test"]
    assert not sets["sft"] & sets["test"]
    again = T.make_problems(300, "rl", seed=3)
    assert again == T.make_problems(300, "rl", seed=3)
    other = {r["prompt"] for r in T.make_problems(300, "rl", seed=4)}
    assert other != sets["rl"]


@pytest.mark.parametrize("family", T.FAMILIES)
@pytest.mark.parametrize("tier", T.TIERS)
def test_every_careful_solution_is_right(family, tier):
    rng = random.Random(f"{family}{tier}")
    for _ in range(200):
        p = T.DRAW[family](rng, tier)
        lines = p.solution.split("\n")
        assert lines[0] == T.KEYWORDS[family]
        assert lines[-1] == f"#### {p.answer}"
        assert all(_true(line) for line in lines[1:-1]), p
        assert STEP.fullmatch(lines[-2]).group(4) == str(p.answer)
        assert 0 <= p.careful_rate <= 1


def test_answers_follow_from_the_prompt():
    for row in T.make_problems(300, "test"):
        prompt, answer = row["prompt"].strip(), int(row["answer"])
        if row["family"] == "max":
            xs = map(int, prompt[4:-3].split(","))
            assert max(xs) == answer
        elif row["family"] == "mul":
            a, b = map(int, prompt[:-2].split("*"))
            assert a * b == answer
        else:  # add and word: the numbers with their signs
            signs = re.findall(r"([+-]|got|won|found|lost|gave|ate)? ?"
                               r"(\d+)", prompt)
            total = sum(-int(x) if s in ("-", "lost", "gave", "ate")
                        else int(x) for s, x in signs)
            assert total == answer, row


def test_tiers_are_as_hard_as_they_say():
    rng = random.Random(0)
    for family in T.FAMILIES:
        easy = T.DRAW[family](rng, "easy")
        assert T.direct_guess(easy, rng) == f"#### {easy.answer}"
        hard = T.DRAW[family](rng, "hard")
        # four-digit numbers: beyond the warm-up's arithmetic
        assert re.search(r"\d{4}", hard.solution), hard
        medium = T.DRAW[family](rng, "medium")
        assert not re.search(r"\d{4}", medium.solution)


def test_the_mix_is_honoured_and_reproducible():
    mix = T.TaskMix(families={"mul": 1.0, "max": 3.0}, easy=0.0, hard=0.5)
    rows = T.make_problems(400, "rl", seed=1, mix=mix)
    fams = Counter(r["family"] for r in rows)
    tiers = Counter(r["tier"] for r in rows)
    assert set(fams) == {"mul", "max"} and 0.65 < fams["max"] / 400 < 0.85
    assert set(tiers) == {"medium", "hard"}
    assert 0.4 < tiers["hard"] / 400 < 0.6
    assert rows == T.make_problems(400, "rl", seed=1, mix=mix)
    default = Counter(r["tier"] for r in T.make_problems(600, "test"))
    assert abs(default["easy"] / 600 - T.DEFAULT_MIX.easy) < 0.05
    assert abs(default["hard"] / 600 - T.DEFAULT_MIX.hard) < 0.05


@pytest.mark.parametrize("kwargs,field", [
    (dict(families={"div": 1.0}), "families"),
    (dict(families={"add": 0.0}), "families"),
    (dict(easy=-0.1), "easy"),
    (dict(easy=0.7, hard=0.5), "hard"),
])
def test_an_impossible_mix_names_its_field(kwargs, field):
    with pytest.raises(T.MixError) as err:
        T.TaskMix(**kwargs)
    assert err.value.field == field


def test_careful_rates_vary_within_every_family():
    rng = random.Random(0)
    for family in T.FAMILIES:
        rates = [T.DRAW[family](rng, "medium").careful_rate
                 for _ in range(500)]
        above = sum(r > 0.5 for r in rates) / len(rates)
        assert 0.15 < above < 0.5, family  # greedy careful on a minority
        assert max(rates) - min(rates) > 0.5, family


def test_dataset_columns():
    ds = T.task_dataset("test", 10)
    assert {"prompt", "answer", "id", "family", "tier"} <= set(
        ds.column_names)
    assert len(ds) == 10


def test_impossible_request_fails_clearly():
    mix = T.TaskMix(families={"mul": 1.0}, easy=1.0, hard=0.0)
    with pytest.raises(ValueError, match="could not draw"):
        T.make_problems(500, "rl", mix=mix)
