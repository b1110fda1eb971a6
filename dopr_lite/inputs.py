"""What a run (or a pre-flight) reads, loaded in the order that fails fast.

:func:`load_inputs` checks the model source, loads the tokenizer and the
prompts (every data row checked), runs the caller's own check on the data
(a pre-flight file against the pool, say), and only then loads the model:
a bad path, row or file fails in seconds, not after the weights load.
"""

from __future__ import annotations

from dopr_lite.config import DoprConfig
from dopr_lite.data import PromptData, load_prompts
from dopr_lite.policy import (Policy, load_policy, load_tokenizer,
                              resolve_source)


def load_inputs(cfg: DoprConfig, *, policy: Policy | None = None,
                data: PromptData | None = None, check=None
                ) -> tuple[Policy, PromptData, object]:
    """``(policy, data, check(data))`` as ``cfg`` names them: model source
    checked, tokenizer and prompts loaded, ``check(data)`` run (None if no
    ``check``), then the model loaded (4-bit and LoRA as ``cfg`` says).  A
    ``policy`` or ``data`` given is used as it is."""
    if policy is None:
        resolve_source(cfg.model)  # a missing model fails first
    data = data or load_prompts(cfg, policy.tokenizer if policy
                                else load_tokenizer(cfg))
    checked = check(data) if check else None
    return policy or load_policy(cfg), data, checked
