import time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dopr_lite import rewards as R


def test_exact_answer_reward_hand_examples():
    comps = ["12+5=17\n#### 17", "#### 18", "no answer", "#### 17.0",
             "#### 1,7", "####17\n", "#### 17 apples", ""]
    assert R.exact_answer_reward(comps, answer=["17"] * 8) == [
        1, 0, 0, 1, 1, 1, 0, 0]


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
    from dopr_lite.config import ConfigError

    with pytest.raises(ConfigError, match="reward"):
        R.get_reward("nope")


def test_model_text_is_never_evaluated(tmp_path):
    marker = tmp_path / "pwned"
    evil = f"#### __import__('pathlib').Path('{marker}').touch()"
    for fn in (R.exact_answer_reward, R.math_verify_reward):
        assert fn([evil], answer=["1"]) == [0.0]
    assert not marker.exists()


nasty = st.one_of(
    st.text(max_size=300),
    st.text(alphabet="#{}\\boxed0123456789.-+ \n$^_", max_size=300),
    st.builds(lambda n: "#### " + "9" * n, st.integers(0, 5000)),
    st.builds(lambda n: "\\boxed{" * n + "1" + "}" * n, st.integers(0, 200)),
)


@settings(max_examples=300, deadline=None)
@given(nasty)
def test_rewards_never_raise_on_garbage(text):
    for fn in (R.exact_answer_reward, R.math_verify_reward):
        (r,) = fn([text], answer=["42"])
        assert r in (0.0, 1.0)
    assert R.format_reward([text])[0] in (0.0, 1.0)


def test_huge_completion_is_bounded():
    text = "x" * 200_000 + "\\frac{" * 2000 + "#### 42"
    t0 = time.time()
    assert R.exact_answer_reward([text], answer=["42"]) == [1.0]
    R.math_verify_reward([text], answer=["41"])
    assert time.time() - t0 < 30
