"""One configuration dataclass, and the named presets built from it.

Every field carries a one-line help in ``field(metadata={"help": ...})``
(TRL's convention), which ``dopr-lite config`` prints; defaults follow TRL's
``GRPOConfig`` and the papers cited per field, scaled down where the
embedded tiny model needs it.  A bare ``DoprConfig()`` is full-batch GRPO
on the embedded model with no budget; a *preset* is a complete run:

* ``DoprConfig.tiny()``: DoPR on the embedded model and task, 512 rollouts
  (the main job; minutes on a laptop CPU);
* ``DoprConfig.consumer_gpu()``: DoPR on Qwen2.5-Math-1.5B in 4-bit with
  LoRA, on one 8-24 GB card.

``DoprConfig(...)`` checks every field when it is built (types, read from
the annotations by :func:`field_types`; ranges; the names of the reward and
the selector and its arguments; a step that fits the pool and the budget)
and loads nothing.
Every run writes its config as JSON next to its results.
"""

from __future__ import annotations

import functools
import importlib.util
import json
import operator
import sys
import types
import typing
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

from dopr_lite.errors import ConfigError
from dopr_lite.files import write_atomic
from dopr_lite.rewards import REWARDS, reward_names
from dopr_lite.select import (SELECTORS, can_warm_start, check_selector,
                              make_selector)
from dopr_lite.task import DEFAULT_MIX, FAMILIES, MixError, TaskMix

LOSS_TYPES = ("grpo", "dr_grpo", "dapo")
SCALE_REWARDS = ("group", "batch", "none")
DTYPES = ("float32", "bfloat16", "float16")
BAD_ROWS = ("error", "skip")
SEED_BOUND = 2**62  # torch takes 64-bit seeds; offsets are added to ours
TRUE, FALSE = ("true", "1"), ("false", "0")  # bools on the command line
NONE = ("none", "null")  # an optional field's None on the command line


@dataclass(frozen=True)
class FieldType:
    """A config field's type as its annotation declares it: ``base`` (int,
    float, bool, str or dict) and whether None is allowed (``int | None``).
    One table of these (:func:`field_types`) serves both validation and
    the command line's ``--set FIELD=VALUE``."""

    base: type
    optional: bool = False

    def __str__(self) -> str:
        return self.base.__name__ + (" | None" if self.optional else "")

    @property
    def expects(self) -> str:
        """What command-line text this type takes, for messages."""
        text = {bool: "true or false", dict: "a JSON object"}.get(
            self.base, self.base.__name__)
        return text + (" or none" if self.optional else "")

    def accepts(self, value) -> bool:
        """Whether ``value`` has this type (a bool is no int; an int is a
        float)."""
        if value is None:
            return self.optional
        if isinstance(value, bool):
            return self.base is bool
        if self.base is float:
            return isinstance(value, (int, float))
        return isinstance(value, self.base)

    def parse(self, raw: str):
        """Command-line text as a value of this type; ValueError if it is
        none (dicts are JSON, bools true/false/1/0, None none/null)."""
        word = raw.strip().lower()
        if self.optional and word in NONE:
            return None
        if self.base is bool:
            if word not in TRUE + FALSE:
                raise ValueError(f"expected one of {TRUE + FALSE}")
            return word in TRUE
        if self.base is dict:
            return json.loads(raw)
        return self.base(raw)


def check_seed(seed: int, name: str = "config field 'seed'") -> None:
    """Refuse a seed torch cannot take (it takes 64-bit integers, and
    offsets are added to ours); ``name`` is what the message calls it."""
    if not -SEED_BOUND < seed < SEED_BOUND:
        raise ConfigError(f"{name}: must be between -2**62 and 2**62 (torch "
                          f"seeds are 64-bit integers), got {seed}")


