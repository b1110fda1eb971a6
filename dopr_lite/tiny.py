"""The embedded tiny policy: a character-level Llama and its warm-up.

``build_tokenizer`` makes a character-level ``PreTrainedTokenizerFast``
(printable ASCII plus four special tokens).  It is saved with
``tokenizer_class = PreTrainedTokenizerFast`` and a *Llama* model config: a
tiny model saved as ``qwen2`` makes ``AutoTokenizer`` return a byte-level
``Qwen2Tokenizer`` that silently re-tokenises everything.

``warm_up`` trains the model by supervised learning on the ``sft`` split of
:mod:`dopr_lite.task`, mixing careful step-by-step solutions with short
direct guesses at the per-problem rate :func:`dopr_lite.task.careful_rate`,
plus careful solutions whose first token is not trained (the procedure on
every problem, without the decision to use it) and arithmetic drills.  The
result knows the reliable procedure everywhere but starts it only on some
prompts.

The committed checkpoint in ``dopr_lite/assets/tiny`` is rebuilt by::

    python -m dopr_lite build-tiny

It is float32 safetensors of about 3 MB; nothing here is downloaded.
"""

from __future__ import annotations

import json
import math
import random
import string
import time
from pathlib import Path

import torch
from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers
from tokenizers.processors import TemplateProcessing
from transformers import (LlamaConfig, LlamaForCausalLM,
                          PreTrainedTokenizerFast)

from dopr_lite import task as T

EMBEDDED_DIR = Path(__file__).parent / "assets" / "tiny"
EMBEDDED = "embedded:tiny"  # the model source name used across the package
BUILD_MINUTES = 30  # build() with 4000 steps on 2 CPU cores (build_info.json)
SPECIALS = ["<pad>", "<bos>", "<eos>", "<unk>"]
CHARS = [c for c in string.printable if c not in "\t\r\x0b\x0c"]


def build_tokenizer():
    """A character-level fast tokenizer: one token per printable character."""
    vocab = {tok: i for i, tok in enumerate(SPECIALS + CHARS)}
    core = Tokenizer(models.WordLevel(vocab=vocab, unk_token="<unk>"))
    core.pre_tokenizer = pre_tokenizers.Split(
        Regex(r"[\s\S]"), behavior="isolated")
    core.decoder = decoders.Fuse()
    core.post_processor = TemplateProcessing(
        single="<bos> $A", pair="<bos> $A $B",
        special_tokens=[("<bos>", vocab["<bos>"])])
    return PreTrainedTokenizerFast(
        tokenizer_object=core, pad_token="<pad>", bos_token="<bos>",
        eos_token="<eos>", unk_token="<unk>", padding_side="left",
        model_max_length=256)


def tiny_config(vocab_size: int, hidden: int = 128, layers: int = 4,
                heads: int = 4, max_len: int = 128):
    """A Llama-style config of about 0.8M parameters."""
    return LlamaConfig(
        vocab_size=vocab_size, hidden_size=hidden,
        intermediate_size=3 * hidden, num_hidden_layers=layers,
        num_attention_heads=heads, num_key_value_heads=heads,
        max_position_embeddings=max_len, tie_word_embeddings=True,
        pad_token_id=0, bos_token_id=1, eos_token_id=2,
        rope_parameters={"rope_type": "default", "rope_theta": 10000.0})


def warmup_example(items: list, rng: random.Random,
                   spec: T.TaskSpec = T.DEFAULT_SPEC) -> str:
    """One warm-up completion: careful with prob ``careful_rate``."""
    if rng.random() < T.careful_rate(items, spec):
        return T.careful_solution(items)
    return T.direct_guess(items, rng)


def drill_line(rng: random.Random, spec: T.TaskSpec = T.DEFAULT_SPEC):
    """One binary operation as a careful step line, e.g. ``31-18=13``."""
    while True:
        a = rng.randint(0, spec.max_value if rng.random() < 0.5
                        else spec.max_operand)
        op, b = rng.choice(spec.ops), rng.randint(1, spec.max_operand)
        c = T._apply(a, op, b)
        if 0 <= c <= spec.max_value:
            return f"{a}{op}{b}=", f"{c}\n"


