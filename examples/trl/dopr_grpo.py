"""DoPR inside TRL's GRPOTrainer: one script for one process or many.

    # one process (CPU or one GPU), the embedded tiny model and task
    python examples/trl/dopr_grpo.py --max-rollouts 256

    # several processes: torchrun (CPU: gloo) or accelerate (GPUs, DDP)
    torchrun --nproc_per_node 2 examples/trl/dopr_grpo.py
    accelerate launch --config_file examples/trl/accelerate_multi_gpu.yaml \\
        examples/trl/dopr_grpo.py --preset consumer_gpu

    # resume after a crash, from the newest checkpoint in --out
    python examples/trl/dopr_grpo.py --resume

Model loading, LoRA/QLoRA, generation and the update are TRL's; dopr_lite
supplies the config presets, data, rewards, and the prompt selection rule
(``--set selector=full`` gives plain full-batch GRPO).  After training, the
main process evaluates on the held-out split with dopr_lite's evaluator.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch
from accelerate import PartialState

from dopr_lite.cli import parse_overrides
from dopr_lite.config import PRESETS
from dopr_lite.data import load_prompts
from dopr_lite.evaluation import evaluate
from dopr_lite.integrations.trl import dopr_trainer
from dopr_lite.policy import load_tokenizer
from dopr_lite.rewards import get_reward


def main(argv=None) -> dict:
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--preset", choices=sorted(PRESETS), default="tiny")
    p.add_argument("--max-rollouts", type=int, default=256)
    p.add_argument("--set", action="append", metavar="FIELD=VALUE",
                   help="any dopr_lite config field, e.g. selector=full")
    p.add_argument("--out", default="runs/trl/dopr")
    p.add_argument("--resume", action="store_true")
    args = p.parse_args(argv)
    overrides = {"selector": "dopr", "max_rollouts": args.max_rollouts,
                 **parse_overrides(args.set or [])}
    cfg = PRESETS[args.preset](**overrides)
    # on CPUs accelerate only sees torchrun's processes when told cpu=True
    state = PartialState(cpu=not torch.cuda.is_available())
    tok = load_tokenizer(cfg)
    data = load_prompts(cfg, tok)
    trainer = dopr_trainer(cfg, data.train, tok, args.out,
                           processes=state.num_processes)
    trainer.train(resume_from_checkpoint=True if args.resume else None)
    result = {"processes": state.num_processes,
              "backend": str(state.backend),
              "rollouts": trainer.counter.cost,
              "prompts_seen": len(trainer.history.visits),
              "skipped_updates": trainer.skipped_updates}
    if state.is_main_process:
        model = trainer.accelerator.unwrap_model(trainer.model)
        result.update(evaluate(model, tok, data.test, get_reward(cfg.reward),
                               k=0, max_new_tokens=cfg.max_new_tokens,
                               batch_size=cfg.eval_batch))
        Path(args.out).mkdir(parents=True, exist_ok=True)
        (Path(args.out) / "result.json").write_text(json.dumps(result))
        print(json.dumps(result))
    return result


if __name__ == "__main__":
    main()
