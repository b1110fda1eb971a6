import json

import pytest

from dopr_lite.config import DoprConfig
from dopr_lite.data import (boxed_answer, format_prompt, gold_answer,
                            load_prompts, read_rows)
from dopr_lite.errors import ConfigError, DataError


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


def test_label_noise_swaps_answers_in_the_pool_only():
    clean = load_prompts(DoprConfig(n_train=40, n_test=10))
    d = load_prompts(DoprConfig(n_train=40, n_test=10, label_noise=0.5))
    assert 15 <= len(d.noisy) <= 20  # a swap between equal answers: kept
    changed = [i for i in range(40)
               if d.train[i]["answer"] != clean.train[i]["answer"]]
    assert changed == list(d.noisy)
    assert d.train["prompt"] == clean.train["prompt"]
    assert d.test["answer"] == clean.test["answer"]  # held out: clean
    # the wrong answers are the pool's own answers (realistic, in range)
    assert set(d.train["answer"]) <= set(clean.train["answer"])
    again = load_prompts(DoprConfig(n_train=40, n_test=10, label_noise=0.5))
    assert again.noisy == d.noisy  # seeded by data_seed
    assert load_prompts(DoprConfig(n_train=40, n_test=10)).noisy == ()
    with pytest.raises(ConfigError, match="label_noise"):
        DoprConfig(label_noise=1.5)


def _rows(n=12):
    return [{"id": f"q{i}", "question": f"what is {i}+1?",
             "answer": f"#### {i + 1}"} for i in range(n)]


def _write(path, rows):
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    return path


# what is wrong with the 4th row -> (spoil it, the field named, reward)
BAD_ROWS = {
    "missing question": (lambda r: r.pop("question"), "question", "exact"),
    "empty question": (lambda r: r.update(question="  "), "question",
                       "exact"),
    "question not a string": (lambda r: r.update(question=7), "question",
                              "exact"),
    "missing answer": (lambda r: r.pop("answer"), "answer", "exact"),
    "empty answer": (lambda r: r.update(answer=""), "answer", "exact"),
    "answer a list": (lambda r: r.update(answer=[1]), "answer", "exact"),
    "answer a bool": (lambda r: r.update(answer=True), "answer", "exact"),
    "empty boxed": (lambda r: r.update(answer="so \\boxed{}"), "answer",
                    "exact"),
    "text gold for a numeric reward": (
        lambda r: r.update(answer="#### seven"), "answer", "exact"),
    "gold math-verify cannot parse": (
        lambda r: r.update(answer="#### \\frac{"), "answer", "math_verify"),
    "id a dict": (lambda r: r.update(id={"a": 1}), "id", "exact"),
    "duplicated id": (lambda r: r.update(id="q0"), "id", "exact"),
}


@pytest.mark.parametrize("case", sorted(BAD_ROWS))
def test_bad_row_is_an_error_naming_file_line_and_field(
        tmp_path, case, reliability_log):
    spoil, field, reward = BAD_ROWS[case]
    rows = _rows()
    spoil(rows[3])
    path = _write(tmp_path / "d.jsonl", rows)
    cfg = DoprConfig(dataset=str(path), n_test=4, reward=reward)
    with pytest.raises(DataError) as err:
        load_prompts(cfg)
    msg = str(err.value)
    assert f"d.jsonl: line 4: field '{field}'" in msg, msg
    assert "bad_rows='skip'" in msg
    # skipping instead: the row is counted and reported, the rest kept
    d = load_prompts(DoprConfig(dataset=str(path), n_test=4, reward=reward,
                                bad_rows="skip"))
    assert len(d.train) + len(d.test) == 11
    (info,) = d.skipped.values()
    assert info["count"] == 1 and "line 4" in info["example"]
    reliability_log.setdefault("bad_input_cases", {})[f"row: {case}"] = msg


