"""Prompt datasets: the embedded task, GSM8K, MATH-500, or a local file.

Every source becomes a ``datasets.Dataset`` with at least ``prompt`` and
``answer`` columns (strings) plus an ``id``, split into an RL pool and a
held-out test set.  Gold answers are extracted once here (GSM8K's
``#### n``, MATH's ``\\boxed{}``); rows without a usable answer are counted
and skipped, and the count and first ids are reported, never silently
scored 0.

Real-model prompts are formatted with the tokenizer's chat template when it
has one (one-shot RLVR's instruction: think step by step, final answer
last); the embedded task's prompts are used as they are.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

from dopr_lite import task as T
from dopr_lite.config import ConfigError, DoprConfig

INSTRUCTION = ("Let's think step by step and output the final answer "
               "after \"####\".")
HUB_SOURCES = {
    "gsm8k": ("openai/gsm8k", "main", "train", "test"),
    "math500": ("HuggingFaceH4/MATH-500", None, "test", "test"),
}


class DataError(ValueError):
    """A data file or row is unusable; the message names file/row/field."""


@dataclass
class PromptData:
    train: object  # datasets.Dataset: the RL prompt pool
    test: object  # datasets.Dataset: held-out prompts
    skipped: dict  # reason -> {"count": n, "first_ids": [...]}


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


def format_prompt(question: str, tokenizer=None) -> str:
    """Wrap a question in the chat template when the tokenizer has one."""
    if tokenizer is not None and getattr(tokenizer, "chat_template", None):
        msgs = [{"role": "user", "content": f"{question}\n{INSTRUCTION}"}]
        return tokenizer.apply_chat_template(
            msgs, tokenize=False, add_generation_prompt=True)
    return f"Question: {question}\n{INSTRUCTION}\nAnswer: "


def _rows_to_dataset(rows, source: str, tokenizer, skipped: dict,
                     question_key="question", answer_key="answer"):
    from datasets import Dataset

    out, seen = [], set()
    for i, row in enumerate(rows):
        rid = str(row.get("id", row.get("unique_id", i)))
        q = row.get(question_key, row.get("problem", row.get("prompt")))
        gold = gold_answer(row.get(answer_key, row.get("solution")))
        reason = None
        if not isinstance(q, str) or not q.strip():
            reason = f"{source}: missing or empty question"
        elif gold is None:
            reason = f"{source}: no usable gold answer"
        elif rid in seen:
            raise DataError(f"{source}: row {i}: duplicated id {rid!r}")
        if reason:
            entry = skipped.setdefault(reason, {"count": 0, "first_ids": []})
            entry["count"] += 1
            if len(entry["first_ids"]) < 5:
                entry["first_ids"].append(rid)
            continue
        seen.add(rid)
        out.append({"id": rid, "prompt": format_prompt(q, tokenizer),
                    "answer": gold})
    if not out:
        raise DataError(f"{source}: no usable rows")
    return Dataset.from_list(out)


def read_jsonl(path: Path) -> list[dict]:
    rows = []
    with open(path, encoding="utf-8") as fh:
        for lineno, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as err:
                raise DataError(f"{path}: line {lineno}: not JSON ({err.msg})"
                                ) from err
            if not isinstance(row, dict):
                raise DataError(f"{path}: line {lineno}: expected an object")
            rows.append(row)
    return rows


def _hub_dataset(name: str):
    from datasets import load_dataset

    repo, subset, train_split, test_split = HUB_SOURCES[name]
    offline = any(os.environ.get(v, "").lower() in ("1", "true", "yes")
                  for v in ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE"))
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


def load_prompts(cfg: DoprConfig, tokenizer=None) -> PromptData:
    """The RL pool and held-out set that ``cfg.dataset`` names."""
    if cfg.dataset == "embedded":
        return PromptData(
            train=T.task_dataset("rl", cfg.n_train, cfg.data_seed),
            test=T.task_dataset("test", cfg.n_test, cfg.data_seed),
            skipped={})
    skipped: dict = {}
    if cfg.dataset in HUB_SOURCES:
        train_rows, test_rows = _hub_dataset(cfg.dataset)
        if cfg.dataset == "math500":  # one split: hold out its tail
            rows = list(train_rows)
            train_rows, test_rows = rows[:-cfg.n_test], rows[-cfg.n_test:]
        src = cfg.dataset
    else:
        path = Path(cfg.dataset)
        if not path.is_file():
            raise ConfigError(f"config field 'dataset': {cfg.dataset!r} is "
                              "neither 'embedded', "
                              f"{sorted(HUB_SOURCES)} nor a file")
        rows = read_jsonl(path)
        test_rows = rows[-cfg.n_test:]
        train_rows = rows[:-cfg.n_test]
        src = str(path)
    train = _rows_to_dataset(train_rows, src, tokenizer, skipped)
    test = _rows_to_dataset(test_rows, src, tokenizer, skipped)
    if cfg.n_train and len(train) > cfg.n_train:
        train = train.select(range(cfg.n_train))
    if len(test) > cfg.n_test:
        test = test.select(range(cfg.n_test))
    return PromptData(train=train, test=test, skipped=skipped)
