"""Loading the policy: one entry point for every model source.

``load_policy(cfg)`` returns a :class:`Policy` (model, tokenizer, device)
from the embedded tiny model, a local directory or a hub id, optionally in
4-bit NF4 (QLoRA: bitsandbytes, double quantisation, a compute dtype, then
peft's ``prepare_model_for_kbit_training``) and with LoRA adapters.

The KL reference policy is the same model with its adapter disabled
(:func:`reference_mode`), so beta > 0 costs no second copy of the weights.
Sampling on a CPU runs the adapters folded into the weights
(:func:`sampling_model`): one matmul per layer instead of three.

Safety: weights load from safetensors only (``use_safetensors=True``), and
``trust_remote_code`` stays off unless the config turns it on.
"""

from __future__ import annotations

import contextlib
import warnings
from dataclasses import dataclass
from pathlib import Path

import torch
from huggingface_hub import try_to_load_from_cache
from peft import LoraConfig, get_peft_model, prepare_model_for_kbit_training
from peft.tuners.lora import Linear as LoraLinear
from peft.tuners.lora import LoraLayer
from transformers import (AutoModelForCausalLM, AutoTokenizer,
                          BitsAndBytesConfig)
from transformers.utils import logging as hf_logging

from dopr_lite.config import DoprConfig
from dopr_lite.env import hub_offline
from dopr_lite.errors import ConfigError, PolicyLoadError
from dopr_lite.tiny import EMBEDDED, EMBEDDED_DIR

_DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16,
           "float16": torch.float16}


@dataclass
class Policy:
    model: torch.nn.Module
    tokenizer: object
    device: torch.device
    source: str

    def trainable_parameters(self) -> dict[str, torch.nn.Parameter]:
        return {n: p for n, p in self.model.named_parameters()
                if p.requires_grad}


def pick_device(requested: str = "auto") -> torch.device:
    """cuda > mps > cpu for ``"auto"``; an explicit request is honoured or
    refused, never silently replaced."""
    if requested == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        mps = getattr(torch.backends, "mps", None)
        if mps is not None and mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    dev = torch.device(requested)
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError(f"device {requested!r} was asked for but CUDA is "
                          "not available; use device='auto' or 'cpu'")
    if dev.type == "mps" and not torch.backends.mps.is_available():
        raise ConfigError(f"device {requested!r} was asked for but MPS is "
                          "not available; use device='auto' or 'cpu'")
    return dev


def resolve_source(name: str) -> str:
    """Map a model name to a local path, or check a hub id can load.

    A path whose folder exists but not the path itself is a local path gone
    wrong, said so.  With ``HF_HUB_OFFLINE=1`` a hub id that is not in the
    local cache fails at once (instead of transformers' long retry) with
    what to do.
    """
    if name == EMBEDDED:
        return str(EMBEDDED_DIR)
    path = Path(name).expanduser()
    if path.is_dir():
        return str(path)
    if name.startswith((".", "/", "~")) or (
            path.parent != Path(".") and path.parent.is_dir()):
        raise PolicyLoadError(f"model directory {name!r} does not exist "
                              f"(looked in {path.resolve().parent})")
    if hub_offline() and not _cached(name):
        raise PolicyLoadError(
            f"model {name!r} is neither an existing directory nor a model "
            "in the local Hugging Face cache, and HF_HUB_OFFLINE=1 forbids "
            f"downloading it. If it is a hub id, run `hf download {name}` on "
            "a machine with internet (or unset HF_HUB_OFFLINE); if it is a "
            f"folder, check the path; the embedded default is {EMBEDDED!r}.")
    return name


def _cached(name: str) -> bool:
    try:
        return isinstance(try_to_load_from_cache(name, "config.json"), str)
    except ValueError:  # not even a valid hub id
        return False


def quantization_config(cfg: DoprConfig):
    """The bitsandbytes NF4 config that ``load_in_4bit`` asks for (the
    config checked at start-up that bitsandbytes is installed)."""
    return BitsAndBytesConfig(
        load_in_4bit=True, bnb_4bit_quant_type="nf4",
        bnb_4bit_use_double_quant=cfg.bnb_double_quant,
        bnb_4bit_compute_dtype=_DTYPES[cfg.bnb_compute_dtype])


