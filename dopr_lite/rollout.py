"""Rollouts with Hugging Face ``generate``, and exact rollout accounting.

:func:`generate_rollouts` samples ``G`` completions for each prompt in one
batched, left-padded ``generate`` call (KV cache on, ``inference_mode``;
on a CPU with LoRA folded into the weights,
:func:`~dopr_lite.policy.sampling_model`) and returns token ids, masks and
decoded texts.  A large greedy batch (an evaluation) runs in buckets of
similar prompt length and stops decoding the rows that have ended
(:func:`_decode`).  :func:`sequence_logprobs`
scores completions under a model (used for behaviour log-probs when a batch
is reused for several updates, and for the KL reference).

The sampling settings are one ``transformers.GenerationConfig``, built once
from the config by :func:`generation_config` and passed to training,
evaluation and pre-flight alike (TRL's ``GRPOTrainer`` builds its own once,
too); :func:`sampling_config` is the one translation of plain settings into
it, for calls by hand.

:class:`RolloutCounter` counts every generated sequence and token by kind:
``train`` (rollouts that feed an update), ``probe`` (rollouts a selection
rule spends to decide) and ``eval``.  Training cost, the currency of every
comparison in this project, is ``train + probe``.
"""

from __future__ import annotations

import copy
from dataclasses import asdict, dataclass, field

import torch
import torch.nn.functional as F
from transformers import (GenerationConfig, LogitsProcessor,
                          LogitsProcessorList)

from dopr_lite.config import DoprConfig
from dopr_lite.errors import NonFiniteLogits
from dopr_lite.policy import sampling_model

KINDS = ("train", "probe", "eval")
COMPACT_ROWS = 64  # greedy calls of at least this many rows: _decode
BUCKETS = 2  # prompt-length buckets of such a call


@dataclass
class RolloutCounter:
    """Sequences and completion tokens generated, by kind."""

    sequences: dict = field(default_factory=lambda: dict.fromkeys(KINDS, 0))
    tokens: dict = field(default_factory=lambda: dict.fromkeys(KINDS, 0))
    calls: int = 0

    def add(self, kind: str, sequences: int, tokens: int,
            calls: int = 1) -> None:
        """Count ``sequences`` and ``tokens`` of ``kind``, generated in
        ``calls`` generate calls (0: in a call already counted)."""
        if kind not in KINDS:
            raise ValueError(f"rollout kind must be one of {KINDS}")
        self.sequences[kind] += int(sequences)
        self.tokens[kind] += int(tokens)
        self.calls += calls

    @property
    def cost(self) -> int:
        """Rollouts spent on training: train + probe sequences."""
        return self.sequences["train"] + self.sequences["probe"]

    @property
    def cost_tokens(self) -> int:
        return self.tokens["train"] + self.tokens["probe"]

    def state_dict(self) -> dict:
        return asdict(self)

    def load_state_dict(self, state: dict) -> None:
        self.sequences = dict(state["sequences"])
        self.tokens = dict(state["tokens"])
        self.calls = int(state["calls"])


@dataclass
class Rollouts:
    """``len(prompts) * G`` completions, grouped prompt-major."""

    prompt_ids: torch.Tensor  # (N, P) left-padded prompt tokens
    prompt_mask: torch.Tensor  # (N, P)
    completion_ids: torch.Tensor  # (N, C) right-padded completion tokens
    completion_mask: torch.Tensor  # (N, C) 1 up to and incl. EOS
    texts: list[str]  # decoded completions (special tokens removed)
    group: torch.Tensor  # (N,) index of the prompt each row belongs to
    truncated: torch.Tensor  # (N,) True where no EOS within the cap
    num_generations: int
    old_logprobs: torch.Tensor | None = None  # (N, C) behaviour log-probs

    @property
    def input_ids(self) -> torch.Tensor:
        return torch.cat([self.prompt_ids, self.completion_ids], dim=1)

    @property
    def attention_mask(self) -> torch.Tensor:
        return torch.cat([self.prompt_mask, self.completion_mask], dim=1)

    def __len__(self) -> int:
        return len(self.texts)


