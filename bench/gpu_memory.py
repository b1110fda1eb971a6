"""Peak memory and throughput of one DoPR step and one full-batch GRPO step.

Builds models with Qwen2.5-0.5B's and Qwen2.5-1.5B's exact architecture and
random weights (``dopr_lite.archs``; no download), loads them the way the
``consumer_gpu`` preset does (4-bit NF4 + double quantisation, bf16
compute, LoRA on all linear layers, gradient checkpointing), and runs the
loop's own pieces for one step of each rule:

* DoPR: first-token entropy of the 8 candidates, G rollouts of one prompt,
  the GRPO update;
* full batch: G rollouts of each of the 8 candidates, the GRPO update.

Every completion is forced to ``--new-tokens`` tokens (``min_new_tokens``),
the worst case.  Rewards are synthetic (half of each group right), since a
random model solves nothing and an all-equal group would skip the update.
Reports peak memory (CUDA: ``torch.cuda.max_memory_allocated`` per step;
CPU: the process's peak RSS), rollouts/s, tokens/s and update time as JSON
and a markdown table.

    python bench/gpu_memory.py                      # CUDA: 0.5B and 1.5B
    python bench/gpu_memory.py --archs small        # CPU: seconds (a test)
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import torch

from dopr_lite import archs
from dopr_lite.config import DoprConfig
from dopr_lite.env import (peak_memory_gb, reset_peak_memory, runs_dir,
                           versions)
from dopr_lite.grpo import group_advantages, grpo_update
from dopr_lite.policy import load_policy
from dopr_lite.rollout import generate_rollouts, prompt_entropy
from dopr_lite.task import task_dataset

# a GSM8K-sized question: ~60 words, about 300 characters (= tokens here)
QUESTION = ("Natalia sold clips to 48 of her friends in April, and then she "
            "sold half as many clips in May. Each clip costs 3 dollars and "
            "she spent a quarter of what she earned on a new bag. How many "
            "dollars does she have left after buying the bag, if she also "
            "received 12 dollars from her aunt? ")


def _sync():
    if torch.cuda.is_available():
        torch.cuda.synchronize()


def _reset():
    _sync()
    reset_peak_memory()


def one_step(policy, cfg: DoprConfig, prompts: list[str], rule: str) -> dict:
    """One step of ``rule`` ("dopr" or "full"), timed phase by phase."""
    model, tok = policy.model, policy.tokenizer
    params = list(policy.trainable_parameters().values())
    opt = torch.optim.AdamW(params, lr=cfg.learning_rate)
    G = cfg.num_generations
    _reset()
    t0 = time.perf_counter()
    if rule == "dopr":  # the selector's only model call: one forward pass
        entropy = prompt_entropy(model, tok, prompts, cfg.temperature)
        prompts = [prompts[int(entropy.argmax())]]
    _sync()
    t1 = time.perf_counter()
    ro = generate_rollouts(model, tok, prompts, G,
                           max_new_tokens=cfg.max_new_tokens,
                           min_new_tokens=cfg.max_new_tokens,
                           temperature=cfg.temperature)
    _sync()
    t2 = time.perf_counter()
    rewards = torch.tensor([[float(g % 2) for g in range(G)]] * len(prompts))
    adv = group_advantages(rewards, cfg.scale_rewards).view(-1)
    stats = grpo_update(model, opt, ro, adv, loss_type=cfg.loss_type,
                        max_new_tokens=cfg.max_new_tokens,
                        temperature=cfg.temperature,
                        micro_batch=cfg.micro_batch, trainable=params)
    _sync()
    t3 = time.perf_counter()
    n, tokens = len(ro), int(ro.completion_mask.sum())
    return {"rule": rule, "rollouts": n, "new_tokens": tokens,
            "select_s": round(t1 - t0, 3), "generate_s": round(t2 - t1, 3),
            "rollouts_per_s": round(n / (t2 - t1), 2),
            "tokens_per_s": round(tokens / (t2 - t1), 1),
            "update_s": round(t3 - t2, 3), "step_s": round(t3 - t0, 3),
            "peak_gb": peak_memory_gb(),
            "update_skipped": stats["skipped"]}


def run(arch: str, args) -> list[dict]:
    cuda = torch.cuda.is_available()
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        archs.build(arch, Path(tmp), dtype="bfloat16" if cuda else "float32")
        cfg = DoprConfig.consumer_gpu(
            model=tmp, tokenizer="embedded:tiny", dataset="embedded",
            reward="exact", load_in_4bit=not args.no_4bit,
            dtype="bfloat16" if cuda else "float32",
            bnb_compute_dtype="bfloat16" if cuda else "float32",
            lora_r=args.lora_r, lora_alpha=2 * args.lora_r,
            num_generations=args.G, max_new_tokens=args.new_tokens,
            micro_batch=args.micro_batch, prompts_per_step=args.prompts)
        _reset()
        policy = load_policy(cfg)
        load_s = time.perf_counter() - t0
        load_gb = (torch.cuda.memory_allocated() / 1e9 if cuda
                   else peak_memory_gb())
    problems = task_dataset("rl", args.prompts, seed=0)["prompt"]
    prompts = [QUESTION + p for p in problems]
    generate_rollouts(policy.model, policy.tokenizer, prompts[:1], 1,
                      max_new_tokens=4)  # warm-up: kernels, allocator
    rows = []
    for rule in ("dopr", "full"):
        row = one_step(policy, cfg, prompts, rule)
        rows.append({"arch": arch, "params_b": round(
            archs.num_parameters(arch) / 1e9, 3), "load_s": round(load_s, 1),
            "weights_gb": round(load_gb, 3), **row})
        print(json.dumps(rows[-1]), flush=True)
    del policy
    if cuda:
        torch.cuda.empty_cache()
    return rows


def table(rows: list[dict]) -> str:
    head = ("| model (random weights) | step | rollouts x tokens | peak GB | "
            "rollouts/s | tokens/s | update s | step s |")
    lines = [head, "|---|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(
            f"| {r['arch']} ({r['params_b']}B) | {r['rule']} | "
            f"{r['rollouts']} x {r['new_tokens'] // r['rollouts']} | "
            f"{r['peak_gb']:.2f} | {r['rollouts_per_s']} | "
            f"{r['tokens_per_s']:.0f} | {r['update_s']:.1f} | "
            f"{r['step_s']:.1f} |")
    return "\n".join(lines)


def main(argv=None) -> int:
    cuda = torch.cuda.is_available()
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--archs", nargs="+", choices=sorted(archs.ARCHS),
                   default=["qwen2.5-0.5b", "qwen2.5-1.5b"] if cuda
                   else ["small"])
    p.add_argument("--G", type=int, default=8)
    p.add_argument("--prompts", type=int, default=8,
                   help="candidates per step (the full batch)")
    p.add_argument("--new-tokens", type=int, default=512 if cuda else 16)
    p.add_argument("--micro-batch", type=int, default=4)
    p.add_argument("--lora-r", type=int, default=32)
    p.add_argument("--no-4bit", action="store_true")
    p.add_argument("--out", default=str(Path(runs_dir("bench")) /
                                        "gpu_memory.json"))
    args = p.parse_args(argv)
    device = (torch.cuda.get_device_name(0) if cuda else "cpu")
    rows = [r for arch in args.archs for r in run(arch, args)]
    result = {"device": device, "versions": versions(),
              "settings": vars(args), "results": rows}
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=1) + "\n")
    print(f"\n{device}; peak memory: "
          f"{'torch.cuda.max_memory_allocated' if cuda else 'process RSS'}")
    print(table(rows))
    print(f"\nwrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