def lora_config(cfg: DoprConfig) -> LoraConfig | None:
    """peft's ``LoraConfig`` for ``cfg`` (None: full fine-tuning), for both
    engines: :func:`load_policy` and TRL's ``peft_config``."""
    if not cfg.use_lora:
        return None
    target = "all-linear" if cfg.lora_target == "all-linear" else [
        s.strip() for s in cfg.lora_target.split(",") if s.strip()]
    return LoraConfig(r=cfg.lora_r, lora_alpha=cfg.lora_alpha,
                      lora_dropout=cfg.lora_dropout, target_modules=target,
                      task_type="CAUSAL_LM")


@contextlib.contextmanager
def _quiet_loading(quiet: bool):
    """Hide transformers' weight-loading bar (noise for a 3 MB model)."""
    was_on = hf_logging.is_progress_bar_enabled()
    if quiet and was_on:
        hf_logging.disable_progress_bar()
    try:
        yield
    finally:
        if quiet and was_on:
            hf_logging.enable_progress_bar()


def _load_error(name: str, err: Exception) -> PolicyLoadError:
    hint = (" Only safetensors weights are loaded (use_safetensors=True)."
            if "safetensors" in str(err) else "")
    return PolicyLoadError(f"could not load model {name!r}: {err}{hint}")


def load_tokenizer(cfg: DoprConfig):
    """The tokenizer ``cfg`` names (``cfg.tokenizer``, else the model's),
    padding on the left for generation, with a pad token."""
    name = cfg.tokenizer or cfg.model
    try:
        tok = AutoTokenizer.from_pretrained(
            resolve_source(name), trust_remote_code=cfg.trust_remote_code)
    except (OSError, ValueError) as err:
        raise _load_error(name, err) from err
    tok.padding_side = "left"  # generation pads on the left
    if tok.pad_token is None:
        tok.pad_token = tok.eos_token
    return tok


def _keep_4bit_training_layout(model) -> None:
    """bitsandbytes repacks 4-bit weights for CPUs with AVX512-BF16 on the
    first inference forward, and a training forward through repacked
    weights then fails (an in-place bias add on a leaf view).  Keep the
    training layout; CUDA never repacks."""
    for module in model.modules():
        if hasattr(module, "support_avx512bf16_for_cpu"):
            module.support_avx512bf16_for_cpu = False


def load_policy(cfg: DoprConfig | None = None, **overrides) -> Policy:
    """Load tokenizer and model as ``cfg`` says (keywords override it)."""
    cfg = cfg or DoprConfig()
    if overrides:
        cfg = DoprConfig(**{**cfg.to_dict(), **overrides})
    device = pick_device(cfg.device)
    if cfg.load_in_4bit and device.type not in ("cuda", "cpu"):
        raise ConfigError(
            f"config field 'load_in_4bit': bitsandbytes' 4-bit layers do not "
            f"run on {device.type!r}; set load_in_4bit=False (LoRA on "
            "bfloat16/float16 weights) or device='cpu'")
    source = resolve_source(cfg.model)
    kwargs = dict(dtype=_DTYPES[cfg.dtype], use_safetensors=True,
                  trust_remote_code=cfg.trust_remote_code)
    if cfg.load_in_4bit:
        kwargs["quantization_config"] = quantization_config(cfg)
        kwargs["device_map"] = {"": device.index or 0} if \
            device.type == "cuda" else {"": device.type}
    tok = load_tokenizer(cfg)
    try:
        with _quiet_loading(source == str(EMBEDDED_DIR)):
            model = AutoModelForCausalLM.from_pretrained(source, **kwargs)
    except (OSError, ValueError) as err:  # missing files, remote code
        raise _load_error(cfg.model, err) from err
    if not cfg.load_in_4bit:
        model.to(device)
    elif device.type == "cpu":
        _keep_4bit_training_layout(model)
    # non-reentrant checkpointing: gradients reach LoRA adapters even
    # though the frozen embeddings' outputs do not require grad
    ckpt_kwargs = {"use_reentrant": False}
    if cfg.load_in_4bit:
        model = prepare_model_for_kbit_training(
            model, use_gradient_checkpointing=cfg.gradient_checkpointing,
            gradient_checkpointing_kwargs=ckpt_kwargs)
    elif cfg.gradient_checkpointing:
        model.gradient_checkpointing_enable(
            gradient_checkpointing_kwargs=ckpt_kwargs)
    if cfg.use_lora:
        # LoRA's A matrices are drawn from the global RNG: seed them from
        # the config so a run does not depend on what ran before it
        with warnings.catch_warnings(), torch.random.fork_rng(
                devices=[device] if device.type == "cuda" else []):
            warnings.filterwarnings("ignore", ".*is_gradient_checkpointing.*")
            torch.manual_seed(cfg.seed)
            model = get_peft_model(model, lora_config(cfg))
    model.generation_config.pad_token_id = tok.pad_token_id
    model.eval()
    return Policy(model=model, tokenizer=tok, device=device,
                  source=cfg.model)