def sampling_config(max_new_tokens: int = 48, temperature: float = 1.0,
                    top_p: float = 1.0, top_k: int = 0, *,
                    do_sample: bool = True,
                    min_new_tokens: int = 0) -> GenerationConfig:
    """Sampling settings as a ``GenerationConfig`` (the one translation of
    them): ``top_k = 0`` is off; ``do_sample=False`` is greedy decoding,
    its sampling knobs at transformers' neutral values so that a model's
    own (a chat model's temperature, say) are not merged in and warned
    about."""
    if not do_sample:
        return GenerationConfig(max_new_tokens=max_new_tokens,
                                min_new_tokens=min_new_tokens,
                                do_sample=False, temperature=1.0, top_p=1.0,
                                top_k=50)
    return GenerationConfig(max_new_tokens=max_new_tokens,
                            min_new_tokens=min_new_tokens, do_sample=True,
                            temperature=temperature, top_p=top_p, top_k=top_k)


def generation_config(cfg: DoprConfig) -> GenerationConfig:
    """The run's sampling settings (``max_new_tokens``, ``temperature``,
    ``top_p``, ``top_k``), built once from ``cfg`` for rollouts,
    evaluation and pre-flight alike."""
    return sampling_config(cfg.max_new_tokens, cfg.temperature, cfg.top_p,
                           cfg.top_k)


def as_generation_config(config: GenerationConfig | None,
                         settings: dict) -> GenerationConfig:
    """``config``, or one built from ``settings`` (:func:`sampling_config`'s
    keywords, for a call by hand); both at once is an error."""
    if config is None:
        return sampling_config(**settings)
    if settings:
        raise TypeError("pass the sampling settings in generation_config "
                        f"or as keywords, not both: {sorted(settings)}")
    return config


def greedy_config(config: GenerationConfig) -> GenerationConfig:
    """``config``'s length limits with greedy decoding (pass@1)."""
    return sampling_config(config.max_new_tokens, do_sample=False,
                           min_new_tokens=config.min_new_tokens or 0)


def is_eos(ids: torch.Tensor, eos_id) -> torch.Tensor:
    """True where ``ids`` holds an EOS token (``eos_id``: an id or a list
    of ids, as a generation config holds it)."""
    eos_ids = eos_id if isinstance(eos_id, (list, tuple)) else [eos_id]
    found = torch.zeros_like(ids, dtype=torch.bool)
    for e in eos_ids:
        found |= ids == e
    return found


def completion_mask(ids: torch.Tensor, eos_id) -> torch.Tensor:
    """1 for every token up to and including the first EOS, else 0."""
    eos = is_eos(ids, eos_id)
    # position of the first EOS (or the full width when none)
    width = ids.shape[1]
    idx = torch.arange(width, device=ids.device).expand_as(ids)
    first = torch.where(eos, idx, torch.full_like(idx, width)).min(1).values
    return (idx <= first.unsqueeze(1)).long()


class NonFiniteGuard(LogitsProcessor):
    """Flags rows whose next-token logits cannot be sampled (NaN, +inf, or
    all -inf) and makes them sampleable, so ``generate`` finishes; the
    caller reads :attr:`seen` once at the end (one device sync per call,
    not one per token) and raises :class:`NonFiniteLogits`."""

    def __init__(self):
        self.seen = None  # (batch,) bool on the logits' device

    def __call__(self, input_ids, scores):
        bad = (scores.isnan().any(-1) | scores.isposinf().any(-1)
               | scores.isneginf().all(-1))
        self.seen = bad if self.seen is None else self.seen | bad
        return torch.where(bad.unsqueeze(-1), torch.zeros_like(scores),
                           scores)


