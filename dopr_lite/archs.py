"""Real model architectures built from their configs, with random weights.

Memory and speed depend on the shapes, not on the values of the weights, so
a model with Qwen2.5-1.5B's exact architecture and random weights measures
what the real one costs, without a download (the benchmark machines cannot
reach the hub).  ``build(name, folder)`` writes such a model as
safetensors; ``load_policy`` then loads it like any checkpoint (4-bit, LoRA,
checkpointing as configured).  The weights are random, so it produces
gibberish: use it for memory and throughput, never for accuracy.

The shapes are those of the hub configs (``config.json`` of
``Qwen/Qwen2.5-0.5B`` and ``Qwen/Qwen2.5-1.5B``; Qwen2.5-Math-1.5B has the
same shapes with a shorter context).  ``small`` keeps Qwen2's vocabulary and
layer types at a size a CPU runs in seconds, for tests.
"""

from __future__ import annotations

from pathlib import Path

import torch
from transformers import AutoModelForCausalLM, Qwen2Config

from dopr_lite.tiny import build_tokenizer

QWEN2_COMMON = dict(vocab_size=151936, hidden_act="silu", rms_norm_eps=1e-6,
                    rope_theta=1_000_000.0, max_position_embeddings=32768,
                    tie_word_embeddings=True)
ARCHS = {
    "qwen2.5-0.5b": dict(hidden_size=896, intermediate_size=4864,
                         num_hidden_layers=24, num_attention_heads=14,
                         num_key_value_heads=2),
    "qwen2.5-1.5b": dict(hidden_size=1536, intermediate_size=8960,
                         num_hidden_layers=28, num_attention_heads=12,
                         num_key_value_heads=2),
    "small": dict(hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                  num_attention_heads=4, num_key_value_heads=2),
}


def config(name: str):
    """The transformers ``Qwen2Config`` of architecture ``name``."""
    if name not in ARCHS:
        raise ValueError(f"unknown architecture {name!r}; choose one of "
                         f"{sorted(ARCHS)}")
    return Qwen2Config(**QWEN2_COMMON, **ARCHS[name])


def build(name: str, folder: Path, dtype: str = "bfloat16",
          seed: int = 0) -> Path:
    """Write a random-weight model of architecture ``name`` to ``folder``
    (safetensors, no tokenizer: pair it with ``tokenizer="embedded:tiny"``,
    whose ids all lie inside Qwen's vocabulary)."""
    tok = build_tokenizer()
    cfg = config(name)
    cfg.bos_token_id, cfg.eos_token_id = tok.bos_token_id, tok.eos_token_id
    cfg.pad_token_id = tok.pad_token_id
    torch.manual_seed(seed)
    model = AutoModelForCausalLM.from_config(
        cfg, dtype=getattr(torch, dtype))
    folder = Path(folder)
    model.save_pretrained(folder)
    return folder


def num_parameters(name: str) -> int:
    """Parameter count of architecture ``name`` (tied embeddings once)."""
    c = ARCHS[name]
    h, i, n = c["hidden_size"], c["intermediate_size"], c["num_hidden_layers"]
    heads, kv = c["num_attention_heads"], c["num_key_value_heads"]
    head_dim = h // heads
    attn = h * h + 2 * h * kv * head_dim + h * h  # q, k, v, o
    attn += h + 2 * kv * head_dim  # q, k, v biases
    mlp = 3 * h * i
    return QWEN2_COMMON["vocab_size"] * h + n * (attn + mlp + 2 * h) + h


NF4_BITS = 4.127  # bits per quantised weight: NF4 with double quantisation
#                   (QLoRA, Dettmers et al. 2023, section 3: 4 + 0.127)


def linear_parameters(name: str) -> int:
    """Weights of architecture ``name``'s decoder linear layers (q, k, v,
    o, gate, up, down): what bitsandbytes quantises (not the embedding,
    the tied head, norms or biases)."""
    c = ARCHS[name]
    h, i, n = c["hidden_size"], c["intermediate_size"], c["num_hidden_layers"]
    kv = c["num_key_value_heads"] * (h // c["num_attention_heads"])
    return n * (2 * h * h + 2 * h * kv + 3 * h * i)


def weight_gb(name: str, load_in_4bit: bool) -> float:
    """Estimated memory of architecture ``name``'s weights, in GB: bf16
    (2 bytes a parameter), or 4-bit as bitsandbytes stores it (the linear
    layers' weights at :data:`NF4_BITS`, embeddings, norms and biases in
    bf16).  Arithmetic from the shapes, not a measurement."""
    total = num_parameters(name)
    if not load_in_4bit:
        return 2 * total / 1e9
    linear = linear_parameters(name)
    return (linear * NF4_BITS / 8 + 2 * (total - linear)) / 1e9
