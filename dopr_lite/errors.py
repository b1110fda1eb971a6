"""The errors a user can act on: each message names the problem and the fix.

A leaf module (it imports nothing from dopr_lite), so every layer can raise
them.  The command line prints these as one line, without a traceback
(:data:`USER_ERRORS`); anything else is a bug and keeps its traceback.
"""

from __future__ import annotations


class ConfigError(ValueError):
    """A config field has an impossible value; the message names the fix."""


class DataError(ValueError):
    """A data file or row is unusable; the message names file/row/field."""


class PolicyLoadError(RuntimeError):
    """The model could not be loaded; the message says how to fix it."""


class CheckpointError(RuntimeError):
    """A checkpoint is incomplete or corrupt; it is reported, not loaded."""


class NonFiniteError(RuntimeError):
    """The policy keeps producing NaN/inf; the message names the knobs."""


class NonFiniteLogits(RuntimeError):
    """The policy's logits held NaN/inf while generating: one step's worth.

    Raised by :func:`dopr_lite.rollout.generate_rollouts`; the loop skips
    the step and gives up (:class:`NonFiniteError`) if it keeps happening.
    """


class OutOfMemory(RuntimeError):
    """The device ran out of memory; the message names the knobs to turn."""


USER_ERRORS = (ConfigError, DataError, PolicyLoadError, CheckpointError,
               NonFiniteError, OutOfMemory)
