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

What a model's size costs is counted here once, on :class:`Dims` (its
dimensions: ``dims(name)`` for an architecture above, ``model_dims`` for a
run's model): parameters, the linear layers bitsandbytes quantises, and the
bytes of the weights at a precision (:func:`weight_bytes`).
:mod:`dopr_lite.steptime` times a step's passes on the same :class:`Dims`.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch
from transformers import AutoConfig, AutoModelForCausalLM, Qwen2Config

from dopr_lite.tiny import EMBEDDED, EMBEDDED_DIR, build_tokenizer

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


NF4_BITS = 4.127  # bits per quantised weight: NF4 with double quantisation
#                   (QLoRA, Dettmers et al. 2023, section 3: 4 + 0.127)
PRECISIONS = {"4bit": 2, "bf16": 2, "fp32": 4}  # -> bytes of a value that
#   is not a 4-bit weight (activations, KV cache, unquantised weights)


@dataclass(frozen=True)
class Dims:
    """What a model's size does to its memory and its passes: decoder
    layers, width (``hidden``), attention query and key/value widths,
    vocabulary, the weights of the decoder (``body_params``: all but the
    embedding and output head) and of its linear layers
    (``linear_params``: q, k, v, o, gate, up, down; what bitsandbytes
    quantises)."""

    name: str
    layers: int
    hidden: int
    q_dim: int
    kv_dim: int
    vocab: int
    body_params: int
    linear_params: int

    @property
    def head_params(self) -> int:
        """The output head's weights (a matmul per logit; with tied
        embeddings, the embedding's too)."""
        return self.vocab * self.hidden

    @classmethod
    def from_config(cls, cfg, name: str = "", *,
                    biases_and_norms: bool = False) -> "Dims":
        """A transformers config of a Llama-like decoder.  The body is its
        linear layers, plus, with ``biases_and_norms``, Qwen2's q/k/v
        biases and RMSNorm weights (a fraction of a percent, else left
        out)."""
        h, heads, n = (cfg.hidden_size, cfg.num_attention_heads,
                       cfg.num_hidden_layers)
        head_dim = getattr(cfg, "head_dim", None) or h // heads
        kv = (getattr(cfg, "num_key_value_heads", None) or heads) * head_dim
        q = heads * head_dim
        linear = n * (2 * h * q + 2 * h * kv + 3 * h * cfg.intermediate_size)
        extra = n * (q + 2 * kv + 2 * h) + h if biases_and_norms else 0
        return cls(name or cfg.model_type, n, h, q, kv, cfg.vocab_size,
                   linear + extra, linear)


def dims(name: str) -> Dims:
    """The dimensions of architecture ``name`` (biases and norms
    counted)."""
    return Dims.from_config(config(name), name, biases_and_norms=True)


def model_dims(model: str) -> Dims | None:
    """The dimensions of a run's ``model`` (a config field): the embedded
    model, an architecture of :data:`ARCHS` named in it (Qwen2.5-Math-1.5B
    has Qwen2.5-1.5B's), or a config transformers finds locally; None if
    none is found."""
    lowered = model.lower().replace("-math", "")
    for arch in ARCHS:
        if arch != "small" and arch in lowered:
            return dims(arch)
    source = EMBEDDED_DIR if model == EMBEDDED else model
    try:
        return Dims.from_config(AutoConfig.from_pretrained(
            source, local_files_only=True), name=model)
    except (OSError, ValueError, AttributeError):  # not found, or
        return None  # not a Llama-like decoder


def weight_bytes(d: Dims, precision: str) -> float:
    """Bytes of the weights at ``precision`` (a :data:`PRECISIONS` key):
    the linear layers at :data:`NF4_BITS` bits in 4-bit, everything else
    (and everything in bf16/fp32) at full width."""
    full = PRECISIONS[precision]
    linear = d.linear_params * (NF4_BITS / 8 if precision == "4bit"
                                else full)
    other = d.body_params - d.linear_params + d.head_params
    return linear + other * full


def num_parameters(name: str) -> int:
    """Parameter count of architecture ``name`` (tied embeddings once)."""
    d = dims(name)
    return d.body_params + d.head_params


def linear_parameters(name: str) -> int:
    """Weights of architecture ``name``'s decoder linear layers (q, k, v,
    o, gate, up, down): what bitsandbytes quantises (not the embedding,
    the tied head, norms or biases)."""
    return dims(name).linear_params


def weight_gb(name: str, load_in_4bit: bool) -> float:
    """Estimated memory of architecture ``name``'s weights, in GB: bf16
    (2 bytes a parameter), or 4-bit as bitsandbytes stores it (the linear
    layers' weights at :data:`NF4_BITS`, embeddings, norms and biases in
    bf16).  Arithmetic from the shapes, not a measurement."""
    return weight_bytes(dims(name), "4bit" if load_in_4bit else "bf16") / 1e9
