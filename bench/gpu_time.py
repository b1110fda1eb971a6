"""Measured seconds of ``generate`` and of the update on a GPU, against the
step-time model's estimate (``dopr_lite.steptime``).

Builds a model with Qwen2.5-1.5B's architecture and random weights
(``dopr_lite.archs``; no download), loads it as the ``consumer_gpu``
preset does (LoRA, gradient checkpointing; bf16, and 4-bit NF4 when
bitsandbytes is installed) and times

* ``generate`` against the sequences per call (8, 32, 128, 512) and the
  completion length (128 and 512 tokens, forced with ``min_new_tokens``:
  the call decodes exactly that many steps);
* one GRPO update against the rows it back-propagates (4, 16, 64 rows of
  prompt + 512 completion tokens, in micro-batches of 4).

Each measurement is printed with the model's estimate for the local card
(``steptime.find_card``; a card it does not know gets no estimate) and the
error.  Writes ``--out`` (default ``$OUT/gpu_time.json``), and on a GPU a
copy in ``bench/results/gpu_time.json``.

``--dry-run`` runs on the CPU with a tiny architecture and tiny sizes (in
seconds, to show the script works); there the CPU is fitted as a card on
the first generate and update measurements (``cpufit.fit_cpu``) and the
others are predicted.

    python bench/gpu_time.py               # CUDA: a few minutes
    python bench/gpu_time.py --dry-run     # CPU: seconds
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import torch

from dopr_lite import archs, cpufit, steptime
from dopr_lite.config import DoprConfig
from dopr_lite.env import runs_dir, versions
from dopr_lite.grpo import grpo_update
from dopr_lite.policy import load_policy
from dopr_lite.rollout import Rollouts, generate_rollouts
from dopr_lite.task import task_dataset

RESULTS = Path(__file__).resolve().parent / "results"
# a GSM8K-sized question: ~60 words, about 300 characters (= tokens here)
QUESTION = ("Natalia sold clips to 48 of her friends in April, and then she "
            "sold half as many clips in May. Each clip costs 3 dollars and "
            "she spent a quarter of what she earned on a new bag. How many "
            "dollars does she have left after buying the bag, if she also "
            "received 12 dollars from her aunt? ")
FULL = dict(arch="qwen2.5-1.5b", rows=[8, 32, 128, 512],
            long_rows=[8, 512], tokens=128, long_tokens=512,
            update_rows=[4, 16, 64], update_tokens=512)
DRY = dict(arch="small", rows=[2, 4, 8], long_rows=[2, 8], tokens=4,
           long_tokens=12, update_rows=[2, 4, 8], update_tokens=8)


def _sync():
    if torch.cuda.is_available():
        torch.cuda.synchronize()


def precisions(cuda: bool) -> tuple[list[str], str]:
    """The precisions to measure, and a note on any left out."""
    if importlib.util.find_spec("bitsandbytes") is None:
        return (["bf16" if cuda else "fp32"],
                "bitsandbytes is not installed: 4-bit not measured")
    return ["bf16" if cuda else "fp32", "4bit"], ""


def load(folder: str, precision: str, cuda: bool):
    """The random-weight model in ``folder``, loaded as ``consumer_gpu``
    loads a model (LoRA r=32 on every linear layer, gradient
    checkpointing), at ``precision``."""
    dtype = "bfloat16" if cuda else "float32"
    cfg = DoprConfig.consumer_gpu(
        model=folder, tokenizer="embedded:tiny", dataset="embedded",
        reward="exact", load_in_4bit=precision == "4bit", dtype=dtype,
        bnb_compute_dtype=dtype)
    return cfg, load_policy(cfg)


def time_generate(policy, prompt: str, rows: int, tokens: int) -> dict:
    """One ``generate`` call of ``rows`` sequences, each forced to
    ``tokens`` new tokens."""
    _sync()
    t0 = time.perf_counter()
    ro = generate_rollouts(policy.model, policy.tokenizer, [prompt], rows,
                           max_new_tokens=tokens, min_new_tokens=tokens)
    _sync()
    return {"kind": "generate", "rows": rows,
            "prompt_tokens": ro.prompt_ids.shape[1],
            "completion_tokens": ro.completion_ids.shape[1],
            "seconds": time.perf_counter() - t0}


def fake_rollouts(rows: int, prompt_ids: torch.Tensor,
                  tokens: int) -> Rollouts:
    """``rows`` copies of a prompt with ``tokens`` random completion
    tokens each (what the update reads; their text does not matter)."""
    device = prompt_ids.device
    ids = prompt_ids.expand(rows, -1)
    comp = torch.randint(3, 90, (rows, tokens), device=device)
    return Rollouts(ids, torch.ones_like(ids), comp, torch.ones_like(comp),
                    texts=[""] * rows, group=torch.zeros(rows, dtype=int),
                    truncated=torch.zeros(rows, dtype=bool),
                    num_generations=rows)


def time_update(policy, cfg, prompt_ids, rows: int, tokens: int) -> dict:
    """One GRPO update on ``rows`` rows (advantages +-1: no skip)."""
    params = list(policy.trainable_parameters().values())
    opt = torch.optim.AdamW(params, lr=1e-6)
    ro = fake_rollouts(rows, prompt_ids, tokens)
    adv = torch.tensor([1.0, -1.0] * (rows // 2) + [1.0] * (rows % 2))
    _sync()
    t0 = time.perf_counter()
    stats = grpo_update(policy.model, opt, ro, adv, loss_type=cfg.loss_type,
                        max_new_tokens=tokens, micro_batch=cfg.micro_batch,
                        trainable=params)
    _sync()
    return {"kind": "update", "rows": rows,
            "prompt_tokens": prompt_ids.shape[1], "completion_tokens": tokens,
            "seconds": time.perf_counter() - t0,
            "skipped": stats["skipped"]}


def measure(folder: str, precision: str, grid: dict, cuda: bool) -> list:
    """Every measurement of ``grid`` at ``precision``."""
    cfg, policy = load(folder, precision, cuda)
    prompt = QUESTION + task_dataset("rl", 1, seed=0)["prompt"][0]
    time_generate(policy, prompt, 1, 4)  # warm-up: kernels, allocator
    rows = [time_generate(policy, prompt, n, grid["tokens"])
            for n in grid["rows"]]
    rows += [time_generate(policy, prompt, n, grid["long_tokens"])
             for n in grid["long_rows"]]
    ids = policy.tokenizer([prompt], return_tensors="pt")["input_ids"].to(
        next(policy.model.parameters()).device)
    time_update(policy, cfg, ids, 2, 4)  # warm-up
    rows += [time_update(policy, cfg, ids, n, grid["update_tokens"])
             for n in grid["update_rows"]]
    del policy
    if cuda:
        torch.cuda.empty_cache()
    return [r | {"precision": precision, "micro_batch": cfg.micro_batch}
            for r in rows]


def workload(row: dict, dims: archs.Dims) -> steptime.Workload:
    """The step-time model's workload of one measurement."""
    common = dict(precision=row["precision"], lora=True, checkpointing=True,
                  micro_batch=row["micro_batch"])
    if row["kind"] == "generate":
        return steptime.Workload(dims, (steptime.Call(
            row["rows"], row["prompt_tokens"], row["completion_tokens"]),),
            **common)
    return steptime.Workload(dims, (), row["rows"], row["prompt_tokens"],
                             row["completion_tokens"], **common)