def test_numeric_answers_and_parquet_files_work(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    path = tmp_path / "d.parquet"
    pq.write_table(pa.Table.from_pylist(_rows()), path)
    d = load_prompts(DoprConfig(dataset=str(path), n_test=4, n_train=0))
    assert len(d.train) == 8 and d.train[2]["answer"] == "3"
    assert d.train[0]["prompt"].startswith("Question: what is 0+1?")
    rows = [{**r, "answer": i} for i, r in enumerate(_rows())]
    d = load_prompts(DoprConfig(dataset=str(_write(tmp_path / "n.jsonl",
                                                   rows)), n_test=4))
    assert d.train[5]["answer"] == "5"


BAD_FILES = {
    "not json": (b'{"question": "a", "answer": "1"}\nnot json\n',
                 "line 2: not JSON"),
    "a json array": (b'[{"question": "a", "answer": "1"}]\n',
                     "line 1: expected a JSON object, got list"),
    "binary": (b"\x89PNG\r\n\x1a\n\x00\xff\xfe", "line 1: not UTF-8"),
    "csv": (b"question,answer\nwhat,1\n", "line 1: not JSON"),
}


@pytest.mark.parametrize("case", sorted(BAD_FILES))
def test_a_file_that_is_not_jsonl_names_file_and_line(
        tmp_path, case, reliability_log):
    content, expected = BAD_FILES[case]
    path = tmp_path / "bad.jsonl"
    path.write_bytes(content)
    with pytest.raises(DataError, match=f"bad.jsonl: {expected}") as err:
        load_prompts(DoprConfig(dataset=str(path), n_test=1))
    reliability_log.setdefault("bad_input_cases", {})[f"file: {case}"] = \
        str(err.value)


def test_a_broken_parquet_file_is_named(tmp_path):
    path = tmp_path / "d.parquet"
    path.write_bytes(b"PAR1 definitely not parquet")
    with pytest.raises(DataError, match="d.parquet: not a readable Parquet"):
        read_rows(path)


def test_too_few_rows_for_the_test_split_names_n_test(tmp_path):
    path = _write(tmp_path / "d.jsonl", _rows(3))
    with pytest.raises(ConfigError, match="'n_test'.*has 3 rows"):
        load_prompts(DoprConfig(dataset=str(path), n_test=3))


def test_offline_hub_dataset_fails_with_advice():
    with pytest.raises(DataError, match="openai/gsm8k"):
        load_prompts(DoprConfig(dataset="gsm8k"))


def test_chat_template_is_used_when_present():
    class Tok:
        chat_template = "x"

        def apply_chat_template(self, msgs, tokenize, add_generation_prompt):
            return "<user>" + msgs[0]["content"] + "<assistant>"

    assert format_prompt("1+1?", Tok()).startswith("<user>1+1?")


def _fake_hub(monkeypatch):
    """GSM8K and MATH-500 in their real schemas, served without a network."""
    from datasets import Dataset, DatasetDict

    import dopr_lite.data

    gsm = [{"question": f"Tom has {i} apples and buys 2. How many?",
            "answer": f"{i} + 2 = {i + 2}\n#### {i + 2:,}"}
           for i in range(999, 1011)]
    gsm[1]["answer"] = "the marker was lost"  # a bad row
    math = [{"problem": f"Simplify $\\frac{{{i}}}{{{2 * i}}}$.",
             "solution": "... so \\boxed{\\frac{1}{2}}",
             "answer": "\\frac{1}{2}", "subject": "Algebra", "level": 1,
             "unique_id": f"test/algebra/{i}.json"} for i in range(1, 9)]
    hub = {"openai/gsm8k": DatasetDict(train=Dataset.from_list(gsm[:8]),
                                       test=Dataset.from_list(gsm[8:])),
           "HuggingFaceH4/MATH-500": DatasetDict(
               test=Dataset.from_list(math))}
    monkeypatch.setattr(dopr_lite.data, "load_dataset",
                        lambda repo, subset=None, **_: hub[repo])


def test_gsm8k_rows_become_prompts_and_bad_rows_are_reported(monkeypatch):
    _fake_hub(monkeypatch)
    cfg = DoprConfig(dataset="gsm8k", n_test=4, bad_rows="skip")
    d = load_prompts(cfg)
    assert len(d.train) == 7 and len(d.test) == 4
    assert d.train[0]["answer"] == "1001"  # "#### 1,001", comma dropped
    (info,) = d.skipped.values()
    assert info["count"] == 1 and info["first_ids"] == ["train row 1"]
    assert info["example"].startswith("train row 1: gold answer")
    assert list(d.skipped) == ["openai/gsm8k: field 'answer'"]
    with pytest.raises(DataError, match="openai/gsm8k: train row 1: field "
                       "'answer'"):
        load_prompts(DoprConfig(dataset="gsm8k", n_test=4))


def test_math500_uses_boxed_answers_and_one_shot_rlvr_format(monkeypatch):
    _fake_hub(monkeypatch)
    cfg = DoprConfig(dataset="math500", n_test=3, reward="math_verify")
    d = load_prompts(cfg)
    assert (len(d.train), len(d.test)) == (5, 3)
    assert d.test[0]["id"] == "test/algebra/6.json"
    assert d.train[0]["answer"] == "\\frac{1}{2}"
    assert d.train[0]["prompt"].endswith(
        "output the final answer within \\boxed{}.\nAnswer: ")


def test_an_empty_file_is_named_as_empty(tmp_path):
    path = tmp_path / "empty.jsonl"
    path.write_text("\n")
    with pytest.raises(DataError, match="empty.jsonl: no rows") as err:
        load_prompts(DoprConfig(dataset=str(path), n_test=4))
    assert "n_test" not in str(err.value)


def test_an_empty_held_out_split_is_a_config_error_not_a_data_error(
        tmp_path):
    path = _write(tmp_path / "d.jsonl", _rows())
    with pytest.raises(ConfigError, match="'n_test'.*held-out") as err:
        DoprConfig(dataset=str(path), n_test=0)
    assert "no usable rows" not in str(err.value)
