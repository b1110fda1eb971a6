"""The embedded synthetic reasoning task: multi-step integer arithmetic.

A problem is a chain such as ``57+38-19`` with 2-4 operands.  The prompt is
``57+38-19=?\\n``; a completion is judged only by its final ``#### <n>`` line,
exactly like GSM8K.  Two solution *styles* exist:

* careful (step by step)::

      57+38=95
      95-19=76
      #### 76

* direct (a short guess, no work shown)::

      #### 74

The warm-up corpus (see :mod:`dopr_lite.tiny`) mixes both styles.  Careful
solutions are always right; direct guesses are right only by luck.  How often
the corpus uses the careful style depends on the problem through
:func:`careful_rate` (a "laziness" that grows with the number of steps and
shrinks with the first operand).  The warmed-up model therefore *knows* the
reliable procedure but uses it only on some prompts: a latent capability that
RL can unlock by shifting one shared decision, which is the phenomenon that
one-shot RLVR and DoPR rely on ("RL activates, it does not teach").

Splits are assigned by a hash of the problem text, so the warm-up (``sft``),
RL (``rl``) and held-out (``test``) splits are disjoint for every seed and
every difficulty setting.

Departures from the paper: the paper trains on real math (MATH, DeepScaleR);
this task exists so that every experiment runs in minutes on a laptop CPU.
"""

from __future__ import annotations

import hashlib
import math
import random
from dataclasses import dataclass

from datasets import Dataset

SPLITS = ("sft", "rl", "test")
# Shares of the hash space given to each split (out of 10 buckets).
_SPLIT_BUCKETS = {"sft": range(0, 6), "rl": range(6, 8), "test": range(8, 10)}


@dataclass(frozen=True)
class TaskSpec:
    """Difficulty knobs of the synthetic task."""

    min_ops: int = 2  # fewest operands in a chain
    max_ops: int = 4  # most operands in a chain
    max_operand: int = 99  # operands are drawn from 1..max_operand
    max_value: int = 999  # running totals stay in 0..max_value
    ops: str = "+-"  # operators to draw from


DEFAULT_SPEC = TaskSpec()


def problem_split(expr: str) -> str:
    bucket = int(hashlib.sha256(expr.encode()).hexdigest(), 16) % 10
    for name, buckets in _SPLIT_BUCKETS.items():
        if bucket in buckets:
            return name
    raise AssertionError(bucket)


def _apply(total: int, op: str, x: int) -> int:
    if op == "+":
        return total + x
    if op == "-":
        return total - x
    if op == "*":
        return total * x
    raise ValueError(f"unknown operator {op!r}")


def sample_problem(rng: random.Random, spec: TaskSpec) -> list:
    """Draw one chain as a list ``[a1, op1, a2, op2, a3, ...]``."""
    while True:
        n = rng.randint(spec.min_ops, spec.max_ops)
        items: list = [rng.randint(1, spec.max_operand)]
        total = items[0]
        ok = True
        for _ in range(n - 1):
            op = rng.choice(spec.ops)
            x = rng.randint(1, spec.max_operand)
            total = _apply(total, op, x)
            if not 0 <= total <= spec.max_value:
                ok = False
                break
            items += [op, x]
        if ok:
            return items


def expression(items: list) -> str:
    return "".join(str(t) for t in items)


def prompt_text(items: list) -> str:
    return f"{expression(items)}=?\n"


def answer_of(items: list) -> int:
    total = items[0]
    for i in range(1, len(items), 2):
        total = _apply(total, items[i], items[i + 1])
    return total


def careful_solution(items: list) -> str:
    """The reliable step-by-step solution, one binary operation per line."""
    lines, total = [], items[0]
    for i in range(1, len(items), 2):
        new = _apply(total, items[i], items[i + 1])
        lines.append(f"{total}{items[i]}{items[i + 1]}={new}")
        total = new
    lines.append(f"#### {total}")
    return "\n".join(lines)


def direct_guess(items: list, rng: random.Random, spread: int = 9) -> str:
    """A short guess near the answer (right with probability 1/(2*spread+1))."""
    guess = max(0, answer_of(items) + rng.randint(-spread, spread))
    return f"#### {guess}"


def careful_rate(items: list, spec: TaskSpec = DEFAULT_SPEC) -> float:
    """Share of careful solutions for this problem in the warm-up corpus.

    A logistic "laziness" in two visible features: more operands make the
    corpus lazier, a larger first operand makes it more careful.  The numbers
    put about a third of problems above 1/2, so greedy decoding of the
    warmed-up model is careful on roughly that third.
    """
    n_ops = (len(items) + 1) // 2
    mid_ops = (spec.min_ops + spec.max_ops) / 2
    z = (items[0] / spec.max_operand - 0.75) * 6.0 - 0.8 * (n_ops - mid_ops)
    return 1.0 / (1.0 + math.exp(-z))


def make_problems(n: int, split: str, seed: int = 0,
                  spec: TaskSpec = DEFAULT_SPEC) -> list[dict]:
    """``n`` distinct problems of one split, reproducible from ``seed``.

    Each row: ``id``, ``prompt``, ``answer`` (a string, as in GSM8K),
    ``solution`` (the careful one), ``n_ops`` and ``careful_rate``.
    """
    if split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
    rng = random.Random(f"{seed}:{split}")
    rows, seen, tries = [], set(), 0
    while len(rows) < n:
        tries += 1
        if tries > 200 * n + 10_000:
            raise ValueError(
                f"could not draw {n} distinct {split!r} problems from {spec}; "
                "widen the difficulty knobs or ask for fewer")
        items = sample_problem(rng, spec)
        expr = expression(items)
        if expr in seen or problem_split(expr) != split:
            continue
        seen.add(expr)
        rows.append({
            "id": f"{split}-{seed}-{len(rows)}",
            "prompt": prompt_text(items),
            "answer": str(answer_of(items)),
            "solution": careful_solution(items),
            "n_ops": (len(items) + 1) // 2,
            "careful_rate": careful_rate(items, spec),
        })
    return rows


def parse_prompt(prompt: str) -> list:
    """Inverse of :func:`prompt_text` (used to rebuild warm-up targets)."""
    expr = prompt.strip().removesuffix("=?")
    items, num = [], ""
    for ch in expr:
        if ch.isdigit():
            num += ch
        elif ch in "+-*":
            items += [int(num), ch]
            num = ""
        else:
            raise ValueError(f"not a task prompt: {prompt!r}")
    items.append(int(num))
    return items


def task_dataset(split: str, n: int, seed: int = 0,
                 spec: TaskSpec = DEFAULT_SPEC):
    """The task as a ``datasets.Dataset`` with ``prompt`` and ``answer``."""
    return Dataset.from_list(make_problems(n, split, seed, spec))
