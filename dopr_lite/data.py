"""Prompt datasets: the embedded task, GSM8K, MATH-500, or a local file.

Every source becomes a ``datasets.Dataset`` with at least ``prompt`` and
``answer`` columns (strings) plus an ``id``, split into an RL pool and a
held-out test set.  Gold answers are extracted once here (GSM8K's
``#### n``, MATH's ``\\boxed{}``) and checked against the configured reward
(a number for ``exact``; parsable for ``math_verify``).  A bad row (missing
or empty question/answer, wrong type, duplicated id, unparsable gold) is an
error naming the file, row and field; with ``bad_rows="skip"`` it is skipped
and counted, and the counts and first ids are reported, never silently
scored 0.

``label_noise`` (a controlled experiment, off by default) gives a share of
the RL pool another pool row's gold answer, so no rollout can solve those
prompts: the rows selection rules should learn to leave alone.  The
held-out split is never touched.

Real-model prompts are formatted with the tokenizer's chat template when it
has one (one-shot RLVR's instruction: think step by step, final answer
last); the embedded task's prompts are used as they are.
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass
from pathlib import Path

import pyarrow.parquet as pq
from datasets import Dataset, load_dataset

from dopr_lite import task as T
from dopr_lite.config import DoprConfig
from dopr_lite.env import hub_offline
from dopr_lite.errors import ConfigError, DataError
from dopr_lite.rewards import gold_problem

INSTRUCTION = ("Let's think step by step and output the final answer "
               "after \"####\".")
# one-shot RLVR's instruction (Wang et al. 2025), for \\boxed{} answers
BOXED_INSTRUCTION = ("Let's think step by step and output the final answer "
                     "within \\boxed{}.")
HUB_SOURCES = {
    "gsm8k": ("openai/gsm8k", "main", "train", "test"),
    "math500": ("HuggingFaceH4/MATH-500", None, "test", "test"),
}


@dataclass
class PromptData:
    train: object  # datasets.Dataset: the RL prompt pool
    test: object  # datasets.Dataset: held-out prompts
    skipped: dict  # "file: field" -> {"count", "first_ids", "example"}
    noisy: tuple = ()  # RL pool rows whose gold answer label_noise replaced


def boxed_answer(text: str) -> str | None:
    """Contents of the last ``\\boxed{...}`` (balanced braces), if any."""
    at = text.rfind("\\boxed")
    if at < 0:
        return None
    i = text.find("{", at)
    if i < 0:
        return None
    depth = 0
    for j in range(i, len(text)):
        if text[j] == "{":
            depth += 1
        elif text[j] == "}":
            depth -= 1
            if depth == 0:
                return text[i + 1:j].strip() or None
    return None


def gold_answer(raw) -> str | None:
    """A usable gold answer from GSM8K/MATH/plain forms, or None."""
    if raw is None:
        return None
    s = str(raw).strip()
    if "####" in s:
        s = s.rsplit("####", 1)[1].strip()
    elif "\\boxed" in s:
        s = boxed_answer(s) or ""
    return s.replace(",", "") if s else None


def instruction_for(reward: str) -> str:
    """The answer-format instruction the configured reward can check."""
    return BOXED_INSTRUCTION if "math_verify" in reward else INSTRUCTION


def format_prompt(question: str, tokenizer=None,
                  instruction: str = INSTRUCTION) -> str:
    """Wrap a question in the chat template when the tokenizer has one."""
    if tokenizer is not None and getattr(tokenizer, "chat_template", None):
        msgs = [{"role": "user", "content": f"{question}\n{instruction}"}]
        return tokenizer.apply_chat_template(
            msgs, tokenize=False, add_generation_prompt=True)
    return f"Question: {question}\n{instruction}\nAnswer: "


QUESTION_KEYS = ("question", "problem", "prompt")
ANSWER_KEYS = ("answer", "solution")


def _field(row: dict, keys) -> tuple[str, object]:
    """The first of ``keys`` present in ``row`` (name, value)."""
    for k in keys:
        if k in row:
            return k, row[k]
    return keys[0], None


def row_problem(row, reward: str) -> tuple[str, str] | None:
    """``(field, what is wrong)`` for an unusable row, or None.

    Checks types and emptiness, that a gold answer can be extracted, and
    that the configured reward can parse it (gold answers are parsed once,
    here, so a bad one can never score every completion 0 or 1 silently).
    """
    if not isinstance(row, dict):
        return "row", f"expected an object, got {type(row).__name__}"
    rid = row.get("id", row.get("unique_id"))
    if rid is not None and (isinstance(rid, bool)
                            or not isinstance(rid, (str, int))):
        return "id", f"must be a string or integer, got {type(rid).__name__}"
    qkey, q = _field(row, QUESTION_KEYS)
    if q is None:
        return qkey, f"missing (looked for {'/'.join(QUESTION_KEYS)})"
    if not isinstance(q, str):
        return qkey, f"must be a string, got {type(q).__name__}"
    if not q.strip():
        return qkey, "empty"
    akey, raw = _field(row, ANSWER_KEYS)
    if raw is None:
        return akey, f"missing (looked for {'/'.join(ANSWER_KEYS)})"
    if isinstance(raw, bool) or not isinstance(raw, (str, int, float)):
        return akey, f"must be a string or number, got {type(raw).__name__}"
    gold = gold_answer(raw)
    if gold is None:
        return akey, (f"no usable answer in {str(raw)[:60]!r} (expected "
                      "'#### n', '\\boxed{...}' or a plain answer)")
    why = gold_problem(reward, gold)
    if why:
        return akey, f"gold answer {gold[:60]!r} {why}"
    return None


def _rows_to_dataset(rows, labels, source: str, cfg: DoprConfig, tokenizer,
                     skipped: dict, seen: set):
    """Checked rows -> Dataset; bad rows raise or are skipped and counted.

    ``labels`` name each row in messages ("line 7", "row 3"); ``seen``
    carries ids across splits, so a duplicate is caught wherever it is.
    """
    out = []
    for row, where in zip(rows, labels, strict=True):
        problem = row_problem(row, cfg.reward)
        rid = (str(row.get("id", row.get("unique_id", where)))
               if isinstance(row, dict) else where)
        if problem is None and rid in seen:
            problem = ("id", f"duplicated id {rid!r}")
        if problem is not None:
            name, why = problem
            if cfg.bad_rows != "skip":
                raise DataError(
                    f"{source}: {where}: field {name!r}: {why}. Fix the "
                    "row, or set bad_rows='skip' to skip such rows (they "
                    "are counted and reported)")
            entry = skipped.setdefault(
                f"{source}: field {name!r}",
                {"count": 0, "first_ids": [], "example": f"{where}: {why}"})
            entry["count"] += 1
            if len(entry["first_ids"]) < 5:
                entry["first_ids"].append(rid)
            continue
        seen.add(rid)
        q = _field(row, QUESTION_KEYS)[1]
        out.append({"id": rid, "prompt": format_prompt(
                        q, tokenizer, instruction_for(cfg.reward)),
                    "answer": gold_answer(_field(row, ANSWER_KEYS)[1])})
    if not out:
        raise DataError(f"{source}: no usable rows")
    return Dataset.from_list(out)


def read_jsonl(path: Path) -> list[dict]:
    """Rows of a JSONL data file, strictly: anything but one JSON object
    per line is a DataError naming the line (a run's own logs are read
    leniently: :func:`dopr_lite.runlog.read_log`)."""
    return [row for _, row in _read_jsonl_lines(path)]


def _read_jsonl_lines(path: Path) -> list[tuple[int, object]]:
    rows = []
    with open(path, "rb") as fh:
        for lineno, raw in enumerate(fh, 1):
            try:
                line = raw.decode("utf-8")
            except UnicodeDecodeError as err:
                raise DataError(f"{path}: line {lineno}: not UTF-8 text; "
                                "expected JSONL (one JSON object per line)"
                                ) from err
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as err:
                raise DataError(f"{path}: line {lineno}: not JSON ({err.msg})"
                                "; expected JSONL (one JSON object per line)"
                                ) from err
            if not isinstance(row, dict):
                raise DataError(f"{path}: line {lineno}: expected a JSON "
                                f"object, got {type(row).__name__}")
            rows.append((lineno, row))
    return rows


def read_rows(path: Path) -> tuple[list[dict], list[str]]:
    """Rows and their labels from a ``.jsonl`` or ``.parquet`` file."""
    path = Path(path)
    if path.suffix == ".parquet":
        try:
            rows = pq.read_table(path).to_pylist()
        except Exception as err:  # pyarrow raises several kinds
            raise DataError(f"{path}: not a readable Parquet file ({err})"
                            ) from err
        return rows, [f"row {i}" for i in range(len(rows))]
    pairs = _read_jsonl_lines(path)
    return [r for _, r in pairs], [f"line {n}" for n, _ in pairs]


def _hub_dataset(name: str):
    repo, subset, train_split, test_split = HUB_SOURCES[name]
    offline = hub_offline(datasets=True)
    try:
        ds = load_dataset(repo, subset)
    except Exception as err:  # datasets raises several kinds
        hint = (" HF_HUB_OFFLINE=1 is set and it is not cached;"
                if offline else "")
        raise DataError(
            f"dataset {repo!r} could not be loaded.{hint} On a machine with "
            f"internet run `hf download --repo-type dataset {repo}` or save "
            "it as JSONL and pass the file path.") from err
    return ds[train_split], ds[test_split]


def add_label_noise(train, share: float, seed: int):
    """Give ``share`` of the rows another noisy row's answer (a cycle).

    Returns the dataset and the indices whose answer changed (a row whose
    donor had the same answer keeps a solvable prompt and is not counted).
    """
    k = round(share * len(train))
    if k < 2:
        return train, ()
    rng = random.Random(f"label-noise:{seed}")
    rows = sorted(rng.sample(range(len(train)), k))
    answers = list(train["answer"])
    new = list(answers)
    for j, i in enumerate(rows):  # each row takes the next one's answer
        new[i] = answers[rows[(j + 1) % k]]
    noisy = tuple(i for i in rows if new[i] != answers[i])
    train = train.remove_columns("answer").add_column("answer", new)
    return train, noisy


def load_prompts(cfg: DoprConfig, tokenizer=None) -> PromptData:
    """The RL pool and held-out set that ``cfg.dataset`` names."""
    data = _load_prompts(cfg, tokenizer)
    if cfg.label_noise:
        data.train, data.noisy = add_label_noise(
            data.train, cfg.label_noise, cfg.data_seed)
    return data


def _load_prompts(cfg: DoprConfig, tokenizer=None) -> PromptData:
    if cfg.dataset == "embedded":
        mix = cfg.task_mix()
        return PromptData(
            train=T.task_dataset("rl", cfg.n_train, cfg.data_seed, mix),
            test=T.task_dataset("test", cfg.n_test, cfg.data_seed, mix),
            skipped={})
    skipped: dict = {}
    if cfg.dataset in HUB_SOURCES:
        train_rows, test_rows = map(list, _hub_dataset(cfg.dataset))
        if cfg.dataset == "math500":  # one split: hold out its tail
            rows = train_rows
            train_rows, test_rows = rows[:-cfg.n_test], rows[-cfg.n_test:]
        train_labels = [f"train row {i}" for i in range(len(train_rows))]
        test_labels = [f"test row {i}" for i in range(len(test_rows))]
        src = HUB_SOURCES[cfg.dataset][0]
    else:
        path = Path(cfg.dataset)
        if not path.is_file():
            raise ConfigError(f"config field 'dataset': {cfg.dataset!r} is "
                              "neither 'embedded', "
                              f"{sorted(HUB_SOURCES)} nor a file")
        rows, labels = read_rows(path)
        if not rows:
            raise DataError(f"{path}: no rows: the file is empty (expected "
                            "JSONL, one JSON object per line, or Parquet)")
        if len(rows) <= cfg.n_test:
            raise ConfigError(
                f"config field 'n_test': {path} has {len(rows)} rows and "
                f"n_test={cfg.n_test} holds out the last {cfg.n_test}, "
                "leaving none to train on; lower n_test")
        cut = len(rows) - cfg.n_test
        train_rows, test_rows = rows[:cut], rows[cut:]
        train_labels, test_labels = labels[:cut], labels[cut:]
        src = str(path)
    seen: set = set()
    train = _rows_to_dataset(train_rows, train_labels, src, cfg, tokenizer,
                             skipped, seen)
    test = _rows_to_dataset(test_rows, test_labels, src, cfg, tokenizer,
                            skipped, seen)
    if cfg.n_train and len(train) > cfg.n_train:
        train = train.select(range(cfg.n_train))
    if len(test) > cfg.n_test:
        test = test.select(range(cfg.n_test))
    return PromptData(train=train, test=test, skipped=skipped)
