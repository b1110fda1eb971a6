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
BUILD_MINUTES = 20  # build() with 5000 steps on 2 CPU cores (build_info.json)
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


# the warm-up corpus: families evenly, easy and medium problems (never hard:
# 4-digit arithmetic stays beyond the model); easy ones answered directly
WARMUP_MIX = T.TaskMix(easy=0.2, hard=0.0)
EASY_CAREFUL = 0.3  # share of careful solutions to easy problems


def warmup_example(problem: T.Problem, rng: random.Random) -> str:
    """One warm-up completion: careful with prob ``careful_rate``, else a
    direct answer (right for easy problems, a guess otherwise)."""
    rate = EASY_CAREFUL if problem.tier == "easy" else problem.careful_rate
    if rng.random() < rate:
        return problem.solution
    return T.direct_guess(problem, rng)


def drill_line(rng: random.Random) -> tuple[str, str]:
    """One step line of some procedure, question and result:
    ``31-18=`` / ``13``, ``40*7=`` / ``280``, ``41,17=`` / ``41``."""
    kind = rng.random()
    if kind < 0.6:  # add and sub, as in add, mul and word solutions
        while True:
            a = rng.randint(0, 999 if rng.random() < 0.5 else 99)
            op, b = rng.choice("+-"), rng.randint(1, 99)
            c = a + b if op == "+" else a - b
            if 0 <= c <= 999:
                return f"{a}{op}{b}=", f"{c}\n"
    if kind < 0.8:  # one-digit products, of tens too (mul)
        a, b = rng.randint(1, 9) * rng.choice((1, 10)), rng.randint(2, 9)
        return f"{a}*{b}=", f"{a * b}\n"
    a, b = rng.sample(range(1, 100), 2)  # pairwise max (max)
    return f"{a},{b}=", f"{max(a, b)}\n"


def _sft_batch(tok, rng: random.Random, batch: int,
               procedure: float = 0.3, drills: float = 0.3,
               lines_per_drill: int = 5):
    """Three kinds of warm-up example, prompts never in the loss:

    * task: the style mix at ``careful_rate`` (the whole completion);
    * procedure: a careful solution to any problem with its *first*
      completion token left out of the loss, so it teaches the procedure
      everywhere without teaching *when* to start it (the style choice is
      made at the first token, the family's keyword or ``#``);
    * drills: bare step lines (results only) for the arithmetic.
    """
    ids, labels = [], []
    n_drill = int(batch * drills)
    n_proc = int(batch * procedure)
    n_task = batch - n_drill - n_proc
    while len(ids) < n_task + n_proc:
        problem = T.draw(rng, WARMUP_MIX)
        if T.problem_split(problem.prompt) != "sft":
            continue
        p = tok(problem.prompt + "\n")["input_ids"]
        if len(ids) < n_task:
            c = tok(warmup_example(problem, rng),
                    add_special_tokens=False)["input_ids"]
            c = c + [tok.eos_token_id]
            lab = list(c)
        else:
            c = tok(problem.solution, add_special_tokens=False)["input_ids"]
            c = c + [tok.eos_token_id]
            lab = [-100] + c[1:]
        ids.append(p + c)
        labels.append([-100] * len(p) + lab)
    while len(ids) < batch:
        seq, lab = [tok.bos_token_id], [-100]
        for _ in range(lines_per_drill):
            q, a = drill_line(rng)
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
        x, y = _sft_batch(tok, rng, batch)
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


def build(out_dir: Path = EMBEDDED_DIR, steps: int = 5000, seed: int = 0,
          log=print, **arch) -> dict:
    """Build, warm up and save the embedded tiny model; returns build info.
    ``arch`` goes to :func:`tiny_config` (hidden size, layers, heads)."""
    torch.manual_seed(seed)
    tok = build_tokenizer()
    model = LlamaForCausalLM(tiny_config(len(tok), **arch))
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
            "warmup_mix": vars(WARMUP_MIX), "warmup_log": history}
    (out_dir / "build_info.json").write_text(json.dumps(info, indent=1))
    return info
