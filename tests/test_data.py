import json

import pytest

from dopr_lite.config import DoprConfig
from dopr_lite.data import (DataError, boxed_answer, format_prompt,
                            gold_answer, load_prompts, read_jsonl)


def test_gold_answer_forms():
    assert gold_answer("so 3 + 4 = 7\n#### 1,234") == "1234"
    assert gold_answer("thus \\boxed{\\frac{1}{2}}.") == "\\frac{1}{2}"
    assert gold_answer("72") == "72"
    assert gold_answer("") is None and gold_answer(None) is None
    assert gold_answer("\\boxed{") is None


def test_boxed_answer_nested_braces():
    assert boxed_answer("x \\boxed{\\frac{a}{b}} y") == "\\frac{a}{b}"
    assert boxed_answer("\\boxed{1} then \\boxed{2}") == "2"


def test_embedded_prompts():
    d = load_prompts(DoprConfig(n_train=20, n_test=10))
    assert len(d.train) == 20 and len(d.test) == 10
    assert not set(d.train["prompt"]) & set(d.test["prompt"])


def test_jsonl_file_with_bad_rows_is_reported(tmp_path):
    rows = [{"id": f"q{i}", "question": f"what is {i}+1?",
             "answer": f"#### {i + 1}"} for i in range(12)]
    rows[2]["answer"] = "no marker here but text"  # plain text is usable
    rows[3]["answer"] = ""  # unusable
    rows[4]["question"] = "  "  # unusable
    path = tmp_path / "d.jsonl"
    path.write_text("\n".join(json.dumps(r) for r in rows))
    d = load_prompts(DoprConfig(dataset=str(path), n_test=4, n_train=0))
    assert len(d.train) + len(d.test) == 10
    reasons = {k: v["count"] for k, v in d.skipped.items()}
    assert sum(reasons.values()) == 2
    assert any("q3" in v["first_ids"] for v in d.skipped.values())
    assert d.train[0]["prompt"].startswith("Question: what is 0+1?")


def test_not_jsonl_names_file_and_line(tmp_path):
    path = tmp_path / "bad.jsonl"
    path.write_text('{"question": "a", "answer": "1"}\nnot json\n')
    with pytest.raises(DataError, match=r"bad.jsonl: line 2"):
        read_jsonl(path)


def test_duplicate_ids_are_an_error(tmp_path):
    path = tmp_path / "dup.jsonl"
    row = {"id": "x", "question": "q", "answer": "1"}
    path.write_text("\n".join(json.dumps(row) for _ in range(3)))
    with pytest.raises(DataError, match="duplicated id 'x'"):
        load_prompts(DoprConfig(dataset=str(path), n_test=1))


def test_offline_hub_dataset_fails_with_advice():
    with pytest.raises(DataError, match="openai/gsm8k"):
        load_prompts(DoprConfig(dataset="gsm8k"))


def test_chat_template_is_used_when_present():
    class Tok:
        chat_template = "x"

        def apply_chat_template(self, msgs, tokenize, add_generation_prompt):
            return "<user>" + msgs[0]["content"] + "<assistant>"

    assert format_prompt("1+1?", Tok()).startswith("<user>1+1?")
