"""Rollout throughput: dopr_lite's ``generate_rollouts`` vs bare generate.

Same model, prompts, G, sampling settings and seed for both sides, run
alternately (A, B, A, B, ...) so drift on a shared machine hits both.
Reports rollouts/s, tokens/s and the overhead ratio; writes JSON.

    python bench/rollout_overhead.py            # embedded tiny model, CPU
    python bench/rollout_overhead.py --prompts 16 --G 8 --repeats 5
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import torch

from dopr_lite.policy import load_policy
from dopr_lite.rollout import RolloutCounter, generate_rollouts
from dopr_lite.task import task_dataset


def bare(model, tok, prompts, G, max_new_tokens):
    with torch.inference_mode():
        enc = tok(prompts, return_tensors="pt", padding=True)
        ids = enc["input_ids"].repeat_interleave(G, 0)
        mask = enc["attention_mask"].repeat_interleave(G, 0)
        out = model.generate(input_ids=ids, attention_mask=mask,
                             do_sample=True, temperature=1.0, top_p=1.0,
                             top_k=None, max_new_tokens=max_new_tokens,
                             pad_token_id=tok.pad_token_id)
    return out[:, ids.shape[1]:]


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--model", default="embedded:tiny")
    p.add_argument("--prompts", type=int, default=8)
    p.add_argument("--G", type=int, default=8)
    p.add_argument("--max-new-tokens", type=int, default=48)
    p.add_argument("--repeats", type=int, default=7)
    p.add_argument("--out", default="runs/bench/rollout_overhead.json")
    a = p.parse_args(argv)
    pol = load_policy(model=a.model, use_lora=False)
    model, tok = pol.model, pol.tokenizer
    prompts = list(task_dataset("test", a.prompts)["prompt"])
    times = {"bare": [], "dopr_lite": []}
    tokens = {}
    for r in range(a.repeats + 1):  # the first round warms up
        for side in ("bare", "dopr_lite") if r % 2 else ("dopr_lite",
                                                          "bare"):
            torch.manual_seed(r)
            t0 = time.perf_counter()
            if side == "bare":
                out = bare(model, tok, prompts, a.G, a.max_new_tokens)
                n_tok = int(out.numel())
            else:
                c = RolloutCounter()
                ro = generate_rollouts(model, tok, prompts, a.G,
                                       max_new_tokens=a.max_new_tokens,
                                       counter=c)
                n_tok = int(ro.completion_ids.numel())
            dt = time.perf_counter() - t0
            if r:
                times[side].append(dt)
                tokens.setdefault(side, []).append(n_tok)
    n_seq = a.prompts * a.G
    res = {"command": " ".join(["python", "bench/rollout_overhead.py",
                                *(argv if argv is not None
                                  else sys.argv[1:])]),
           "model": a.model, "device": str(pol.device), "prompts": a.prompts,
           "G": a.G, "max_new_tokens": a.max_new_tokens,
           "repeats": a.repeats, "torch_threads": torch.get_num_threads()}
    for side, ts in times.items():
        med = statistics.median(ts)
        res[side] = {"median_s": med, "rollouts_per_s": n_seq / med,
                     "generated_tokens_per_s":
                         statistics.median(tokens[side]) / med}
    res["overhead"] = res["dopr_lite"]["median_s"] / res["bare"][
        "median_s"] - 1
    Path(a.out).parent.mkdir(parents=True, exist_ok=True)
    Path(a.out).write_text(json.dumps(res, indent=1))
    results = Path(__file__).resolve().parent / "results"
    results.mkdir(exist_ok=True)
    (results / "rollout_overhead.json").write_text(json.dumps(res, indent=1))
    print(json.dumps(res, indent=1))


if __name__ == "__main__":
    main()