def estimate(rows: list[dict], dims, card, eff) -> None:
    """Add each measurement's estimate and error (estimate / measured -
    1), in place."""
    for r in rows:
        est = steptime.step_seconds(workload(r, dims), card, eff)[r["kind"]]
        r.update(estimate=est, error=est / r["seconds"] - 1)


def fit_first(rows: list[dict], dims) -> tuple:
    """The CPU fitted as a card on the first generate and the first update
    measurement (one setting; the rest are predicted)."""
    first = [next(r for r in rows if r["kind"] == k)
             for k in ("generate", "update")]
    fit = cpufit.fit_cpu([workload(r, dims) for r in first],
                           [first[0]["seconds"], 0.0],
                           [0.0, first[1]["seconds"]])
    return fit.card, fit.eff


def table(rows: list[dict]) -> str:
    lines = ["| what | precision | rows | prompt + new tokens | measured s "
             "| estimate s | error |", "|---|---|---|---|---|---|---|"]
    for r in rows:
        est = (f"{r['estimate']:.3f} | {r['error']:+.0%}" if "estimate" in r
               else "- | -")
        lines.append(f"| {r['kind']} | {r['precision']} | {r['rows']} | "
                     f"{r['prompt_tokens']} + {r['completion_tokens']} | "
                     f"{r['seconds']:.3f} | {est} |")
    return "\n".join(lines)


def write(rows: list[dict], out: str, device: str, arch: str, note: str,
          command: str, cuda: bool):
    """Add the estimates to ``rows`` and write them all; returns the card
    they are for (on the CPU, fitted; None for a card the model does not
    know)."""
    dims = archs.dims(arch)
    card = steptime.find_card(device) if cuda else None
    eff = steptime.Efficiency()
    if not cuda:
        card, eff = fit_first(rows, dims)
    if card is not None:
        estimate(rows, dims, card, eff)
    text = json.dumps({"device": device, "card": card and vars(card),
                       "efficiency": vars(eff), "versions": versions(),
                       "command": command, "arch": arch, "note": note,
                       "measurements": rows}, indent=1) + "\n"
    Path(out).parent.mkdir(parents=True, exist_ok=True)
    Path(out).write_text(text)
    if cuda:
        (RESULTS / "gpu_time.json").write_text(text)
    return card


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--dry-run", action="store_true",
                   help="CPU, a tiny architecture, tiny sizes (seconds)")
    p.add_argument("--out", default=str(Path(os.environ.get("OUT") or
                                              runs_dir("bench"))
                                         / "gpu_time.json"))
    args = p.parse_args(argv)
    cuda = torch.cuda.is_available() and not args.dry_run
    grid = DRY if args.dry_run else FULL
    if not (cuda or args.dry_run):
        print("no CUDA device: nothing to measure (--dry-run runs a tiny "
              "version on the CPU)")
        return 0
    device = torch.cuda.get_device_name(0) if cuda else "cpu"
    todo, note = precisions(cuda)
    command = " ".join(["python", "bench/gpu_time.py",
                        *(sys.argv[1:] if argv is None else argv)])
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        archs.build(grid["arch"], Path(tmp),
                    dtype="bfloat16" if cuda else "float32")
        for prec in todo:  # written after each: a timeout keeps the first
            rows += measure(tmp, prec, grid, cuda)
            card = write(rows, args.out, device, grid["arch"], note,
                         command, cuda)
    print(f"{device}; {grid['arch']} (random weights); estimates: "
          + (card.name if card else "none (a card the model does not know)")
          + (f"; {note}" if note else ""))
    print(table(rows))
    print(f"\nwrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
