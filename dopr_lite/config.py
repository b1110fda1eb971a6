"""One configuration dataclass, with named presets.

Defaults follow TRL's ``GRPOConfig`` and the papers cited per field, scaled
down where the embedded tiny model needs it.  ``DoprConfig.tiny()`` is the
CPU/CI preset; ``DoprConfig.consumer_gpu()`` is a real model on one card.
Every run writes its config as JSON next to its results.
"""

from __future__ import annotations

import importlib.util
import json
import os
import sys
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

LOSS_TYPES = ("grpo", "dr_grpo", "dapo")
SCALE_REWARDS = ("group", "batch", "none")
DTYPES = ("float32", "bfloat16", "float16")
BAD_ROWS = ("error", "skip")
_TYPES = {"int": int, "float": (int, float), "str": str, "bool": bool,
          "dict": dict}


def _installed(module: str) -> bool:
    if module in sys.modules:  # None there means "import blocked"
        return sys.modules[module] is not None
    return importlib.util.find_spec(module) is not None


class ConfigError(ValueError):
    """A config field has an impossible value; the message names the fix."""


@dataclass
class DoprConfig:
    # --- Model --------------------------------------------------------------
    model: str = "embedded:tiny"  # "embedded:tiny", a local dir or a hub id
    tokenizer: str = ""  # tokenizer source if not the model's (same forms)
    device: str = "auto"  # "auto" picks cuda > mps > cpu; never overridden
    dtype: str = "float32"  # weights dtype: float32 | bfloat16 | float16
    load_in_4bit: bool = False  # NF4 via bitsandbytes (QLoRA, Dettmers 2023)
    bnb_double_quant: bool = True  # QLoRA's double quantisation
    bnb_compute_dtype: str = "bfloat16"  # compute dtype of 4-bit matmuls
    use_lora: bool = True  # LoRA adapters (Hu et al. 2021); else full FT
    lora_r: int = 16  # LoRA rank
    lora_alpha: int = 32  # LoRA scale numerator (alpha / r)
    lora_dropout: float = 0.0  # TRL/one-shot RLVR use no dropout for RL
    lora_target: str = "all-linear"  # peft target modules, or comma list
    gradient_checkpointing: bool = False  # trade compute for memory
    trust_remote_code: bool = False  # only if you trust the hub repo

    # --- Data ---------------------------------------------------------------
    dataset: str = "embedded"  # "embedded", "gsm8k", "math500" or a file
    n_train: int = 256  # RL prompt pool size (one-shot RLVR: 1 to 1.2k)
    n_test: int = 300  # held-out prompts for evaluation
    data_seed: int = 0  # seed of the synthetic task's problem draw
    reward: str = "exact"  # "exact", "math_verify" (+ ",format")
    bad_rows: str = "error"  # a bad data row: "error", or "skip" (counted
    #                          and reported, never scored)
    label_noise: float = 0.0  # share of RL pool rows given another row's
    #                          gold answer: a controlled test, unsolvable
    #                          prompts (the held-out split stays clean)

    # --- Rollouts -----------------------------------------------------------
    num_generations: int = 8  # G, rollouts per prompt (TRL default 8)
    max_new_tokens: int = 48  # completion length cap
    temperature: float = 1.0  # sampling temperature (TRL default 1.0)
    top_p: float = 1.0  # nucleus sampling
    top_k: int = 0  # 0 disables top-k

    # --- GRPO update --------------------------------------------------------
    learning_rate: float = 2e-3  # tiny LoRA; TRL's default is 1e-6 (full FT)
    loss_type: str = "dr_grpo"  # grpo | dr_grpo (Liu 2025) | dapo (Yu 2025)
    scale_rewards: str = "group"  # std-scale advantages; "none" = Dr. GRPO
    epsilon: float = 0.2  # PPO clip range (Schulman 2017)
    epsilon_high: float = 0.28  # DAPO's clip-higher (Yu et al. 2025)
    beta: float = 0.0  # KL weight; 0 as in DAPO/Dr. GRPO; >0 uses the
    #                    adapter-disabled model as reference
    entropy_coef: float = 0.0  # entropy bonus (one-shot RLVR uses -0.001
    #                            as a loss, i.e. a bonus of 0.001)
    max_grad_norm: float = 1.0  # gradient clipping
    micro_batch: int = 64  # sequences per forward/backward (memory bound)
    num_iterations: int = 1  # updates per batch of rollouts (GRPO's mu)
    weight_decay: float = 0.0

    # --- Loop ---------------------------------------------------------------
    selector: str = "full"  # which prompts of a batch get rollouts:
    #                         full | random | fixed | dynamic | thompson |
    #                         dopr (see dopr_lite.select)
    selector_args: dict = field(default_factory=dict)  # e.g. {"c": 0.5}
    prompts_per_step: int = 8  # candidate prompts drawn per step
    max_steps: int = 0  # stop after this many steps (0: no limit)
    max_rollouts: int = 0  # stop once this many rollouts are spent (0: no)
    eval_every: int = 5  # evaluate every N steps (and at start and end)
    eval_k: int = 4  # sampled pass@k on the held-out split (0: greedy only)
    eval_batch: int = 300  # prompts per evaluation generate call
    save_every: int = 10  # checkpoint every N steps (0: only at the end)
    seed: int = 0  # training seed (sampling, batches)
    out_dir: str = "runs/default"  # metrics, config, figure, checkpoints

    extra: dict = field(default_factory=dict)  # free-form notes

    # --- presets ------------------------------------------------------------
    @classmethod
    def tiny(cls, **overrides) -> "DoprConfig":
        """The embedded tiny model and task: minutes on a laptop CPU."""
        return cls(**overrides)

    @classmethod
    def consumer_gpu(cls, **overrides) -> "DoprConfig":
        """Qwen2.5-Math-1.5B, QLoRA, on one 8-24 GB card (MATH-style)."""
        base = dict(
            model="Qwen/Qwen2.5-Math-1.5B", dtype="bfloat16",
            load_in_4bit=True, lora_r=32, lora_alpha=64,
            gradient_checkpointing=True, dataset="gsm8k",
            reward="math_verify", bad_rows="skip", max_new_tokens=768,
            learning_rate=1e-5,
            micro_batch=4, prompts_per_step=8, n_test=500, eval_batch=32,
            eval_every=10, save_every=10)
        base.update(overrides)
        return cls(**base)

    # --- validation and I/O -------------------------------------------------
    def __post_init__(self):
        self.validate()

    def validate(self) -> None:
        def bad(name, why):
            raise ConfigError(f"config field {name!r}: {why}")

        for f in fields(self):  # types first: a "8" from JSON is no int
            value, want = getattr(self, f.name), _TYPES[f.type]
            if not isinstance(value, want) or (
                    isinstance(value, bool) and f.type != "bool"):
                bad(f.name, f"expected {f.type}, got {value!r}")
        if self.num_generations < 2:
            bad("num_generations", "GRPO needs G >= 2 rollouts per prompt "
                "to compare them (got %d)" % self.num_generations)
        if self.loss_type not in LOSS_TYPES:
            bad("loss_type", f"use one of {LOSS_TYPES}")
        if self.scale_rewards not in SCALE_REWARDS:
            bad("scale_rewards", f"use one of {SCALE_REWARDS}")
        for name in ("max_steps", "max_rollouts", "beta", "entropy_coef",
                     "n_train", "n_test", "eval_k", "save_every"):
            if getattr(self, name) < 0:
                bad(name, "must be >= 0")
        for name in ("prompts_per_step", "micro_batch", "max_new_tokens",
                     "num_iterations", "eval_every", "eval_batch",
                     "lora_r"):
            if getattr(self, name) < 1:
                bad(name, "must be >= 1")
        if not 0 < self.temperature:
            bad("temperature", "must be > 0 for sampled rollouts")
        if not 0 < self.top_p <= 1:
            bad("top_p", "must be in (0, 1]")
        for name in ("max_grad_norm", "lora_alpha"):
            if not getattr(self, name) > 0:
                bad(name, "must be > 0")
        if not self.learning_rate >= 0:  # 0: a control that cannot learn
            bad("learning_rate", "must be >= 0")
        if not 0 <= self.lora_dropout < 1:
            bad("lora_dropout", "must be in [0, 1)")
        if not 0 <= self.label_noise <= 1:
            bad("label_noise", "must be in [0, 1]")
        if self.epsilon < 0 or self.epsilon_high < 0 or self.top_k < 0:
            bad("epsilon" if self.epsilon < 0 else "epsilon_high"
                if self.epsilon_high < 0 else "top_k", "must be >= 0")
        for name in ("dtype", "bnb_compute_dtype"):
            if getattr(self, name) not in DTYPES:
                bad(name, f"use one of {DTYPES}")
        if self.bad_rows not in BAD_ROWS:
            bad("bad_rows", f"use one of {BAD_ROWS}")
        if self.load_in_4bit and not self.use_lora:
            bad("load_in_4bit", "4-bit weights cannot be trained directly; "
                "set use_lora=True (QLoRA)")
        if self.load_in_4bit and not _installed("bitsandbytes"):
            bad("load_in_4bit", "4-bit loading needs bitsandbytes, which is "
                "not installed; `pip install bitsandbytes` or set "
                "load_in_4bit=False")
        # names resolve now, not at step 1 of a long run
        from dopr_lite.rewards import get_reward
        from dopr_lite.select import make_selector

        get_reward(self.reward)
        make_selector(self.selector, **self.selector_args)

    def to_dict(self) -> dict:
        return asdict(self)

    def save(self, path: Path) -> None:
        """Write the config as JSON, atomically (temp file + rename)."""
        path = Path(path)
        tmp = path.with_name(f".{path.name}.tmp")
        tmp.write_text(json.dumps(self.to_dict(), indent=1) + "\n")
        os.replace(tmp, path)

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
