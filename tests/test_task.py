from dopr_lite import task as T


def test_splits_are_disjoint_and_reproducible():
    sets = {s: {r["prompt"] for r in T.make_problems(300, s, seed=3)}
            for s in T.SPLITS}
    assert not sets["sft"] & sets["rl"]
    assert not sets["rl"] & sets["test"]
    assert not sets["sft"] & sets["test"]
    again = T.make_problems(300, "rl", seed=3)
    assert [r["prompt"] for r in again] == [
        r["prompt"] for r in T.make_problems(300, "rl", seed=3)]
    other = {r["prompt"] for r in T.make_problems(300, "rl", seed=4)}
    assert other != sets["rl"]


def test_careful_solution_is_correct_and_parses_back():
    for row in T.make_problems(200, "test"):
        items = T.parse_prompt(row["prompt"])
        assert T.answer_of(items) == int(row["answer"])
        assert row["solution"].endswith(f"#### {row['answer']}")
        # every step line is a true equation
        for line in row["solution"].split("\n")[:-1]:
            lhs, rhs = line.split("=")
            assert T.answer_of(T.parse_prompt(lhs + "=?")) == int(rhs)


def test_difficulty_knobs_are_respected():
    spec = T.TaskSpec(min_ops=3, max_ops=3, max_operand=9, max_value=50)
    for row in T.make_problems(100, "rl", spec=spec):
        items = T.parse_prompt(row["prompt"])
        assert len(items) == 5
        assert all(x <= 9 for x in items[::2])
        assert 0 <= int(row["answer"]) <= 50


def test_careful_rate_is_a_probability_that_varies():
    rates = [r["careful_rate"] for r in T.make_problems(500, "test")]
    assert all(0 < r < 1 for r in rates)
    above = sum(r > 0.5 for r in rates) / len(rates)
    assert 0.15 < above < 0.5  # greedy is careful on a minority


def test_direct_guess_is_a_final_answer_line():
    import random

    items = [57, "+", 38]
    guess = T.direct_guess(items, random.Random(0))
    assert guess.startswith("#### ")
    assert abs(int(guess[5:]) - 95) <= 9


def test_dataset_columns():
    ds = T.task_dataset("test", 10)
    assert {"prompt", "answer", "id"} <= set(ds.column_names)
    assert len(ds) == 10


def test_impossible_request_fails_clearly():
    import pytest

    spec = T.TaskSpec(min_ops=2, max_ops=2, max_operand=2, max_value=4)
    with pytest.raises(ValueError, match="could not draw"):
        T.make_problems(500, "rl", spec=spec)