@functools.cache
def field_types(cls=None) -> dict[str, FieldType]:
    """Each field of ``cls`` (default :class:`DoprConfig`) with its
    :class:`FieldType`, read from the dataclass's annotations."""
    cls = cls or DoprConfig
    hints = typing.get_type_hints(cls)
    out = {}
    for f in fields(cls):
        hint, optional = hints[f.name], False
        if typing.get_origin(hint) in (typing.Union, types.UnionType):
            args = [a for a in typing.get_args(hint) if a is not type(None)]
            if len(args) != 1:
                raise TypeError(f"config field {f.name!r}: one type or one "
                                f"type | None, not {hint}")
            hint, optional = args[0], True
        out[f.name] = FieldType(typing.get_origin(hint) or hint, optional)
    return out


def _installed(module: str) -> bool:
    if module in sys.modules:  # None there means "import blocked"
        return sys.modules[module] is not None
    return importlib.util.find_spec(module) is not None


# a knob's bound -> (its word in messages, its bracket in an interval, test)
BOUNDS = {"ge": (">=", "[", operator.ge), "gt": (">", "(", operator.gt),
          "le": ("<=", "]", operator.le), "lt": ("<", ")", operator.lt)}


def knob(default, help: str, *, ge=None, gt=None, le=None, lt=None,
         choices: tuple = (), why: str = ""):
    """A config field with its one-line help and the values it takes, kept
    in the field's metadata for :meth:`DoprConfig.validate`: bounds ``ge``
    (>=), ``gt`` (>), ``le`` (<=) and ``lt`` (<), or ``choices``; ``why``
    is said when a value is refused."""
    bounds = {name: v for name, v in zip(BOUNDS, (ge, gt, le, lt),
                                         strict=True) if v is not None}
    meta = {"help": help, "bounds": bounds, "choices": tuple(choices),
            "why": why}
    if isinstance(default, dict):
        return field(default_factory=lambda: dict(default), metadata=meta)
    return field(default=default, metadata=meta)


def knob_problem(meta, value) -> str | None:
    """Why ``value`` is outside the bounds or choices a field's
    :func:`knob` declares, as the fix (``must be in (0, 1]``); None if it
    is inside (NaN is outside every bound)."""
    choices, bounds = meta.get("choices"), meta.get("bounds", {})
    if value is None:  # an optional field's None (its type allows it)
        return None
    if choices:
        return None if value in choices else (f"got {value!r}; use one of "
                                              f"{choices}")
    if all(BOUNDS[name][2](value, v) for name, v in bounds.items()):
        return None
    if len(bounds) == 2:  # one lower and one upper bound: an interval
        (low, a), (high, b) = bounds.items()
        rule = f"in {BOUNDS[low][1]}{a}, {b}{BOUNDS[high][1]}"
    else:
        ((name, v),) = bounds.items()
        rule = f"{BOUNDS[name][0]} {v}"
    why = f" ({meta['why']})" if meta.get("why") else ""
    return f"must be {rule}{why}, got {value!r}"


