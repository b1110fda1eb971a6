"""Verifiable rewards, in TRL's calling convention.

Every reward here is ``fn(completions, **dataset_columns) -> list[float]``,
so the same function works in dopr_lite's loop and inside TRL's
``GRPOTrainer`` (which passes conversational completions as lists of
``{"role", "content"}`` messages; both forms are accepted).

* :func:`exact_answer_reward`: 1.0 when the completion's final ``#### <n>``
  line equals the gold answer numerically (the synthetic task, GSM8K);
  numbers may be grouped by thousands (``1,234``) or simple fractions.
* :func:`math_verify_reward`: symbolic equivalence via ``math-verify``; we
  split on ``####`` ourselves (math-verify does not treat it as a marker)
  and otherwise let it find ``\\boxed{}`` or the last expression.
* :func:`format_reward`: 1.0 when the completion ends in a final-answer line.

Model output is only ever parsed, never evaluated.  Rewards never raise:
anything they cannot parse (garbage, empty, huge or mangled text) scores 0.
Inputs are capped at ``MAX_CHARS`` characters (the tail is kept, since the
final answer comes last).  math-verify runs in a child process with a hard
deadline (:mod:`dopr_lite.sandbox`): a LaTeX bomb such as ``9^{9^{9^9}}``
makes sympy compute for minutes in C, where neither math-verify's
``signal.alarm`` timeouts (main thread only) nor a thread can stop it, so
the worker is killed and the completion scores 0.
"""

from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation
from fractions import Fraction

from dopr_lite.errors import ConfigError
from dopr_lite.sandbox import (Sandbox, SandboxCrash, SandboxError,
                               SandboxTimeout)

MAX_CHARS = 4096
_NUMBER = re.compile(r"[+-]?(\d+(\.\d*)?|\.\d+)")
_GROUPED = re.compile(r"[+-]?\d{1,3}(,\d{3})+(\.\d*)?")  # 1,234,567.5
_FRACTION = re.compile(r"([+-]?\d+)\s*/\s*(\d+)")  # 3/4, -1 / 2
_MARKER = "####"


def completion_text(completion) -> str:
    """Plain text of a completion: a string or a list of chat messages."""
    if isinstance(completion, str):
        return completion
    if isinstance(completion, dict):
        return str(completion.get("content", ""))
    if isinstance(completion, (list, tuple)):
        return "".join(completion_text(m) for m in completion)
    return ""


def final_answer(text: str) -> str | None:
    """The text after the last ``####`` marker, up to the line end."""
    text = text[-MAX_CHARS:]
    at = text.rfind(_MARKER)
    if at < 0:
        return None
    tail = text[at + len(_MARKER):].strip().split("\n", 1)[0]
    return tail.strip() or None


def normalise_number(text: str) -> Fraction | None:
    """The exact value of a number as a careful grader reads it: plain
    (``-12.50``), with commas as thousands separators only (``1,234``; not
    ``1,2``), or a simple fraction (``3/4``); a ``$`` and a final ``.`` are
    ignored.  ``None`` for anything else."""
    s = text.strip().replace("$", "").rstrip(".").strip()
    if len(s) > 64:
        return None
    if _GROUPED.fullmatch(s):
        s = s.replace(",", "")
    if m := _FRACTION.fullmatch(s):
        return Fraction(int(m[1]), int(m[2])) if int(m[2]) else None
    if not _NUMBER.fullmatch(s):
        return None
    try:
        return Fraction(Decimal(s))
    except InvalidOperation:
        return None


def gold_text(gold) -> str | None:
    """A gold answer as the rewards compare it: a GSM8K-style answer text
    (``... #### 72``) is read like a completion, by its final answer line."""
    gold = str(gold)
    return final_answer(gold) if _MARKER in gold else gold


def answers_equal(pred: str | None, gold: str) -> bool:
    """Numeric equality when both parse as numbers, else exact text."""
    gold = gold_text(gold)
    if pred is None or gold is None:
        return False
    a, b = normalise_number(pred), normalise_number(gold)
    if a is not None and b is not None:
        return a == b
    return pred.strip() == gold.strip()


def _safe(score_one):
    """Run a per-completion scorer; any exception scores 0, except that a
    checker which cannot run at all (its sandbox does not start) raises,
    so a broken install never scores every completion 0 silently."""
    def run(completion, gold) -> float:
        try:
            return float(score_one(completion_text(completion), gold))
        except SandboxError:
            raise
        except Exception:  # a reward must never crash a training step
            return 0.0
    return run


@_safe
def _exact(text: str, gold) -> float:
    return 1.0 if answers_equal(final_answer(text), str(gold)) else 0.0


def exact_answer_reward(completions, answer, **_) -> list[float]:
    """1.0 when the final ``#### n`` equals the gold ``answer``."""
    return [_exact(c, g) for c, g in zip(completions, answer, strict=True)]


MATH_VERIFY_TIMEOUT = 1  # seconds for each math-verify parse/verify
SANDBOX_DEADLINE = 4.0  # hard bound on one math-verify call, in seconds
_SANDBOX = None


