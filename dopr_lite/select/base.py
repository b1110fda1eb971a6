"""The selection interface: the candidate stream, what a rule may look at
(:class:`SelectContext`), what it does with a batch (:class:`Shape`), the
:class:`Selector` base and :func:`feedback`, the one way rewards reach a
rule (both engines, the loop and TRL, call it)."""

from __future__ import annotations

import inspect
import random
from dataclasses import dataclass, field
from typing import Callable

import torch

DRAW_SEED_STRIDE = 7_919  # seed offset of a step's 2nd, 3rd... candidate draw


def candidate_batch(step: int, pool: int, size: int, seed: int) -> list[int]:
    """Prompt indices for ``step``: epoch-wise permutations of the pool.

    A pure function of its arguments, so a resumed run (or another engine,
    TRL) draws the same candidates.  A pool smaller than ``size`` repeats
    within a batch, as one-shot RLVR duplicates its single example to fill
    the batch (Wang et al. 2025).
    """
    out, start, perms = [], step * size, {}
    for q in range(start, start + size):
        epoch, pos = divmod(q, pool)
        if epoch not in perms:  # one shuffle per epoch the batch meets
            perms[epoch] = list(range(pool))
            random.Random(f"{seed}:epoch:{epoch}").shuffle(perms[epoch])
        out.append(perms[epoch][pos])
    return out


@dataclass
class PromptHistory:
    """How often each prompt was rolled out for training (``n_i`` of the
    exploration bonus); kept by the loop, saved in its checkpoints."""

    visits: dict = field(default_factory=dict)  # prompt -> groups rolled out

    def record(self, prompts: list[int]) -> None:
        for i in prompts:
            self.visits[i] = self.visits.get(i, 0) + 1

    def state_dict(self) -> dict:
        return {"visits": dict(self.visits)}

    def load_state_dict(self, state: dict) -> None:
        self.visits = {int(k): v for k, v in state["visits"].items()}


@dataclass
class SelectContext:
    """What a selector may look at when it decides."""

    step: int
    history: PromptHistory
    num_generations: int = 8  # G, rollouts each picked prompt will get
    seed: int = 0  # the run's seed (for seeded tie-breaks and sampling)
    # probe_rewards(indices, n) -> (len(indices), n) rewards of n new
    # rollouts of each prompt, charged as "probe"
    probe_rewards: Callable[[list[int], int], torch.Tensor] | None = None
    # entropy(indices) -> (len(indices),) policy entropy (nats) of the first
    # completion token; a forward pass over the prompts, no rollouts
    entropy: Callable[[list[int]], torch.Tensor] | None = None

    def rng(self, salt: str = "") -> random.Random:
        """A generator that depends only on (seed, step, salt): resumable."""
        return random.Random(f"{self.seed}:{self.step}:{salt}")


@dataclass(frozen=True)
class Shape:
    """What a rule does with a step's candidate batch.

    Declared by each selector and asked by everyone who must know: the loop
    (refills), the TRL integration (can the rule run there), benchmark
    budgets and out-of-memory advice.
    """

    picks: int | None  # prompts rolled out per step; None: every candidate
    probes: bool = False  # spends probe rollouts (before it picks, or on
    #                       the next step's candidates in this step's call)
    draws: int = 1  # >1: drops all-equal groups and refills from up to
    #                 this many candidate batches (DAPO's dynamic sampling)
    entropy: bool = False  # may prefill candidates for the policy's
    #                        entropy (a forward pass, no rollouts)
    probe_rollouts: int = 0  # rollouts per probed prompt, every step
    probe_top: int = 0  # prompts probed a step (0: every new candidate)
    probe_ahead: bool = False  # probes ride in the previous step's call

    def probe_rows(self, batch: int) -> int:
        """Probe rollouts a step while every candidate of a ``batch`` is
        new (a fresh pool): what the step-time model charges."""
        return self.probe_rollouts * (self.probe_top or batch)

    @property
    def own_probe_call(self) -> bool:
        """The probes run in a ``generate`` call of their own."""
        return self.probe_rollouts > 0 and not self.probe_ahead

    @property
    def trains_all_it_generates(self) -> bool:
        """Every rollout feeds the update: what TRL's trainer can run."""
        return not self.probes and self.draws == 1


class Selector:
    """Base class: pick prompts from a candidate batch; learn from rewards."""

    name = "selector"
    # the arguments that make this rule spend no probe rollouts (TRL's
    # trainer trains on all it generates); empty: the rule cannot
    PROBE_FREE: dict = {}

    @property
    def shape(self) -> Shape:
        return Shape(picks=None)

    COUNTS: tuple = ()  # integer arguments that must be >= 1

    @classmethod
    def check_args(cls, **kwargs) -> None:
        """Raise TypeError/ValueError where ``cls(**kwargs)`` would be
        refused, without building anything (config validation uses it):
        the arguments must fit the rule's signature and
        :meth:`check_values`."""
        inspect.signature(cls).bind(**kwargs)
        cls.check_values(**kwargs)

    @classmethod
    def check_values(cls, **kwargs) -> None:
        """Raise ValueError for an argument value the rule refuses (its
        ``__init__`` calls this, so a subclass with a signature of its own
        still builds)."""
        for name in cls.COUNTS:
            if kwargs.get(name, 1) < 1:
                raise ValueError(f"{name} must be >= 1, got {kwargs[name]}")

    def select(self, candidates: list[int], ctx: SelectContext) -> list[int]:
        raise NotImplementedError

    def update(self, prompts: list[int], rewards: torch.Tensor,
               ctx: SelectContext) -> None:
        """Called with the (len(prompts), G) rewards the choice caused."""

    def probes_ahead(self, candidates: list[int],
                     ctx: SelectContext) -> tuple[list[int], int]:
        """Which of the NEXT step's ``candidates`` to probe, and with how
        many rollouts each, inside this step's ``generate`` call (so probing
        costs no call of its own); their rewards come back through
        :meth:`observe_probes`.  Default: none."""
        return [], 0

    def observe_probes(self, prompts: list[int], rewards: torch.Tensor,
                       ctx: SelectContext) -> None:
        """Called with the (len(prompts), n) rewards of
        :meth:`probes_ahead`'s probes, at the step that generated them."""

    def warm_start(self, counts: dict) -> None:
        """Start from a pre-flight's success counts; only a
        :class:`BayesianSelector` keeps per-prompt rates to start from."""
        raise ValueError(f"{self.name!r} keeps no per-prompt success rates "
                         "to start from")

    def state_dict(self) -> dict:
        return {}

    def load_state_dict(self, state: dict) -> None:
        pass


def feedback(selector: Selector, prompts: list[int], rewards: torch.Tensor,
             ctx: SelectContext) -> None:
    """Tell the run what a step's groups got: count each prompt's visit in
    ``ctx.history``, then update the rule with the (prompts, G) rewards.
    Both engines (the loop and TRL) call this, and only this."""
    ctx.history.record(prompts)
    selector.update(prompts, rewards, ctx)