@dataclass
class DoprConfig:
    # --- Model --------------------------------------------------------------
    model: str = knob("embedded:tiny", "'embedded:tiny', a local model "
                      "directory or a Hugging Face hub id")
    tokenizer: str = knob("", "tokenizer source if not the model's "
                          "(same forms)")
    device: str = knob("auto", "'auto' picks cuda > mps > cpu; an explicit "
                       "device is honoured or refused, never replaced")
    dtype: str = knob("float32", f"weights dtype: {' | '.join(DTYPES)}",
                      choices=DTYPES)
    load_in_4bit: bool = knob(False, "NF4 weights via bitsandbytes (QLoRA, "
                              "Dettmers et al. 2023); needs use_lora")
    bnb_double_quant: bool = knob(True, "QLoRA's double quantisation of "
                                  "the 4-bit scales")
    bnb_compute_dtype: str = knob("bfloat16", "compute dtype of the 4-bit "
                                  "matmuls", choices=DTYPES)
    use_lora: bool = knob(True, "train LoRA adapters (Hu et al. 2021); "
                          "false: full fine-tuning")
    lora_r: int = knob(16, "LoRA rank", ge=1)
    lora_alpha: int = knob(32, "LoRA scale numerator (the scale is "
                           "alpha / r)", gt=0)
    lora_dropout: float = knob(0.0, "LoRA dropout (TRL and one-shot RLVR "
                               "use none for RL)", ge=0, lt=1)
    lora_target: str = knob("all-linear", "peft target modules: "
                            "'all-linear' or a comma list of names")
    gradient_checkpointing: bool = knob(False, "recompute activations in "
                                        "the update: less memory, more "
                                        "compute")
    trust_remote_code: bool = knob(False, "run the model repo's own Python "
                                   "code; only for repos you trust")

    # --- Data ---------------------------------------------------------------
    dataset: str = knob("embedded", "'embedded', 'gsm8k', 'math500', or a "
                        ".jsonl/.parquet file")
    task_families: dict = knob(
        dict.fromkeys(FAMILIES, 1.0), "embedded task: relative weights of "
        f"its skills {list(FAMILIES)} in the RL pool and held-out split")
    task_easy: float = knob(DEFAULT_MIX.easy, "embedded task: share of "
                            "trivial prompts (solved almost always); "
                            "calibrated, dopr_lite.task")
    task_hard: float = knob(DEFAULT_MIX.hard, "embedded task: share of "
                            "prompts beyond the embedded model (4-digit "
                            "arithmetic); calibrated, dopr_lite.task")
    n_train: int = knob(256, "RL prompt pool size (one-shot RLVR trains on "
                        "1 to 1.2k prompts)", ge=0)
    n_test: int = knob(300, "held-out prompts for evaluation", ge=1,
                       why="evaluation scores the policy on that many "
                       "held-out prompts")
    data_seed: int = knob(0, "seed of the synthetic task's problem draw")
    reward: str = knob("exact", ", ".join(map(repr, list(REWARDS)[:-1]))
                       + f" or {list(REWARDS)[-1]!r}, or a comma list "
                       "summed (e.g. 'math_verify,format')")
    bad_rows: str = knob("error", "a bad data row: 'error' stops, 'skip' "
                         "skips it (counted and reported, never scored)",
                         choices=BAD_ROWS)
    label_noise: float = knob(0.0, "share of RL-pool rows given another "
                              "row's gold answer: unsolvable prompts, a "
                              "controlled test (held-out split stays clean)",
                              ge=0, le=1)

    # --- Rollouts -----------------------------------------------------------
    num_generations: int = knob(8, "G, rollouts per prompt (TRL's "
                                "default 8)", ge=2, why="GRPO needs G >= 2 "
                                "rollouts per prompt to compare them")
    max_new_tokens: int = knob(48, "completion length cap, in tokens", ge=1)
    temperature: float = knob(1.0, "sampling temperature (TRL's default "
                              "1.0)", gt=0, why="for sampled rollouts")
    top_p: float = knob(1.0, "nucleus sampling: keep the smallest token "
                        "set with this much probability", gt=0, le=1)
    top_k: int = knob(0, "keep the k most likely tokens (0: off)", ge=0)

    # --- GRPO update --------------------------------------------------------
    learning_rate: float = knob(2e-3, "AdamW learning rate, constant; "
                                "sized for the tiny LoRA (TRL's default "
                                "1e-6 is for full fine-tuning)",
                                ge=0)  # 0: a control that cannot learn
    loss_type: str = knob("dr_grpo", "token aggregation: grpo | dr_grpo "
                          "(Liu et al. 2025) | dapo (Yu et al. 2025)",
                          choices=LOSS_TYPES)
    scale_rewards: str = knob("group", "divide advantages by the group's "
                              "std ('group'), the batch's, or not ('none', "
                              "Dr. GRPO)", choices=SCALE_REWARDS)
    epsilon: float = knob(0.2, "PPO clip range, lower side (Schulman et "
                          "al. 2017)", ge=0)
    epsilon_high: float = knob(0.28, "clip range, upper side: DAPO's "
                               "clip-higher (Yu et al. 2025)", ge=0)
    beta: float = knob(0.0, "KL weight; 0 as in DAPO and Dr. GRPO; > 0 "
                       "uses the adapter-disabled model as reference", ge=0)
    entropy_coef: float = knob(0.0, "entropy bonus weight (one-shot RLVR "
                               "uses 0.001)", ge=0)
    max_grad_norm: float = knob(1.0, "gradient clipping norm", gt=0)
    micro_batch: int = knob(64, "sequences per forward/backward pass (bounds "
                            "the update's memory)", ge=1)
    num_iterations: int = knob(1, "updates per batch of rollouts (GRPO's "
                               "mu)", ge=1)
    weight_decay: float = knob(0.0, "AdamW weight decay")

    # --- Loop ---------------------------------------------------------------
    selector: str = knob("full", "which prompts of a candidate batch get "
                         f"rollouts: {' | '.join(SELECTORS)} "
                         "(dopr_lite.select)")
    selector_args: dict = knob({}, "the selector's arguments as JSON, e.g. "
                               "{\"probe\": 0, \"k\": 2} for selector dopr "
                               "(each rule's arguments and defaults: "
                               "`dopr-lite train --help`)")
    preflight: str = knob("", "a pre-flight report (`dopr-lite preflight`) "
                          "whose per-prompt counts start the rule's "
                          "posterior (" + ", ".join(
                              filter(can_warm_start, SELECTORS)) + "); its "
                          "rollouts count in the run's cost")
    prompts_per_step: int = knob(8, "candidate prompts drawn per step "
                                 "(full-batch GRPO trains on all of them)",
                                 ge=1)
    max_steps: int = knob(0, "stop after this many steps (0: no limit)",
                          ge=0)
    max_rollouts: int = knob(0, "stop once this many training rollouts "
                             "(probes included) are spent (0: no limit)",
                             ge=0)
    eval_every: int = knob(5, "evaluate every N steps (and at start and "
                           "end)", ge=1)
    eval_k: int = knob(4, "sampled completions per held-out prompt for "
                       "pass@k (0: greedy accuracy only)", ge=0)
    eval_batch: int = knob(300, "prompts per evaluation generate call",
                           ge=1)
    save_every: int = knob(10, "checkpoint every N steps (0: only at the "
                           "end)", ge=0)
    seed: int = knob(0, "training seed (sampling, candidate draws, LoRA "
                     "init)")
    out_dir: str = knob("runs/default", "folder for config, metrics, "
                        "evaluations and checkpoints")

    extra: dict = knob({}, "free-form notes, saved with the config")

    # --- presets ------------------------------------------------------------
    @classmethod
    def tiny(cls, **overrides) -> "DoprConfig":
        """DoPR on the embedded model and task, 512 rollouts: the main job."""
        base = dict(selector="dopr", max_rollouts=512, eval_every=8,
                    eval_k=0)
        return cls(**{**base, **overrides})

    @classmethod
    def consumer_gpu(cls, **overrides) -> "DoprConfig":
        """DoPR on Qwen2.5-Math-1.5B, 4-bit + LoRA, GSM8K, one 8-24 GB card."""
        base = dict(
            model="Qwen/Qwen2.5-Math-1.5B", dtype="bfloat16",
            load_in_4bit=True, lora_r=32, lora_alpha=64,
            gradient_checkpointing=True, dataset="gsm8k",
            reward="math_verify", bad_rows="skip", max_new_tokens=768,
            learning_rate=1e-5, selector="dopr", max_rollouts=400,
            micro_batch=4, prompts_per_step=8, n_test=200, eval_k=0,
            eval_batch=32, eval_every=10, save_every=10)
        return cls(**{**base, **overrides})

    # --- validation and I/O -------------------------------------------------
    def __post_init__(self):
        self.validate()

    def validate(self) -> None:
        """Raise ConfigError naming the first impossible field and its fix:
        each field's type (its annotation) and the bounds or choices its
        :func:`knob` declares, then what no one field can say alone."""
        def bad(name, why):
            raise ConfigError(f"config field {name!r}: {why}")

        kinds = field_types(type(self))
        for f in fields(self):
            value = getattr(self, f.name)  # types first: "8" from JSON
            if not kinds[f.name].accepts(value):  # is no int
                bad(f.name, f"expected {kinds[f.name]}, got {value!r}")
            if problem := knob_problem(f.metadata, value):
                bad(f.name, problem)
        check_seed(self.seed)
        if self.dataset == "embedded" and self.n_train < 1:
            bad("n_train", "the embedded task needs an RL pool of >= 1 "
                "prompt (0, no limit, is for a data file's rows)")
        if self.n_train and self.prompts_per_step > self.n_train:
            bad("prompts_per_step", f"{self.prompts_per_step} candidates a "
                f"step from a pool of n_train={self.n_train} prompts would "
                "repeat prompts within every step; set prompts_per_step <= "
                f"{self.n_train} or raise n_train")
        if self.load_in_4bit and not self.use_lora:
            bad("load_in_4bit", "4-bit weights cannot be trained directly; "
                "set use_lora=True (QLoRA)")
        if self.load_in_4bit and not _installed("bitsandbytes"):
            bad("load_in_4bit", "4-bit loading needs bitsandbytes, which is "
                "not installed; `pip install bitsandbytes` or set "
                "load_in_4bit=False")
        reward_names(self.reward)  # names resolve now, not at step 1
        check_selector(self.selector, self.selector_args)
        if self.preflight and not can_warm_start(self.selector):
            bad("preflight", f"selector {self.selector!r} keeps no "
                "per-prompt success rates to start from a pre-flight; use "
                "thompson or dopr, or unset preflight")
        self._check_step_fits_budget()
        try:
            self.task_mix()
        except MixError as err:
            bad(f"task_{err.field}", str(err))

    def _check_step_fits_budget(self) -> None:
        """The loop stops at the first step that reaches ``max_rollouts``;
        a budget smaller than one step's rollouts is a mistake (often a
        ``prompts_per_step`` meant for another rule), refused here."""
        picks = make_selector(self.selector, **self.selector_args).shape.picks
        prompts = picks or self.prompts_per_step
        step = prompts * self.num_generations
        if self.max_rollouts and step > self.max_rollouts:
            knobs = ("prompts_per_step or num_generations" if picks is None
                     else "num_generations")
            raise ConfigError(
                f"config field 'max_rollouts': one step of selector "
                f"{self.selector!r} rolls out {prompts} prompt"
                f"{'s' * (prompts > 1)} x G={self.num_generations} = "
                f"{step:,} rollouts, more than the budget of "
                f"{self.max_rollouts:,}; raise max_rollouts to >= {step:,} "
                f"or lower {knobs}")

    def task_mix(self) -> TaskMix:
        """The embedded task's mix these fields ask for."""
        return TaskMix(families=dict(self.task_families),
                       easy=self.task_easy, hard=self.task_hard)

    @staticmethod
    def help(name: str) -> str:
        """The one-line help of field ``name``."""
        return next(f.metadata["help"] for f in fields(DoprConfig)
                    if f.name == name)

    def to_dict(self) -> dict:
        return asdict(self)

    def save(self, path: Path) -> None:
        """Write the config as JSON, atomically (temp file + rename)."""
        write_atomic(path, json.dumps(self.to_dict(), indent=1) + "\n")

    @classmethod
    def load(cls, path: Path) -> "DoprConfig":
        try:
            data = json.loads(Path(path).read_text())
        except ValueError as err:
            raise ConfigError(f"{path}: not a JSON config ({err})") from err
        if not isinstance(data, dict):
            raise ConfigError(f"{path}: expected a JSON object of fields")
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ConfigError(f"{path}: unknown config fields {unknown}")
        return cls(**data)


PRESETS = {"tiny": DoprConfig.tiny, "consumer_gpu": DoprConfig.consumer_gpu}
