"""What a training step's ``metrics.jsonl`` row holds, for those who read it.

:func:`dopr_lite.loop.train_step` writes the row; the step-time model
(:mod:`dopr_lite.steplog`) reads it back.  Both take these names from here,
the lowest module they share, so the reader needs nothing of the training
stack.  Old logs parse as long as the values here stay as they are.
"""

from __future__ import annotations

ALL_EQUAL = "all groups have zero reward variance"  # a row's ``skipped``
#   for the routine skip: no group had a signal, nothing back-propagated
ROW_KEYS = ("gen_calls", "entropy_rows", "update_rows",
            "update_prompt_width", "update_completion_width", "skipped")
#   what the step ran, as the step-time model reads it (logged since the
#   step-time model; older rows lack them)