def _sft_batch(tok, rng: random.Random, batch: int, spec: T.TaskSpec,
               procedure: float = 0.3, drills: float = 0.3,
               lines_per_drill: int = 5):
    """Three kinds of warm-up example, prompts never in the loss:

    * task: the style mix at ``careful_rate`` (the whole completion);
    * procedure: a careful solution to any problem with its *first*
      completion token left out of the loss, so it teaches the procedure
      everywhere without teaching *when* to start it (the style choice is
      made at the first token);
    * drills: bare step lines (results only) for the arithmetic.
    """
    ids, labels = [], []
    n_drill = int(batch * drills)
    n_proc = int(batch * procedure)
    n_task = batch - n_drill - n_proc
    while len(ids) < n_task + n_proc:
        items = T.sample_problem(rng, spec)
        if T.problem_split(T.expression(items)) != "sft":
            continue
        p = tok(T.prompt_text(items))["input_ids"]
        if len(ids) < n_task:
            c = tok(warmup_example(items, rng, spec),
                    add_special_tokens=False)["input_ids"]
            c = c + [tok.eos_token_id]
            lab = list(c)
        else:
            c = tok(T.careful_solution(items),
                    add_special_tokens=False)["input_ids"]
            c = c + [tok.eos_token_id]
            lab = [-100] + c[1:]
        ids.append(p + c)
        labels.append([-100] * len(p) + lab)
    while len(ids) < batch:
        seq, lab = [tok.bos_token_id], [-100]
        for _ in range(lines_per_drill):
            q, a = drill_line(rng, spec)
            q_ids = tok(q, add_special_tokens=False)["input_ids"]
            a_ids = tok(a, add_special_tokens=False)["input_ids"]
            seq += q_ids + a_ids
            lab += [-100] * len(q_ids) + a_ids
        ids.append(seq)
        labels.append(lab)
    width = max(map(len, ids))
    pad = tok.pad_token_id
    x = torch.tensor([s + [pad] * (width - len(s)) for s in ids])
    y = torch.tensor([s + [-100] * (width - len(s)) for s in labels])
    return x, y


def warm_up(model, tok, steps: int = 3000, batch: int = 64,
            lr: float = 3e-3, seed: int = 0,
            spec: T.TaskSpec = T.DEFAULT_SPEC,
            log_every: int = 250, log=print) -> list[dict]:
    """Supervised warm-up on the ``sft`` split; returns the loss log."""
    torch.manual_seed(seed)
    rng = random.Random(f"warmup:{seed}")
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.01,
                            betas=(0.9, 0.98))
    warm = max(1, steps // 20)

    def schedule(step):  # linear warm-up, cosine decay to 10%
        if step < warm:
            return (step + 1) / warm
        frac = (step - warm) / max(1, steps - warm)
        return 0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * frac))

    sched = torch.optim.lr_scheduler.LambdaLR(opt, schedule)
    model.train()
    history, t0, running = [], time.time(), 0.0
    for step in range(steps):
        x, y = _sft_batch(tok, rng, batch, spec)
        out = model(input_ids=x, attention_mask=(x != tok.pad_token_id),
                    labels=y)
        opt.zero_grad(set_to_none=True)
        out.loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        sched.step()
        running += out.loss.item()
        if (step + 1) % log_every == 0 or step + 1 == steps:
            n = (step % log_every) + 1
            row = {"step": step + 1, "loss": running / n,
                   "seconds": round(time.time() - t0, 1)}
            history.append(row)
            log(json.dumps(row))
            running = 0.0
    model.eval()
    return history


def build(out_dir: Path = EMBEDDED_DIR, steps: int = 4000, seed: int = 0,
          log=print) -> dict:
    """Build, warm up and save the embedded tiny model; returns build info."""
    torch.manual_seed(seed)
    tok = build_tokenizer()
    model = LlamaForCausalLM(tiny_config(len(tok)))
    n_params = sum(p.numel() for p in model.parameters())
    log(f"tiny model: {n_params:,} parameters, vocab {len(tok)}")
    history = warm_up(model, tok, steps=steps, seed=seed, log=log)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    model.generation_config.pad_token_id = tok.pad_token_id
    model.generation_config.eos_token_id = tok.eos_token_id
    model.generation_config.bos_token_id = tok.bos_token_id
    model.save_pretrained(out_dir, safe_serialization=True)
    tok.save_pretrained(out_dir)
    info = {"parameters": n_params, "steps": steps, "seed": seed,
            "task": T.DEFAULT_SPEC.__dict__, "warmup_log": history}
    (out_dir / "build_info.json").write_text(json.dumps(info, indent=1))
    return info
