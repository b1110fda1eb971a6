import os
import threading
import time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dopr_lite import rewards as R


def test_exact_answer_reward_hand_examples():
    comps = ["12+5=17\n#### 17", "#### 18", "no answer", "#### 17.0",
             "#### 1,7", "####17\n", "#### 17 apples", ""]
    assert R.exact_answer_reward(comps, answer=["17"] * 8) == [
        1, 0, 0, 1, 0, 1, 0, 0]


def test_exact_compares_numbers_as_a_careful_grader_would():
    def score(pred, gold):
        return R.exact_answer_reward([f"#### {pred}"], answer=[gold])[0]

    # simple fractions are numbers, on either side
    assert score("3/4", "0.75") == score("0.75", "3/4") == 1.0
    assert score("6/8", "3/4") == score("-1/2", "-0.5") == 1.0
    assert score("3/4", "0.7") == score("1/0", "1") == 0.0
    # commas only as thousands separators
    assert score("1,234", "1234") == score("1234", "1,234") == 1.0
    assert score("1,234,567.5", "1234567.5") == 1.0
    assert score("1,2", "12") == score("12,34", "1234") == 0.0
    # a GSM8K answer text as the gold: parsed the same way as a completion
    gold = "She has 3 + 4 = 7 cats and 9 * 8 = 72 paws.\n#### 72"
    assert score("72", gold) == 1.0 and score("7", gold) == 0.0
    assert R.gold_problem("exact", gold) is None
    assert R.gold_problem("exact", "3/4") is None


def test_last_marker_wins_and_chat_messages_accepted():
    assert R.exact_answer_reward(["#### 3\n#### 4"], answer=["4"]) == [1.0]
    chat = [[{"role": "assistant", "content": "#### 4"}]]
    assert R.exact_answer_reward(chat, answer=["4"]) == [1.0]


def test_length_mismatch_is_an_error():
    with pytest.raises(ValueError):
        R.exact_answer_reward(["#### 1"], answer=["1", "2"])


def test_math_verify_reward():
    comps = ["so \\boxed{\\frac{1}{2}}", "#### 0.5", "\\boxed{3}", "junk"]
    assert R.math_verify_reward(comps, answer=["\\frac{1}{2}"] * 4) == [
        1, 1, 0, 0]
    assert R.math_verify_reward(["#### 72"], answer=["#### 72"]) == [1.0]


def test_format_reward():
    assert R.format_reward(["a\n#### 5", "\\boxed{2}", "#### ", "5"]) == [
        1, 1, 0, 0]


def test_get_reward_and_combination():
    fn = R.get_reward("exact,format")
    assert fn(["#### 5", "5"], answer=["5", "5"]) == [2.0, 0.0]
    from dopr_lite.errors import ConfigError

    with pytest.raises(ConfigError, match="reward"):
        R.get_reward("nope")


def test_model_text_is_never_evaluated(tmp_path):
    marker = tmp_path / "pwned"
    evil = f"#### __import__('pathlib').Path('{marker}').touch()"
    for fn in (R.exact_answer_reward, R.math_verify_reward):
        assert fn([evil], answer=["1"]) == [0.0]
    assert not marker.exists()


# --- fuzzing: every reward, garbage in, 0/1 out, bounded time ----------------
FUZZ_EXAMPLES = int(os.environ.get("DOPR_FUZZ_EXAMPLES", "200"))
FUZZ_BATCH = 50  # completions per example: 200 x 50 = 10,000 per reward
GOLDS = ["42", "-3.5", "\\frac{1}{2}", "#### 1,234", "\\sqrt{2}"]

huge = st.builds(lambda piece, n: (piece * n)[:100_000],
                 st.text(min_size=1, max_size=8), st.integers(1, 100_000))
nasty = st.one_of(
    st.text(max_size=300),  # random unicode
    st.text(alphabet="#{}\\boxedfrac0123456789.,-+ \n$^_()[]", max_size=300),
    st.builds(lambda n: "#### " + "9" * n, st.integers(0, 5000)),
    st.builds(lambda n: "\\boxed{" + "9" * n + "}", st.integers(0, 3000)),
    st.builds(lambda n: "\\boxed{" * n + "1" + "}" * n, st.integers(0, 300)),
    st.builds(lambda n: "{" * n + "#### 42", st.integers(0, 3000)),
    huge,
    st.builds(lambda t: [{"role": "assistant", "content": t}],
              st.text(max_size=100)),
    st.one_of(st.none(), st.integers(), st.floats(), st.binary(max_size=50)),
)


@settings(max_examples=FUZZ_EXAMPLES, deadline=None)
@given(st.lists(nasty, min_size=FUZZ_BATCH, max_size=FUZZ_BATCH),
       st.sampled_from(GOLDS))
def test_fuzzed_completions_score_0_or_1_in_bounded_time(
        reliability_log, texts, gold):
    """Time is bounded by construction, asserted here, not by a clock:
    math-verify only ever runs in the sandbox, under its deadline (a call
    past it scores 0: test_latex_bombs_...), and the others see at most
    MAX_CHARS of text.  The slowest call is logged, never asserted."""
    fuzzed = reliability_log.setdefault("fuzzed_completions", {
        **{name: 0 for name in R.REWARDS}, "slowest_s": 0.0})
    assert R._sandbox().deadline == R.SANDBOX_DEADLINE
    for name, fn in R.REWARDS.items():
        t0 = time.perf_counter()
        out = fn(texts, answer=[gold] * len(texts))
        per_call = (time.perf_counter() - t0) / len(texts)
        assert len(out) == len(texts)
        assert set(out) <= {0.0, 1.0}, name
        fuzzed[name] += len(texts)
        fuzzed["slowest_s"] = round(max(fuzzed["slowest_s"], per_call), 4)


HANG = 600  # seconds: only a hung call waits this long (a guard, not a bound)
BOMBS = ["$9^{9^{9^{9}}}$", "\\boxed{9^{9^{9}}}",
         "\\boxed{2^{2^{2^{2^{2^{2}}}}}}", "\\boxed{99999999999!}",
         "$" + "(" * 12 + "x+1" + ")^2" * 12 + "$",
         "\\boxed{" + "{" * 2000 + "1" + "}" * 2000 + "}"]


@pytest.mark.slow
@pytest.mark.parametrize("thread", [False, True], ids=["main", "thread"])
def test_latex_bombs_are_bounded_on_and_off_the_main_thread(
        reliability_log, thread, monkeypatch):
    """sympy would compute 9^(9^(9^9)) for minutes in C; off the main
    thread math-verify has no timeout at all.  The sandbox bounds both:
    every bomb is scored in its worker process (on the worker's main
    thread, under the deadline that kills it: test_sandbox.py), never in
    this process, and scores 0."""
    box, sent = R._sandbox(), []

    def sandboxed(*args):
        sent.append(args[0])
        return box(*args)

    monkeypatch.setattr(R, "_sandbox", lambda: sandboxed)
    out, t0 = [], time.time()
    call = lambda: out.append(  # noqa: E731
        R.math_verify_reward(BOMBS, answer=["3"] * len(BOMBS)))
    if thread:
        worker = threading.Thread(target=call, daemon=True)
        worker.start()
        worker.join(HANG)
        assert not worker.is_alive(), "math_verify_reward hung in a thread"
    else:
        call()
    assert out == [[0.0] * len(BOMBS)]
    assert sent == ["math_score"] * len(BOMBS)
    seconds = time.time() - t0  # logged, not asserted
    reliability_log.setdefault("latex_bombs", {})[
        "thread" if thread else "main"] = {
            "cases": len(BOMBS), "seconds": round(seconds, 2)}