@contextlib.contextmanager
def reference_mode(model):
    """The KL reference policy: the same model with the adapter disabled."""
    if not hasattr(model, "disable_adapter"):
        raise ConfigError("config field 'beta': a KL reference needs LoRA "
                          "(use_lora=True) so the base weights stay frozen")
    with model.disable_adapter():
        yield model


def _foldable_lora(model) -> list[tuple[str, LoraLinear]] | None:
    """``model``'s LoRA layers as (name, layer) if every one can be folded
    into a plain float32 linear layer: one active adapter, unmerged and
    enabled, plain LoRA (no DoRA or other variant, no adapter bias) on an
    ``nn.Linear`` base; else None.  (Only float32: a delta added to
    bfloat16 weights would round most of a young adapter away.)"""
    if not hasattr(model, "get_base_model"):
        return None
    active = getattr(model, "active_adapters", [])
    if len(active) != 1:
        return None
    name = active[0]
    layers = [(n, m) for n, m in model.get_base_model().named_modules()
              if isinstance(m, LoraLayer)]
    ok = all(type(m) is LoraLinear and type(m.base_layer) is torch.nn.Linear
             and m.base_layer.weight.dtype == torch.float32
             and not m.merged and not m.disable_adapters
             and name in m.lora_A and not m.use_dora.get(name, False)
             and name not in getattr(m, "lora_variant", {})
             and not getattr(m, "lora_bias", {}).get(name, False)
             for _, m in layers)
    return layers if layers and ok else None


@contextlib.contextmanager
def sampling_model(model):
    """The model to call ``generate`` on: on a CPU, a LoRA model's base
    model with each adapter folded into a fresh copy of its layer's weight
    (``W + scale * B @ A``, peft's own delta; float32 and plain LoRA only,
    :func:`_foldable_lora`), else ``model`` itself.

    Decoding a few rows of a small model is bound by the work per layer,
    not by its FLOPs, and an unfolded LoRA layer runs three matmuls and
    peft's Python where a folded one runs one.  The policy's weights are
    never touched (the folded copies are new tensors, dropped on exit,
    when the LoRA layers go back), so training, checkpoints and resumed
    runs see exactly the parameters they saw before; sampled tokens can
    differ from an unfolded pass's where float rounding tips a draw.  On
    a GPU a second copy of every adapted weight would cost memory that a
    consumer card lacks, so the model is used as it is.
    """
    layers = _foldable_lora(model)
    if layers is None or next(model.parameters()).device.type != "cpu":
        yield model
        return
    base, swapped = model.get_base_model(), []
    try:
        with torch.no_grad():
            for name, layer in layers:
                parent_name, _, attr = name.rpartition(".")
                parent = base.get_submodule(parent_name)
                linear = layer.base_layer
                folded = torch.nn.Linear(linear.in_features,
                                         linear.out_features, bias=False,
                                         device="meta")
                folded.weight = torch.nn.Parameter(
                    linear.weight + layer.get_delta_weight(
                        layer.active_adapters[0]), requires_grad=False)
                folded.bias = linear.bias
                setattr(parent, attr, folded)
                swapped.append((parent, attr, layer))
        yield base
    finally:
        for parent, attr, layer in swapped:
            setattr(parent, attr, layer)
