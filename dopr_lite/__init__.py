"""dopr_lite: Dynamic One-Shot Policy Refinement for RLVR, small and honest.

The public API is ``import dopr_lite`` (listed in ``__all__``, loaded on
first use, so that importing the package stays cheap)::

    import dopr_lite as dl

    cfg = dl.DoprConfig.tiny(max_rollouts=48, out_dir="runs/mine")
    result = dl.train(cfg)                 # DoPR on the embedded task
    dl.plot_runs({"dopr": result})

Layers, each importing only from layers above it (a test walks the
imports and fails on a cycle or an upward import):

1. ``errors``, ``faults``, ``files`` (atomic writes), ``bound``,
   ``curves`` (what an accuracy curve says), ``steprow`` (what a step's
   metrics row holds): leaves;
2. ``task`` (the synthetic task), ``sandbox`` -> ``rewards``, ``select``
   (selection rules: ``base`` -> ``baselines``, ``posterior`` ->
   ``dopr``): pure functions of text, numbers and tensors;
3. ``config`` (checks reward and selector names against 2);
4. ``env``, ``tiny`` (the embedded model), ``archs`` (architectures and
   their dimensions) -> ``steptime`` (a step's estimated seconds on a GPU,
   from what it runs: arithmetic) -> ``cpufit`` (a CPU fitted as a card),
   ``steplog`` (logged steps as workloads) -> ``ruletime`` (a rule's
   typical step and its estimated time);
5. ``data``, ``policy`` -> ``inputs`` (both, loaded fail-fast) ->
   ``rollout`` -> ``grpo`` -> ``groups`` (what a step generated),
   ``evaluation`` -> ``preflight`` (measure a
   prompt pool before training on it);
6. ``checkpoint``, ``runlog``, ``guards``: what a run keeps and guards;
7. ``loop`` (``train``, ``train_step``) -> ``compare`` -> ``savings``
   (rollouts and estimated hours to a target) -> ``plots`` -> ``cli``;
   ``integrations.trl`` (the rules inside TRL).
"""

from __future__ import annotations

import importlib
import logging

__version__ = "0.1.0"

# bitsandbytes (which peft imports) warns on CPUs with AVX512-BF16 that an
# optional kernel package is missing; its own fallback is what runs here
logging.getLogger("bitsandbytes.backends.cpu.ops").setLevel(logging.ERROR)
# kernels (transformers' hub-kernel layers) warns on every model load that
# offline mode skips a trust check for a kernel we never fetch
logging.getLogger("kernels._internals.hf_hub").setLevel(logging.ERROR)

_API = {
    "dopr_lite.config": ["DoprConfig", "PRESETS"],
    "dopr_lite.errors": ["ConfigError", "DataError", "PolicyLoadError",
                         "CheckpointError", "NonFiniteError",
                         "OutOfMemory"],
    "dopr_lite.env": ["set_seed", "preset_config", "versions"],
    "dopr_lite.task": ["task_dataset"],
    "dopr_lite.data": ["PromptData", "load_prompts"],
    "dopr_lite.policy": ["Policy", "load_policy", "load_tokenizer"],
    "dopr_lite.rollout": ["RolloutCounter", "Rollouts", "generate_rollouts",
                          "prompt_entropy"],
    "dopr_lite.rewards": ["get_reward", "exact_answer_reward",
                          "math_verify_reward", "format_reward"],
    "dopr_lite.grpo": ["group_advantages", "grpo_loss", "grpo_update",
                       "zero_std_fraction"],
    "dopr_lite.select": ["SELECTORS", "Selector", "SelectContext", "Shape",
                         "PromptHistory", "DoPR", "DoPRv1", "make_selector",
                         "candidate_batch"],
    "dopr_lite.bound": ["informative_prob", "groups_to_signal",
                        "rollouts_to_detect", "instances_to_find"],
    "dopr_lite.evaluation": ["evaluate", "pass_at_k"],
    "dopr_lite.preflight": ["preflight", "PoolReport"],
    "dopr_lite.loop": ["Run", "train", "train_step", "sample_groups"],
    "dopr_lite.runlog": ["RunResult", "summary_table", "curves"],
    "dopr_lite.compare": ["Rule", "run_rules", "comparison",
                          "format_table"],
    "dopr_lite.plots": ["plot_runs", "plot_comparison", "plot_preflight",
                        "plot_saving", "save_figure"],
}
_HOME = {name: module for module, names in _API.items() for name in names}
__all__ = ["__version__", *_HOME]


def __getattr__(name: str):
    if name not in _HOME:
        raise AttributeError(f"module 'dopr_lite' has no attribute {name!r}")
    value = getattr(importlib.import_module(_HOME[name]), name)
    globals()[name] = value  # the next access skips this function
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
