"""The embedded task's shape: what the base model solves, and how skills
carry over to each other.

1. Held-out split (the default mix): greedy accuracy and pass@8 per family
   and per tier.
2. RL pool (the default mix, 256 prompts): 8 sampled rollouts each, the
   histogram of right answers per prompt, and the shares of all-wrong,
   all-right and mixed groups at G = 8 (the calibration target: about 40%
   all-equal, most of them all-wrong; ``dopr_lite/task.py``).
3. Transfer matrix: full-batch GRPO on one family's RL prompts only (a fixed
   budget, 3 seeds), then the held-out gain on every family; the last row
   trains on all families with the same budget.

Writes ``bench/results/task_shape.json`` (with the command that made it),
with ``--update-asset`` the ``task_shape`` entry of
``dopr_lite/assets/tiny/build_info.json``, and ``task_shape.png`` in
``--out`` (``--update-figures``: also ``figures/task_shape.png``).

    python bench/task_shape.py --update-asset --update-figures   # ~6 min
    python bench/task_shape.py --seeds 0 --budget 256            # quicker
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np

from dopr_lite.config import DoprConfig
from dopr_lite.data import PromptData, load_prompts
from dopr_lite.env import runs_dir, versions
from dopr_lite.evaluation import evaluate, group_shares, success_counts
from dopr_lite.loop import train
from dopr_lite.plots import save_figure
from dopr_lite.policy import load_policy, load_tokenizer
from dopr_lite.rewards import exact_answer_reward
from dopr_lite.task import FAMILIES, TIERS
from dopr_lite.tiny import EMBEDDED_DIR

ROOT = Path(__file__).resolve().parent.parent
G = 8


def base_shape(cfg: DoprConfig) -> dict:
    """Accuracy and pass@8 per family and tier; the RL pool at G = 8."""
    pol = load_policy(cfg, use_lora=False)
    data = load_prompts(cfg, pol.tokenizer)
    out = {}
    for col in ("family", "tier"):
        r = evaluate(pol.model, pol.tokenizer, data.test,
                     exact_answer_reward, k=G, by=col,
                     max_new_tokens=cfg.max_new_tokens)
        out.setdefault("heldout", {"accuracy": r["accuracy"],
                                   f"pass@{G}": r[f"pass@{G}"],
                                   "n": r["n"]})
        out[col] = {g: {"accuracy": r[f"accuracy/{g}"],
                        f"pass@{G}": r[f"pass@{G}/{g}"]}
                    for g in (FAMILIES if col == "family" else TIERS)
                    if f"accuracy/{g}" in r}
    counts = success_counts(pol.model, pol.tokenizer, data.train,
                            exact_answer_reward, G,
                            max_new_tokens=cfg.max_new_tokens)
    out["rl_pool"] = {"n": len(counts), "G": G,
                      "histogram": np.bincount(counts.numpy(),
                                               minlength=G + 1).tolist(),
                      **group_shares(counts, G)}
    out["rl_pool"]["all_equal"] = 1 - out["rl_pool"]["mixed"]
    by_tier = {}
    for tier in TIERS:
        idx = [i for i, t in enumerate(data.train["tier"]) if t == tier]
        if idx:
            by_tier[tier] = {"n": len(idx), **group_shares(counts[idx], G)}
    out["rl_pool"]["by_tier"] = by_tier
    return out


def transfer(cfg: DoprConfig, seeds, budget: int, out_root: Path) -> dict:
    """Held-out gain per family after GRPO on each family alone."""
    data = load_prompts(cfg, load_tokenizer(cfg))
    rows = {}
    for source in (*FAMILIES, "all"):
        pool = data.train if source == "all" else data.train.filter(
            lambda r, s=source: r["family"] == s)
        gains = []
        for seed in seeds:
            run_cfg = DoprConfig(**{**cfg.to_dict(), "selector": "full",
                                    "max_rollouts": budget, "seed": seed,
                                    "eval_every": 10_000, "eval_k": 0,
                                    "save_every": 0, "out_dir": str(
                                        out_root / f"{source}-s{seed}")})
            r = train(run_cfg, data=PromptData(pool, data.test, {}),
                      resume=False, progress=False, log=lambda *a: None)
            base, final = r.evals[0], r.evals[-1]
            gains.append({f: final[f"accuracy/{f}"] - base[f"accuracy/{f}"]
                          for f in FAMILIES})
            print(f"train on {source:<5} seed {seed}: " + ", ".join(
                f"{f} {g:+.3f}" for f, g in gains[-1].items()), flush=True)
        rows[source] = {f: {"mean": float(np.mean([g[f] for g in gains])),
                            "sd": float(np.std([g[f] for g in gains],
                                               ddof=1)) if len(gains) > 1
                            else 0.0} for f in FAMILIES}
    return rows


def figure(shape: dict):
    fig, (a, b) = plt.subplots(1, 2, figsize=(11, 3.6))
    pool = shape["rl_pool"]
    a.bar(range(G + 1), pool["histogram"], color="tab:blue")
    a.set(xlabel=f"right answers out of G = {G}", ylabel="prompts",
          title=f"RL pool under the base model: {pool['all_wrong']:.0%} "
          f"all wrong, {pool['all_right']:.0%} all right")
    t = shape["transfer"]
    m = np.array([[t[s][f]["mean"] for f in FAMILIES] for s in t])
    im = b.imshow(m, cmap="viridis")
    b.set(xticks=range(len(FAMILIES)), xticklabels=FAMILIES,
          yticks=range(len(t)), yticklabels=[f"train {s}" for s in t],
          xlabel="held-out gain on", title="transfer: GRPO on one skill")
    for i in range(m.shape[0]):
        for j in range(m.shape[1]):
            b.text(j, i, f"{m[i, j]:+.2f}", ha="center", va="center",
                   color="w" if m[i, j] < m.max() / 2 else "k", fontsize=8)
    fig.colorbar(im, ax=b)
    fig.tight_layout()
    return fig


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2],
                   help="transfer-matrix seeds (default: 0 1 2)")
    p.add_argument("--budget", type=int, default=512,
                   help="rollouts of each transfer run (default: 512)")
    p.add_argument("--out", default=runs_dir("bench/task_shape"),
                   help="folder for runs and the figure "
                   "(default: runs/bench/task_shape)")
    p.add_argument("--update-asset", action="store_true",
                   help="also write the shape into the shipped model's "
                   "build_info.json")
    p.add_argument("--update-figures", action="store_true",
                   help="also write figures/task_shape.png")
    args = p.parse_args(argv)
    t0 = time.time()
    cfg = DoprConfig()  # the embedded model and the default mix
    shape = base_shape(cfg)
    print(json.dumps({k: v for k, v in shape.items()}, indent=1))
    out = Path(args.out)
    shape["transfer"] = transfer(cfg, args.seeds, args.budget, out)
    shape["transfer_settings"] = {"seeds": args.seeds,
                                  "budget": args.budget, "rule": "full"}
    record = {"command": " ".join(["python", "bench/task_shape.py", *(
                  sys.argv[1:] if argv is None else argv)]),
              "seconds": round(time.time() - t0), "versions": versions(),
              "mix": cfg.task_mix().__dict__, **shape}
    results = ROOT / "bench" / "results"
    results.mkdir(parents=True, exist_ok=True)
    (results / "task_shape.json").write_text(json.dumps(record, indent=1))
    fig = figure(shape)
    print(f"figure: {save_figure(fig, 'task_shape', out)}")
    if args.update_figures:
        print(f"figure: {save_figure(fig, 'task_shape')}")
    if args.update_asset:
        info_path = EMBEDDED_DIR / "build_info.json"
        info = json.loads(info_path.read_text())
        info["task_shape"] = {k: record[k] for k in (
            "command", "mix", "heldout", "family", "tier", "rl_pool",
            "transfer", "transfer_settings")}
        info_path.write_text(json.dumps(info, indent=1))
    print(json.dumps({"rl_pool": shape["rl_pool"],
                      "transfer": shape["transfer"]}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