@torch.inference_mode()
def generate_rollouts(model, tokenizer, prompts: list[str],
                      num_generations: int | list[int] = 1, *,
                      generation_config: GenerationConfig | None = None,
                      counter: RolloutCounter | None = None,
                      kind: str | list[str] = "train",
                      with_logprobs: bool = False, micro_batch: int = 64,
                      **settings) -> Rollouts:
    """Sample ``num_generations`` completions per prompt in one call.

    ``generation_config`` holds the sampling settings (the run's:
    :func:`generation_config`); without it, ``settings`` are
    :func:`sampling_config`'s keywords (``max_new_tokens``,
    ``temperature``, ``top_p``, ``top_k``, ``do_sample``,
    ``min_new_tokens``), for a call by hand.

    ``num_generations`` and ``kind`` may also be lists, one entry per
    prompt: a training group and a selection rule's probes then share one
    ``generate`` call (counted once in ``counter.calls``), each row counted
    as its prompt's kind; the result's ``num_generations`` is then 0 (mixed
    groups: :func:`take_rows` cuts uniform groups out of it).

    ``with_logprobs`` also scores the completions under the sampling policy
    (one extra forward pass, micro-batched): the behaviour log-probs a loss
    needs when it reuses the batch for several updates.  Raises
    :class:`~dopr_lite.errors.NonFiniteLogits` (after counting the
    rollouts, which were generated) if the policy's logits held NaN/inf.
    """
    if not prompts:
        raise ValueError("generate_rollouts needs at least one prompt")
    gen = as_generation_config(generation_config, settings)
    counts = ([num_generations] * len(prompts)
              if isinstance(num_generations, int) else list(num_generations))
    kinds = [kind] * len(prompts) if isinstance(kind, str) else list(kind)
    if not len(counts) == len(kinds) == len(prompts) or min(counts) < 1:
        raise ValueError("generate_rollouts needs one count >= 1 and one "
                         "kind per prompt")
    reps = torch.tensor(counts)
    device = next(model.parameters()).device
    enc = tokenizer(list(prompts), return_tensors="pt", padding=True)
    ids = enc["input_ids"].repeat_interleave(reps, 0).to(device)
    mask = enc["attention_mask"].repeat_interleave(reps, 0).to(device)
    eos = model.generation_config.eos_token_id
    if eos is None:
        eos = tokenizer.eos_token_id
    gen = copy.deepcopy(gen)  # the caller's config stays as it was
    gen.update(use_cache=True, pad_token_id=tokenizer.pad_token_id,
               eos_token_id=eos)
    with sampling_model(model) as sampler:
        comp, bad = _decode(sampler, ids, mask, gen)
    cmask = completion_mask(comp, eos)
    truncated = ~is_eos(comp, eos).any(1).cpu()
    comp = torch.where(cmask.bool(), comp,
                       torch.full_like(comp, tokenizer.pad_token_id))
    texts = tokenizer.batch_decode(comp, skip_special_tokens=True)
    if counter is not None:
        row_kind = [k for k, n in zip(kinds, counts, strict=True)
                    for _ in range(n)]
        row_tokens = cmask.sum(1).tolist()
        for j, k in enumerate(dict.fromkeys(kinds)):
            rows = [r for r, rk in enumerate(row_kind) if rk == k]
            counter.add(k, len(rows), sum(row_tokens[r] for r in rows),
                        calls=int(j == 0))
    if bad:
        raise NonFiniteLogits(
            f"the policy's logits held NaN/inf in {bad} "
            f"of {comp.shape[0]} sequences while generating; lower "
            "learning_rate or max_grad_norm, or load in bfloat16/float32 "
            "rather than float16 (config field 'dtype')")
    group = torch.arange(len(prompts)).repeat_interleave(reps)
    ro = Rollouts(prompt_ids=ids, prompt_mask=mask, completion_ids=comp,
                  completion_mask=cmask, texts=texts, group=group,
                  truncated=truncated,
                  num_generations=counts[0] if len(set(counts)) == 1 else 0)
    if with_logprobs:
        ro.old_logprobs = sequence_logprobs(
            model, ro, (gen.temperature or 1.0) if gen.do_sample else 1.0,
            micro_batch)
    return ro


def _generate(model, ids, mask, gen: GenerationConfig):
    """One ``generate`` call: completion ids, and the rows whose logits
    were not finite (:class:`NonFiniteGuard`)."""
    guard = NonFiniteGuard()
    out = model.generate(input_ids=ids, attention_mask=mask,
                         generation_config=gen,
                         logits_processor=LogitsProcessorList([guard]))
    seen = guard.seen if guard.seen is not None else torch.zeros(
        len(ids), dtype=torch.bool, device=ids.device)
    return out[:, ids.shape[1]:], seen


