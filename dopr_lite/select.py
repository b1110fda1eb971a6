"""Selection rules: which prompts of a candidate batch get rollouts.

Each step the training loop draws a candidate batch of prompt indices and
asks its :class:`Selector` which of them to roll out.  The selector sees the
per-prompt :class:`PromptHistory` (reward counts, recent rewards, the step
each prompt was last seen) and is told the rewards its choice caused.  Its
state goes into checkpoints through ``state_dict``/``load_state_dict``.

A selector that needs *probe* rollouts to decide calls ``ctx.probe``, which
generates and scores them and charges them to the ``probe`` rollout count.

Only :class:`FullBatch` (standard GRPO: every candidate) lives here so far;
the DoPR rule and its baselines implement the same interface.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from typing import Callable

import torch


@dataclass
class PromptHistory:
    """What the run has seen of each prompt: counts and recent rewards."""

    window: int = 32  # recent rewards kept per prompt
    visits: dict = field(default_factory=dict)  # prompt -> times rolled out
    successes: dict = field(default_factory=dict)  # prompt -> sum rewards
    trials: dict = field(default_factory=dict)  # prompt -> rollouts
    recent: dict = field(default_factory=dict)  # prompt -> deque[float]
    last_step: dict = field(default_factory=dict)  # prompt -> step

    def record(self, prompt: int, rewards, step: int) -> None:
        rewards = [float(r) for r in rewards]
        self.visits[prompt] = self.visits.get(prompt, 0) + 1
        self.successes[prompt] = self.successes.get(prompt, 0.0) + sum(
            rewards)
        self.trials[prompt] = self.trials.get(prompt, 0) + len(rewards)
        q = self.recent.setdefault(prompt, deque(maxlen=self.window))
        q.extend(rewards)
        self.last_step[prompt] = step

    def success_rate(self, prompt: int) -> float | None:
        n = self.trials.get(prompt, 0)
        return self.successes[prompt] / n if n else None

    def state_dict(self) -> dict:
        return {"window": self.window,
                "visits": dict(self.visits),
                "successes": dict(self.successes),
                "trials": dict(self.trials),
                "recent": {k: list(v) for k, v in self.recent.items()},
                "last_step": dict(self.last_step)}

    def load_state_dict(self, state: dict) -> None:
        def keys_int(d):
            return {int(k): v for k, v in d.items()}

        self.window = int(state["window"])
        self.visits = keys_int(state["visits"])
        self.successes = keys_int(state["successes"])
        self.trials = keys_int(state["trials"])
        self.recent = {int(k): deque(v, maxlen=self.window)
                       for k, v in state["recent"].items()}
        self.last_step = keys_int(state["last_step"])


@dataclass
class SelectContext:
    """What a selector may look at when it decides."""

    step: int
    history: PromptHistory
    # probe(prompt_indices, n) -> rewards tensor (len(indices), n); charged
    # to the "probe" rollout count.
    probe: Callable[[list[int], int], torch.Tensor] | None = None


class Selector:
    """Base class: pick prompts from a candidate batch; learn from rewards."""

    name = "selector"

    def select(self, candidates: list[int], ctx: SelectContext) -> list[int]:
        raise NotImplementedError

    def update(self, prompts: list[int], rewards: torch.Tensor,
               ctx: SelectContext) -> None:
        """Called with the (len(prompts), G) rewards the choice caused."""

    def state_dict(self) -> dict:
        return {}

    def load_state_dict(self, state: dict) -> None:
        pass


class FullBatch(Selector):
    """Standard GRPO: every candidate gets G rollouts."""

    name = "full"

    def select(self, candidates, ctx):
        return list(candidates)


SELECTORS: dict[str, type[Selector]] = {"full": FullBatch}


def make_selector(name: str, **kwargs) -> Selector:
    """A selector by its config name; unknown names list the choices."""
    if name not in SELECTORS:
        from dopr_lite.config import ConfigError

        raise ConfigError(f"config field 'selector': unknown selector "
                          f"{name!r}; choose one of {sorted(SELECTORS)}")
    return SELECTORS[name](**kwargs)