def parse_gold_math(gold: str):
    """Parse a gold answer for math-verify (``#### n`` or LaTeX/plain)."""
    # math-verify (and sympy behind it) is imported in the sandbox worker
    # only: the training process never needs it
    from math_verify import parse

    s = str(gold)
    marked = final_answer(s)
    if marked is not None:
        s = marked
    if "\\boxed" not in s and "$" not in s:
        s = f"${s}$"
    return parse(s, parsing_timeout=MATH_VERIFY_TIMEOUT)


_gold_cache: dict = {}


def math_score(text: str, gold: str) -> float:
    """math-verify's verdict on ``text`` against ``gold`` (unguarded).

    Runs inside the sandbox worker (:mod:`dopr_lite.sandbox`), on its main
    thread, so math-verify's own signal timeouts work; gold answers are
    parsed once per worker and cached.
    """
    from math_verify import parse, verify

    if gold not in _gold_cache:
        if len(_gold_cache) > 10_000:
            _gold_cache.clear()
        _gold_cache[gold] = parse_gold_math(gold)
    gold_parsed = _gold_cache[gold]
    if not gold_parsed:
        return 0.0
    pred = parse(text, parsing_timeout=MATH_VERIFY_TIMEOUT)
    if not pred:
        return 0.0
    ok = verify(gold_parsed, pred, timeout_seconds=MATH_VERIFY_TIMEOUT)
    return 1.0 if ok else 0.0


def math_gold_parses(gold: str) -> bool:
    """Whether math-verify can parse ``gold`` (runs in the sandbox)."""
    try:
        return bool(_sandbox()("gold_ok", str(gold)))
    except (SandboxTimeout, SandboxCrash):
        return False


def _gold_ok_raw(gold: str) -> bool:
    # math-verify returns [expression, text] when it parses, [text] or []
    # when it only has the raw string to compare
    return len(parse_gold_math(gold)) >= 2


def _dispatch(name: str, *args):
    """The sandbox worker's entry: one of this module's pure scorers."""
    fn = {"math_score": math_score, "gold_ok": _gold_ok_raw}[name]
    return fn(*args)


def _sandbox():
    global _SANDBOX
    if _SANDBOX is None:
        _SANDBOX = Sandbox("dopr_lite.rewards:_dispatch",
                           deadline=SANDBOX_DEADLINE)
    return _SANDBOX


@_safe
def _math(text: str, gold) -> float:
    text = text[-MAX_CHARS:]
    marked = final_answer(text)
    if marked is not None:
        if answers_equal(marked, str(gold)):
            return 1.0
        text = f"${marked}$"
    try:
        return float(_sandbox()("math_score", text, str(gold)))
    except SandboxTimeout:  # counted in _sandbox().timeouts
        return 0.0


def math_verify_reward(completions, answer, **_) -> list[float]:
    """1.0 when math-verify finds the completion equivalent to ``answer``."""
    return [_math(c, g) for c, g in zip(completions, answer, strict=True)]


_FORMAT = re.compile(r"(####[ \t]*\S[^\n]*|\\boxed\{.+\})\s*$", re.DOTALL)


@_safe
def _format(text: str, _gold) -> float:
    return 1.0 if _FORMAT.search(text[-MAX_CHARS:]) else 0.0


def format_reward(completions, **_) -> list[float]:
    """1.0 when the completion ends with ``#### ...`` or ``\\boxed{...}``."""
    return [_format(c, None) for c in completions]


REWARDS = {
    "exact": exact_answer_reward,
    "math_verify": math_verify_reward,
    "format": format_reward,
}


def combined_reward(names, weights=None):
    """A weighted sum of named rewards, still in TRL's convention."""
    fns = [REWARDS[n] for n in names]
    weights = list(weights or [1.0] * len(fns))
    if len(weights) != len(fns):
        raise ValueError("reward weights must match reward names one to one")

    def reward(completions, **columns) -> list[float]:
        total = [0.0] * len(completions)
        for fn, w in zip(fns, weights, strict=True):
            for i, r in enumerate(fn(completions, **columns)):
                total[i] += w * r
        return total

    reward.__name__ = "+".join(names)
    return reward


def gold_problem(spec: str, gold: str) -> str | None:
    """Why the rewards in ``spec`` cannot use ``gold``, or None if they can.

    Checked once per row when data is loaded, so a gold answer no reward
    can match never silently scores every completion 0 (or a lenient one 1).
    """
    names = {s.strip() for s in spec.split(",")}
    if "exact" in names and normalise_number(gold_text(gold) or "") is None:
        return ("is not a number (reward 'exact' compares numbers; use "
                "reward='math_verify' for symbolic answers)")
    if "math_verify" in names and not math_gold_parses(gold):
        return "cannot be parsed by math-verify"
    return None


def reward_names(spec: str) -> list[str]:
    """The reward names in a config's ``reward`` field; ConfigError (naming
    the field and the choices) for an unknown or empty one."""
    names = [s.strip() for s in spec.split(",") if s.strip()]
    unknown = [n for n in names if n not in REWARDS]
    if not names or unknown:
        raise ConfigError(f"config field 'reward': unknown {unknown or spec!r}"
                          f"; choose from {sorted(REWARDS)}")
    return names


def get_reward(spec: str):
    """A reward by config name: ``"exact"``, ``"math_verify,format"``..."""
    names = reward_names(spec)
    return REWARDS[names[0]] if len(names) == 1 else combined_reward(names)