def _decode(model, ids, mask, gen: GenerationConfig):
    """Completion ids (rows, width; pad after EOS) of ``generate`` on
    left-padded ``ids``, and how many rows had non-finite logits.

    ``generate`` computes every row at the batch's prompt width and until
    its longest row ends, so in a large greedy batch (an evaluation:
    prompts of 7 to 52 tokens, answers of 8 to 48) most of the work is
    padding.  Greedy calls of :data:`COMPACT_ROWS` rows or more therefore
    run as :data:`BUCKETS` calls of rows of similar prompt length, each
    trimmed to its own width, and each in two rounds: every row for half
    the length cap, then only the rows without EOS, from their prompt and
    what they wrote.  Greedy decoding is a function of the prefix, so the
    tokens are one call's (up to the float rounding of another batch
    shape).  Sampled calls (and beams, stop strings, a forced EOS: what a
    round boundary would change) run as one call, so that the random
    stream is the one a single call draws.
    """
    plain_greedy = (not gen.do_sample and gen.num_beams == 1
                    and gen.num_return_sequences == 1
                    and not gen.stop_strings
                    and gen.forced_eos_token_id is None
                    and (gen.max_new_tokens or 0) >= 2)
    if not plain_greedy or len(ids) < COMPACT_ROWS:
        comp, seen = _generate(model, ids, mask, gen)
        return comp, int(seen.sum())
    order = mask.sum(1).argsort(stable=True).tolist()
    size = -(-len(order) // BUCKETS)
    parts = [_two_rounds(model, ids[rows], mask[rows], gen)
             for rows in (order[s:s + size]
                          for s in range(0, len(order), size))]
    width = max(c.shape[1] for c, _ in parts)
    stacked = torch.cat([F.pad(c, (0, width - c.shape[1]),
                               value=gen.pad_token_id) for c, _ in parts])
    comp = torch.empty_like(stacked)
    comp[torch.tensor(order, device=ids.device)] = stacked  # back in order
    return comp, sum(bad for _, bad in parts)


def _two_rounds(model, ids, mask, gen: GenerationConfig):
    """Greedy completions of left-padded rows: all rows to half the
    length cap, then the rows without EOS to the cap (:func:`_decode`)."""
    keep = mask.any(0).nonzero()[0, 0]  # the first column any row uses
    ids, mask = ids[:, keep:], mask[:, keep:]
    cap, low = gen.max_new_tokens, gen.min_new_tokens or 0
    head, seen = _generate(model, ids, mask,
                           _lengths(gen, cap // 2, min(low, cap // 2)))
    going = ~is_eos(head, gen.eos_token_id).any(1)
    done = head.shape[1]
    if done < cap // 2 or not going.any():
        return head, int(seen.sum())
    tail, tail_seen = _generate(
        model, torch.cat([ids, head], 1)[going],
        torch.cat([mask, torch.ones_like(head)], 1)[going],
        _lengths(gen, cap - done, max(0, low - done)))
    comp = torch.full((len(ids), head.shape[1] + tail.shape[1]),
                      gen.pad_token_id, dtype=head.dtype, device=head.device)
    comp[:, :head.shape[1]] = head
    comp[going, head.shape[1]:] = tail
    seen[going] |= tail_seen
    return comp, int(seen.sum())


def _lengths(gen: GenerationConfig, most: int,
             least: int) -> GenerationConfig:
    """A copy of ``gen`` with other length limits (a round's)."""
    out = copy.deepcopy(gen)
    out.update(max_new_tokens=most, min_new_tokens=least)
    return out


def concat_rollouts(parts: list[Rollouts], pad_id: int) -> Rollouts:
    """Stack rollouts from several ``generate`` calls into one batch:
    prompts re-padded on the left, completions on the right."""
    if len(parts) == 1:
        return parts[0]
    G = parts[0].num_generations
    P = max(r.prompt_ids.shape[1] for r in parts)
    C = max(r.completion_ids.shape[1] for r in parts)

    def pad(t, width, left, value):
        extra = width - t.shape[1]
        return F.pad(t, (extra, 0) if left else (0, extra), value=value)

    offsets = torch.tensor([0] + [len(r) // G for r in parts[:-1]]).cumsum(0)
    has_old = all(r.old_logprobs is not None for r in parts)
    return Rollouts(
        prompt_ids=torch.cat([pad(r.prompt_ids, P, True, pad_id)
                              for r in parts]),
        prompt_mask=torch.cat([pad(r.prompt_mask, P, True, 0)
                               for r in parts]),
        completion_ids=torch.cat([pad(r.completion_ids, C, False, pad_id)
                                  for r in parts]),
        completion_mask=torch.cat([pad(r.completion_mask, C, False, 0)
                                   for r in parts]),
        texts=[t for r in parts for t in r.texts],
        group=torch.cat([r.group + o for r, o in zip(parts, offsets,
                                                       strict=True)]),
        truncated=torch.cat([r.truncated for r in parts]),
        num_generations=G,
        old_logprobs=torch.cat([pad(r.old_logprobs, C, False, 0.0)
                                for r in parts]) if has_old else None)


def select_groups(ro: Rollouts, keep: list[int]) -> Rollouts:
    """The rollouts of the groups (prompt positions) in ``keep``."""
    G = ro.num_generations
    return take_rows(ro, [g * G + j for g in keep for j in range(G)], G)


def take_rows(ro: Rollouts, rows: list[int],
              num_generations: int) -> Rollouts:
    """Rows ``rows`` of ``ro``, regrouped as consecutive groups of
    ``num_generations`` (how a step's training group is cut out of a call
    that also generated probes)."""
    if not rows or len(rows) % num_generations:
        raise ValueError(f"{len(rows)} rows do not make groups of "
                         f"{num_generations}")
    if rows == list(range(len(ro))) and num_generations == \
            ro.num_generations:
        return ro  # all of it, already so grouped: nothing to copy
    idx = torch.tensor(rows, dtype=torch.long)
    r = idx.to(ro.prompt_ids.device)
    return Rollouts(
        prompt_ids=ro.prompt_ids[r], prompt_mask=ro.prompt_mask[r],
        completion_ids=ro.completion_ids[r],
        completion_mask=ro.completion_mask[r],
        texts=[ro.texts[i] for i in rows],
        group=torch.arange(len(rows) // num_generations
                           ).repeat_interleave(num_generations),
        truncated=ro.truncated[idx], num_generations=num_generations,
        old_logprobs=None if ro.old_logprobs is None
        else ro.old_logprobs[r])


@torch.inference_mode()
def prompt_entropy(model, tokenizer, prompts: list[str],
                   temperature: float = 1.0) -> torch.Tensor:
    """Entropy (nats) of the policy's first completion token per prompt.

    One forward pass over the left-padded prompts; no rollouts.  A cheap
    signal of how undecided the policy is on a prompt.
    """
    device = next(model.parameters()).device
    enc = tokenizer(list(prompts), return_tensors="pt", padding=True)
    logits = model(input_ids=enc["input_ids"].to(device),
                   attention_mask=enc["attention_mask"].to(device),
                   use_cache=False, logits_to_keep=1).logits[:, -1]
    logp = F.log_softmax(logits.float() / temperature, dim=-1)
    return -(logp.exp() * logp).sum(-1).cpu()


def token_logprobs(model, input_ids, attention_mask, n_completion: int,
                   temperature: float = 1.0, with_entropy: bool = False):
    """Log-probs (and optionally entropies) of the last ``n_completion``
    tokens of each row, computed with logits / temperature."""
    logits = model(input_ids=input_ids, attention_mask=attention_mask,
                   use_cache=False,
                   logits_to_keep=n_completion + 1).logits
    logits = logits[:, :-1, :].float() / temperature  # predicts next token
    targets = input_ids[:, -n_completion:]
    logp_all = F.log_softmax(logits, dim=-1)
    logp = logp_all.gather(-1, targets.unsqueeze(-1)).squeeze(-1)
    if not with_entropy:
        return logp, None
    entropy = -(logp_all.exp() * logp_all).sum(-1)
    return logp, entropy


@torch.inference_mode()
def sequence_logprobs(model, rollouts: Rollouts, temperature: float = 1.0,
                      micro_batch: int = 64) -> torch.Tensor:
    """Per-token log-probs of the rollouts' completions, micro-batched."""
    ids, mask = rollouts.input_ids, rollouts.attention_mask
    n = rollouts.completion_ids.shape[1]
    parts = []
    for s in range(0, ids.shape[0], micro_batch):
        lp, _ = token_logprobs(model, ids[s:s + micro_batch],
                               mask[s:s + micro_batch], n, temperature)
        parts.append(lp)
    return torch.cat(parts)
