r"""Seconds per training step, estimated from what the step runs and a
card's public specs.

A one-prompt rule generates 10-40x fewer rollouts than full-batch GRPO,
but a GPU step does not cost in proportion: ``generate`` is bound by its
sequential decode steps (a call with 8 sequences takes about as long as
one with 256) and the update by the tokens it back-propagates.  This
module turns a step's shape into seconds, so that a saving in rollouts can
be read as a saving in GPU time.  Every number it prints is an
**estimate**.

What a step runs (a :class:`Workload` on a model's
:class:`~dopr_lite.archs.Dims`, built from a run's logged steps by
:mod:`dopr_lite.steplog`, or for a rule's typical step by
:mod:`dopr_lite.ruletime`) is a list of passes through the model
(:func:`passes`), each with its FLOPs and the bytes it reads:

* a ``generate`` call of ``rows`` sequences with ``P``-token (padded)
  prompts that runs ``C`` decode steps (until its longest sequence ends):
  one prefill pass of ``rows * P`` tokens, then ``C`` decode passes of
  ``rows`` tokens each, which read the weights (at their precision: bf16,
  or NF4 at :data:`dopr_lite.archs.NF4_BITS` bits for the 4-bit linear
  layers) plus the KV cache of the whole batch,
  ``2 * layers * kv_dim * 2 bytes * rows * (P + C/2)`` (the mean context
  while decoding) and the step's logits (:data:`LOGIT_TRIPS` trips over
  ``rows`` float32 rows of the vocabulary);
* the update on ``R`` rows of ``P + C`` (padded) tokens, in
  ``ceil(R / micro_batch)`` micro-batches: a forward pass, a backward pass
  (with LoRA the frozen weights need only input gradients, ~1 forward's
  FLOPs; full fine-tuning ~2) and, with gradient checkpointing, one more
  forward; in 4-bit each of those passes first dequantises the linear
  weights (reads them at NF4 bits, writes a bf16 copy:
  :data:`DEQUANT_BYTES`);
* the entropy pass: a prefill of the prompts whose first-token entropy
  the rule measured (no decode).

FLOPs of a forward pass over ``t`` tokens that attend to ``ctx`` earlier
tokens on average and compute ``l`` logits:
``2 * body * t + 2 * head * l + 4 * layers * q_dim * ctx * t``.  A pass
takes ``max(flops / (tflops * eff.flops), bytes / (bandwidth *
eff.bandwidth))``, and a forward pass (prefill, decode step, the update's
forward and recomputation, the entropy pass) at least ``layers *
eff.layer_overhead_s``: eager PyTorch launches each layer's kernels from
Python, and a small pass waits for the host, not the card.  So

    generate = prefill + C * max(layers * overhead,
                                 decode FLOPs / (tflops * eff.flops),
                                 (weight + KV bytes) / (bandwidth * eff.bw))
    update   = (forward + backward + recompute FLOPs) / (tflops * eff.flops)
               (+ the forward passes' overhead floor, + 4-bit dequantisation)
    step     = sum of its generate calls + update + entropy pass

The cards (:data:`CARDS`, each with its sources where it is defined:
dense, not sparse, bf16 tensor throughput with FP32 accumulation).

The efficiency defaults (:class:`Efficiency`), from published
measurements, none chosen for a rule:

* ``layer_overhead_s = 0.9 ms`` per decoder layer per forward pass: the
  Qwen2.5 speed benchmark (https://qwen.readthedocs.io/en/latest/
  benchmark/speed_benchmark.html; A100 80GB, transformers 4.46.0, PyTorch
  2.3.1, flash-attention 2.5.8, batch size 1, 2048 new tokens from a
  1-token prompt, BF16) measured 47.40, 39.68, 30.80, 40.38 and 17.54
  tokens/s for Qwen2.5-0.5B, 1.5B, 3B, 7B and 32B-Instruct (24, 28, 36,
  28, 64 layers): 0.88-0.90 ms per layer per token for every size, the 7B
  as fast as the 1.5B; so HF ``generate`` is host-bound at this size;
* ``bandwidth = 0.70``: the same benchmark's vLLM 0.6.3 run decoded
  Qwen2.5-32B-Instruct in BF16 (65 GB of weights) at 22.13 tokens/s on one
  A100 80GB, 1.44 TB/s of weights read, 71% of the SXM card's 2.04 TB/s
  (74% if it was the PCIe card; vLLM's own per-step overhead is included,
  so this is a lower bound);
* ``flops = 0.45``: Qwen's fine-tuning profile
  (https://github.com/QwenLM/Qwen, README "Profiling of Memory and
  Speed"; one A100-SXM4-80G, PyTorch 2.0, flash-attention 2, bf16, LoRA
  with gradient checkpointing, batch 1 x 8 accumulation) trained Qwen-7B
  (7.1e9 weights in matmuls, 32 layers, width 4096) on 2048-token
  sequences at 5.2 s per 8 sequences, 3151 tokens/s; at
  3 x (2 x 7.1e9 + 4 x 32 x 4096 x 1024) FLOPs a token (forward, LoRA
  backward, recomputation, as counted here) that is 139 TFLOPS, 45% of
  312.

On a CPU there is no card: :func:`dopr_lite.cpufit.fit_cpu` treats the
CPU as a card whose bandwidth and throughput are one fitted scale of
:data:`CPU_NOMINAL`, with the per-layer overhead the other parameter.

This module is arithmetic on numbers: it imports nothing of the training
stack (a test holds it to that).

Not modelled (so an estimate runs short by them): the reward, tokenising
and decoding text, the selector's own arithmetic, the optimiser step,
evaluation; the extra forward passes of ``num_iterations > 1`` (behaviour
log-probs) and ``beta > 0`` (the reference); the extra kernels of
bitsandbytes' 4-bit layers in decode (the overhead above was measured in
bf16), and its fallback, for many rows on some cards, to dequantising
every decode step.  fp32 weights (the CPU's precision here) are timed on
a card at its bf16 rate, which is too fast.  ``bench/gpu_time.py``
measures how far off all this leaves the model on a real card.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from dopr_lite.archs import NF4_BITS, PRECISIONS, Dims, weight_bytes

DEQUANT_BYTES = NF4_BITS / 8 + 2  # per 4-bit weight, per dequantising
#   pass: read it packed, write its bf16 copy
LOGIT_TRIPS = 3  # the head writes float32 logits, softmax reads them and
#                 writes probabilities, the sampler reads those


@dataclass(frozen=True)
class Card:
    """A GPU's public specs: memory (GB), memory bandwidth (GB/s), dense
    bf16 tensor throughput with FP32 accumulation (TFLOPS, no sparsity),
    and where the numbers come from."""

    name: str
    memory_gb: float
    bandwidth_gbs: float
    bf16_tflops: float
    source: str


# The catalogue.  RTX 3060 12GB: 360 GB/s (15 Gbps GDDR6 on a 192-bit
# bus); 25.5 TFLOPS is derived, not listed by NVIDIA for this card: the
# GA102 whitepaper's RTX 3090 figure (71 dense TFLOPS, 82 SMs at 1.695 GHz:
# 512 FLOPs per SM per clock at FP32 accumulate, half the FP16-accumulate
# rate on GA10x) times the 3060's 28 SMs at its 1.777 GHz boost; the spec
# page could not be fetched here to confirm the bandwidth, third-party
# listings agree.  RTX 4090: 1008 GB/s, 165.2 TFLOPS.  H100 SXM: 3.35 TB/s,
# 989 TFLOPS (NVIDIA lists 1,979 with sparsity).  H200 (SXM): 4.8 TB/s,
# 989 TFLOPS (1,979 with sparsity).  Each card's ``source``: where.
CARDS = {
    "rtx3060": Card(
        "NVIDIA GeForce RTX 3060 12GB", 12, 360, 25.5,
        "https://www.nvidia.com/en-us/geforce/graphics-cards/30-series/"
        "rtx-3060-3060ti/ (12 GB GDDR6, 192-bit, 15 Gbps); TFLOPS derived "
        "from https://www.nvidia.com/content/PDF/nvidia-ampere-ga-102-gpu-"
        "architecture-whitepaper-v2.pdf (RTX 3090: 71 dense BF16/FP32-acc "
        "TFLOPS on 82 SMs at 1.695 GHz) x 28 SMs at 1.777 GHz"),
    "rtx4090": Card(
        "NVIDIA GeForce RTX 4090", 24, 1008, 165.2,
        "https://images.nvidia.com/aem-dam/Solutions/geforce/ada/"
        "nvidia-ada-gpu-architecture.pdf (appendix: Peak BF16 Tensor "
        "TFLOPS with FP32 Accumulate 165.2/330.4; 1008 GB/s)"),
    "h100-sxm": Card(
        "NVIDIA H100 SXM 80GB", 80, 3350, 989,
        "https://www.nvidia.com/en-us/data-center/h100/ (3.35 TB/s; BF16 "
        "Tensor Core 1,979 TFLOPS with sparsity)"),
    "h200": Card(
        "NVIDIA H200 SXM 141GB", 141, 4800, 989,
        "https://www.nvidia.com/en-us/data-center/h200/ (4.8 TB/s; BF16 "
        "Tensor Core 1,979 TFLOPS with sparsity)"),
}
CUDA_NAMES = {"rtx3060": ("rtx 3060",), "rtx4090": ("rtx 4090",),
              "h100-sxm": ("h100 80gb hbm3", "h100 sxm"), "h200": ("h200",)}
OTHER_CARDS = ("laptop", " ti", "nvl", "pcie", "8gb")  # same name, other
#                                                        specs
CPU_NOMINAL = Card("CPU (fitted)", 0, 10, 0.1, "fit_cpu: scaled to fit")


def find_card(name: str) -> Card | None:
    """The card ``name`` names: a key of :data:`CARDS` ("h100" for
    "h100-sxm"), or a CUDA device name as ``torch.cuda.get_device_name``
    gives it ("NVIDIA H100 80GB HBM3"); None if none matches (a laptop,
    Ti, PCIe or NVL variant is another card)."""
    key = name.strip().lower()
    key = "h100-sxm" if key == "h100" else key
    if key in CARDS:
        return CARDS[key]
    if any(other in key for other in OTHER_CARDS):
        return None
    return next((CARDS[k] for k, names in CUDA_NAMES.items()
                 if any(n in key for n in names)), None)


@dataclass(frozen=True)
class Efficiency:
    """What share of a card's peak a pass reaches, and the host's time per
    decoder layer per forward pass (defaults and their sources: the
    module docstring)."""

    flops: float = 0.45
    bandwidth: float = 0.70
    layer_overhead_s: float = 0.9e-3


@dataclass(frozen=True)
class Call:
    """One ``generate`` call: ``rows`` sequences, ``prompt_tokens`` each
    (padded), ``decode_steps`` (the longest completion it decoded)."""

    rows: int
    prompt_tokens: int
    decode_steps: int


@dataclass(frozen=True)
class Workload:
    """What one step runs: its generate calls, the update's rows and their
    padded prompt and completion widths, the entropy pass's rows and
    width (0: the first call's prompt width), on a model of ``dims`` at
    ``precision`` ("4bit": NF4 + LoRA, "bf16", "fp32"), with or without
    LoRA and gradient checkpointing, in micro-batches of ``micro_batch``
    rows."""

    dims: Dims
    calls: tuple = ()
    update_rows: int = 0
    update_prompt_tokens: int = 0
    update_completion_tokens: int = 0
    entropy_rows: int = 0
    entropy_prompt_tokens: int = 0
    precision: str = "4bit"
    lora: bool = True
    checkpointing: bool = True
    micro_batch: int = 4

    def __post_init__(self):
        if self.precision not in PRECISIONS:
            raise ValueError(f"precision {self.precision!r}: use one of "
                             f"{sorted(PRECISIONS)}")


@dataclass(frozen=True)
class Pass:
    """A pass through the model, run ``count`` times in a step: its FLOPs
    and the bytes it reads per run; ``floor``: a forward pass, which takes
    at least the host's per-layer overhead."""

    part: str  # "generate", "update" or "entropy"
    count: float
    flops: float
    bytes: float
    floor: bool = True


def forward_flops(d: Dims, tokens: float, ctx: float,
                  logits: float) -> float:
    """FLOPs of a forward pass over ``tokens`` tokens that attend to
    ``ctx`` tokens on average and compute ``logits`` rows of logits."""
    return (2 * d.body_params * tokens + 2 * d.head_params * logits
            + 4 * d.layers * d.q_dim * ctx * tokens)


def generate_passes(w: Workload, call: Call) -> list[Pass]:
    """A generate call: one prefill, then a decode pass per step, each
    reading the weights, the batch's KV cache at the mean context and its
    logits (:data:`LOGIT_TRIPS` trips over float32 rows of the
    vocabulary)."""
    s, rows, P, C = w.dims, call.rows, call.prompt_tokens, call.decode_steps
    weights, ctx = weight_bytes(s, w.precision), P + C / 2
    kv = 2 * s.layers * s.kv_dim * PRECISIONS[w.precision] * rows * ctx
    logits = LOGIT_TRIPS * 4 * s.vocab * rows
    return [Pass("generate", 1, forward_flops(s, rows * P, P / 2, rows),
                 weights + logits),
            Pass("generate", C, forward_flops(s, rows, ctx, rows),
                 weights + kv + logits)]


def update_passes(w: Workload) -> list[Pass]:
    """The update: per micro-batch a forward, a backward (LoRA: input
    gradients only, ~1 forward; full fine-tuning ~2) and, with gradient
    checkpointing, a recomputing forward; in 4-bit each of them first
    dequantises the linear weights."""
    if not w.update_rows:
        return []
    s, P, C = w.dims, w.update_prompt_tokens, w.update_completion_tokens
    m = math.ceil(w.update_rows / w.micro_batch)
    rows = w.update_rows / m  # per micro-batch
    fwd = forward_flops(s, rows * (P + C), (P + C) / 2, rows * (C + 1))
    weights = weight_bytes(s, "fp32" if w.precision == "fp32" else "bf16")
    out = [Pass("update", m, fwd, weights),
           Pass("update", m, fwd * (1 if w.lora else 2), weights, False)]
    if w.checkpointing:
        out.append(Pass("update", m, fwd, weights))
    if w.precision == "4bit":
        out.append(Pass("update", m * len(out), 0,
                        s.linear_params * DEQUANT_BYTES, False))
    return out


def passes(w: Workload) -> list[Pass]:
    """Every pass of a step: its generate calls, the update, the entropy
    pass."""
    out = [p for call in w.calls for p in generate_passes(w, call)]
    out += update_passes(w)
    if w.entropy_rows:
        P = w.entropy_prompt_tokens or (w.calls[0].prompt_tokens
                                        if w.calls else 0)
        out.append(Pass("entropy", 1,
                        forward_flops(w.dims, w.entropy_rows * P, P / 2,
                                      w.entropy_rows),
                        weight_bytes(w.dims, w.precision)))
    return out


def pass_seconds(p: Pass, layers: int, card: Card,
                 eff: Efficiency) -> float:
    """Seconds of ``p``'s ``count`` runs on ``card``."""
    work = max(p.flops / (card.bf16_tflops * 1e12 * eff.flops),
               p.bytes / (card.bandwidth_gbs * 1e9 * eff.bandwidth))
    floor = layers * eff.layer_overhead_s if p.floor else 0.0
    return p.count * max(work, floor)


def memory_gb(w: Workload) -> float:
    """Weights plus the largest call's KV cache at full length, in GB: what
    generate must hold (the update's activations, an optimiser and the
    allocator's slack come on top)."""
    s = w.dims
    kv = max((2 * s.layers * s.kv_dim * PRECISIONS[w.precision] * c.rows
              * (c.prompt_tokens + c.decode_steps) for c in w.calls),
             default=0)
    return (weight_bytes(s, w.precision) + kv) / 1e9


def step_seconds(w: Workload, card: Card,
                 eff: Efficiency = Efficiency()) -> dict:
    """Estimated seconds of a step on ``card``: ``generate``, ``update``,
    ``entropy`` and their ``total``."""
    out = dict.fromkeys(("generate", "update", "entropy"), 0.0)
    for p in passes(w):
        out[p.part] += pass_seconds(p, w.dims.layers, card, eff)
    return out | {"total": sum(out.values())}
