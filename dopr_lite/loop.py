"""The training loop: pick -> roll out -> reward -> advantages -> update ->
tell the selector.

:func:`train_step` is one step, on a :class:`Run` (the policy, data, reward,
rule, optimizer and ledgers); :func:`train` repeats it until the budget is
spent, evaluating, logging and checkpointing between steps.  One loop
serves every selection rule: each step draws a candidate batch of
``prompts_per_step`` prompt indices (epoch-wise without replacement), the
:class:`~dopr_lite.select.Selector` picks which get ``G`` rollouts, and the
GRPO update runs on those.  Budgets are in steps and/or rollouts.

Reproducibility: every step reseeds torch from ``(seed, step)`` and the
candidate draw is a pure function of ``(seed, step)``, so a resumed run
replays the uninterrupted one; evaluation samples under ``fork_rng`` with
its own seed, so it never changes the training trajectory.

Outputs in ``cfg.out_dir``: ``config.json``, ``metrics.jsonl`` (one row per
step), ``eval.jsonl`` (one row per evaluation), ``metrics.csv`` and
``ckpt-NNNNNN/`` checkpoints (:mod:`dopr_lite.checkpoint`).  Drawing the
run is left to the caller (:func:`dopr_lite.plots.plot_runs`).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

import torch
from transformers import GenerationConfig

from dopr_lite.checkpoint import (check_resumable, discard, restore,
                                  save_checkpoint)
from dopr_lite.config import DoprConfig
from dopr_lite.data import PromptData
from dopr_lite.env import peak_memory_gb, reset_peak_memory
from dopr_lite.errors import ConfigError, NonFiniteLogits
from dopr_lite.evaluation import evaluate
from dopr_lite.grpo import GRPOSettings, group_advantages, grpo_update
from dopr_lite.groups import Groups, Request, StepRollouts, rollout_stats
from dopr_lite.guards import NonFiniteStreak, oom_advice, stop_after_step
from dopr_lite.inputs import load_inputs
from dopr_lite.policy import Policy
from dopr_lite.preflight import warm_start
from dopr_lite.rewards import get_reward
from dopr_lite.rollout import (RolloutCounter, concat_rollouts,
                               generate_rollouts, generation_config,
                               prompt_entropy, take_rows)
from dopr_lite.runlog import Progress, RunLog, RunResult
from dopr_lite.select import (DRAW_SEED_STRIDE, PromptHistory, SelectContext,
                              Selector, candidate_batch, feedback,
                              make_selector)
from dopr_lite.steprow import ALL_EQUAL  # the routine skip

EVAL_SEED_OFFSET = 10_007  # evaluation samples with seed + this
GROUP_BY = "family"  # per-skill accuracy too, where the data has skills


def step_seed(seed: int, step: int) -> int:
    """The torch seed of ``step``: a pure function of (seed, step)."""
    return (seed * 1_000_003 + step * 7_919 + 17) % (2**63 - 1)


@dataclass
class Run:
    """What a step reads and changes: the policy and its optimizer, the
    prompt pool and held-out set, the reward, the selection rule, and the
    ledgers (rollout counts, prompt visits), and the sampling and update
    settings (one ``GenerationConfig``, one ``GRPOSettings``, built from
    ``cfg`` once).  ``Run.start(cfg)``
    builds whatever is not given, checking the model source, the data and
    a pre-flight file before it loads the model, so that a bad path, row
    or file fails in seconds."""

    cfg: DoprConfig
    policy: Policy
    data: PromptData
    reward_fn: object
    selector: Selector
    optimizer: torch.optim.Optimizer
    counter: RolloutCounter = field(default_factory=RolloutCounter)
    history: PromptHistory = field(default_factory=PromptHistory)
    shuffle_rewards: bool = False  # a control: rewards permuted, no signal
    generation: GenerationConfig = field(init=False)  # cfg's sampling
    grpo: GRPOSettings = field(init=False)  # cfg's update
    # what the current step ran, for the step-time model
    # (dopr_lite.steptime): its generate calls as [rows, prompt width,
    # decode steps] and the prompts prefilled for the policy's entropy;
    # context() starts a step's with none
    gen_calls: list = field(default_factory=list, init=False)
    entropy_rows: int = field(default=0, init=False)

    def __post_init__(self):
        self.generation = generation_config(self.cfg)
        self.grpo = GRPOSettings.from_config(self.cfg)

    @classmethod
    def start(cls, cfg: DoprConfig, *, policy: Policy | None = None,
              data: PromptData | None = None, reward_fn=None,
              selector: Selector | None = None, shuffle_rewards=False,
              log=print) -> "Run":
        # a bad model path, data row or pre-flight file fails before the
        # model loads: in seconds, not minutes
        policy, data, warm = load_inputs(
            cfg, policy=policy, data=data,
            check=lambda loaded: warm_start(cfg, loaded.train))
        for reason, info in data.skipped.items():
            log(f"skipped {info['count']} rows ({reason}); first ids "
                f"{info['first_ids']}")
        params = list(policy.trainable_parameters().values())
        if not params:
            raise ConfigError("the model has no trainable parameters")
        run = cls(cfg, policy, data, reward_fn or get_reward(cfg.reward),
                  selector or make_selector(cfg.selector,
                                            **cfg.selector_args),
                  torch.optim.AdamW(params, lr=cfg.learning_rate,
                                    weight_decay=cfg.weight_decay),
                  shuffle_rewards=shuffle_rewards)
        if warm:  # what the pre-flight measured, at what it cost
            run.selector.warm_start(warm.counts)
            run.counter.add("probe", warm.rollouts, warm.tokens)
        return run

    def context(self, step: int) -> SelectContext:
        """What the selector sees at ``step``; starts the step's
        :attr:`gen_calls` and :attr:`entropy_rows` afresh."""
        self.gen_calls, self.entropy_rows = [], 0
        return SelectContext(
            step=step, history=self.history, seed=self.cfg.seed,
            num_generations=self.cfg.num_generations,
            probe_rewards=lambda prompts, n: sample_groups(
                self, [Request(prompts, n, "probe")])[0].rewards,
            entropy=self._entropy)

    def _entropy(self, prompts: list[int]) -> torch.Tensor:
        """The policy's first-token entropy on pool prompts ``prompts``
        (one forward pass), counted in :attr:`entropy_rows`."""
        self.entropy_rows += len(prompts)
        return prompt_entropy(
            self.policy.model, self.policy.tokenizer,
            [self.data.train[i]["prompt"] for i in prompts],
            self.cfg.temperature)

    def state_dict(self) -> dict:
        return {"counter": self.counter.state_dict(),
                "history": self.history.state_dict(),
                "selector": self.selector.state_dict()}

    def load_state_dict(self, state: dict) -> None:
        self.counter.load_state_dict(state["counter"])
        self.history.load_state_dict(state["history"])
        self.selector.load_state_dict(state["selector"])


def sample_groups(run: Run, requests: list[Request]) -> list[Groups]:
    """Each request's rollouts, scored by the run's reward, all in ONE
    ``generate`` call: the group a step trains on and the probes its
    selection rule asks for share the call (latency, not rows, is what a
    small call costs)."""
    cfg, pool = run.cfg, run.data.train
    flat = [i for r in requests for i in r.prompts]
    counts = [r.per_prompt for r in requests for _ in r.prompts]
    # roll out
    ro = generate_rollouts(
        run.policy.model, run.policy.tokenizer,
        [pool[i]["prompt"] for i in flat], counts,
        generation_config=run.generation, counter=run.counter,
        kind=[r.kind for r in requests for _ in r.prompts],
        with_logprobs=cfg.num_iterations > 1 and any(
            r.kind == "train" for r in requests),
        micro_batch=cfg.micro_batch)
    run.gen_calls.append([len(ro), ro.prompt_ids.shape[1],
                          ro.completion_ids.shape[1]])
    # reward
    columns = {c: [pool[i][c] for i, n in zip(flat, counts, strict=True)
                   for _ in range(n)]
               for c in pool.column_names if c != "prompt"}
    rewards = torch.tensor(run.reward_fn(ro.texts, **columns),
                           dtype=torch.float32)
    out, start = [], 0
    for r in requests:
        n = r.per_prompt
        rows = list(range(start, start + len(r.prompts) * n))
        out.append(Groups(list(r.prompts), take_rows(ro, rows, n),
                          rewards[rows].view(len(r.prompts), n)))
        start = rows[-1] + 1
    return out


def roll_out(run: Run, ctx: SelectContext) -> StepRollouts:
    """Pick prompts from the step's candidate batch; roll each out G times.

    Returns every group generated, the groups to train on and the probes
    the rule asked for on the next step's candidates
    (:meth:`~dopr_lite.select.Selector.probes_ahead`), which share the
    step's ``generate`` call.  A rule that refills
    (``shape.draws > 1``: DAPO's dynamic sampling) drops all-equal groups
    and draws further candidate batches until ``prompts_per_step`` groups
    are kept or its draws are spent; every rollout generated counts as
    cost.
    """
    cfg, shape, pool = run.cfg, run.selector.shape, len(run.data.train)
    seen, kept, n_kept, probed = [], [], 0, None
    for draw in range(shape.draws):
        candidates = candidate_batch(ctx.step, pool, cfg.prompts_per_step,
                                     cfg.seed + DRAW_SEED_STRIDE * draw)
        picks = run.selector.select(candidates, ctx)  # pick
        requests = [Request(picks, cfg.num_generations, "train")]
        if draw == 0:  # even at the last step: a run resumed with a
            #            larger budget must replay the longer run
            ahead, n = run.selector.probes_ahead(candidate_batch(
                ctx.step + 1, pool, cfg.prompts_per_step, cfg.seed), ctx)
            if ahead:
                requests.append(Request(ahead, n, "probe"))
        # roll out and reward, the probes ahead in the same call
        groups, *ahead_groups = sample_groups(run, requests)
        probed = ahead_groups[0] if ahead_groups else probed
        seen.append(groups)
        keep = list(range(len(groups.prompts)))
        if shape.draws > 1:
            keep = [g for g in keep if groups.rewards[g].max()
                    > groups.rewards[g].min()][:cfg.prompts_per_step - n_kept]
        if keep:
            kept.append(groups.subset(keep))
            n_kept += len(keep)
        if n_kept >= cfg.prompts_per_step:
            break
    batch = Groups([i for g in kept for i in g.prompts],
                   concat_rollouts([g.rollouts for g in kept],
                                   run.policy.tokenizer.pad_token_id),
                   torch.cat([g.rewards for g in kept])) if kept else None
    return StepRollouts(seen, batch, probed)


def update(run: Run, batch: Groups) -> dict:
    """Group-relative advantages, then GRPO's ``num_iterations`` updates.

    None if every advantage is 0 (all groups' rewards were equal) and the
    loss has no other term: with an entropy bonus or a KL penalty the step
    still has a gradient, so it is taken."""
    cfg, rewards = run.cfg, batch.rewards
    if run.shuffle_rewards:
        perm = torch.randperm(rewards.numel())
        rewards = rewards.view(-1)[perm].view_as(rewards)
    adv = group_advantages(rewards, cfg.scale_rewards).view(-1)
    if not (adv.abs().max() > 0 or run.grpo.regularised):
        return {"skipped": ALL_EQUAL, "nonfinite": False}
    trainable = list(run.policy.trainable_parameters().values())
    for _ in range(cfg.num_iterations):
        stats = grpo_update(run.policy.model, run.optimizer, batch.rollouts,
                            adv, run.grpo, trainable=trainable)
    return stats


def train_step(run: Run, step: int, last: dict | None = None) -> dict:
    """One step: pick -> roll out -> reward -> advantages -> update -> tell
    the selector.  Returns the step's metrics row, whose running totals
    (``updates``, ``train_seconds``) continue ``last``, the previous row."""
    t0, shape, last = time.time(), run.selector.shape, last or {}
    torch.manual_seed(step_seed(run.cfg.seed, step))
    reset_peak_memory()
    ctx = run.context(step)
    # 1-3. pick, roll out, reward (the rule picks; one generate call)
    try:
        with oom_advice(run.cfg, "rollouts", shape):
            rolled = roll_out(run, ctx)
    except NonFiniteLogits as err:  # skip the step; NonFiniteStreak counts
        rolled = StepRollouts()
        stats = {"skipped": f"non-finite logits in generation ({err})",
                 "nonfinite": True}
    # 4-5. advantages, update
    t_update = time.time()
    if rolled.batch is not None:
        with oom_advice(run.cfg, "update", shape):
            stats = update(run, rolled.batch)
    elif rolled.seen:
        stats = {"skipped": ALL_EQUAL, "nonfinite": False}
    # 6. tell the selector every group's rewards, and the probes'
    for groups in rolled.seen:
        feedback(run.selector, groups.prompts, groups.rewards, ctx)
    if rolled.probed is not None:
        run.selector.observe_probes(rolled.probed.prompts,
                                    rolled.probed.rewards, ctx)
    row = {"step": step + 1, **rollout_stats(run, rolled), **stats,
           "rollout_seconds": t_update - t0,
           "update_seconds": time.time() - t_update,
           "peak_memory_gb": peak_memory_gb(),
           "seconds": time.time() - t0}
    return row | {
        "updates": last.get("updates", 0) + (not row["skipped"]),
        "train_seconds": last.get("train_seconds", 0.0) + row["seconds"]}


def evaluate_run(run: Run, step: int, last: dict) -> dict:
    """Held-out accuracy now, as an ``eval.jsonl`` row (``last``: the last
    metrics row, for the cumulative counts)."""
    cfg, pol = run.cfg, run.policy
    with oom_advice(cfg, "evaluation", run.selector.shape):
        scores = evaluate(pol.model, pol.tokenizer, run.data.test,
                          run.reward_fn, k=cfg.eval_k,
                          generation_config=run.generation,
                          batch_size=cfg.eval_batch,
                          seed=cfg.seed + EVAL_SEED_OFFSET,
                          counter=run.counter, by=GROUP_BY if GROUP_BY
                          in run.data.test.column_names else None)
    return {"step": step, "rollouts": run.counter.cost,
            "updates": last.get("updates", 0),
            "train_seconds": last.get("train_seconds", 0.0), **scores}


def budget_left(cfg: DoprConfig, step: int, counter: RolloutCounter) -> bool:
    if cfg.max_steps and step >= cfg.max_steps:
        return False
    return not (cfg.max_rollouts and counter.cost >= cfg.max_rollouts)


def checkpoint(run: Run, step: int, seconds: float) -> None:
    """Save the run at ``step`` (``seconds``: training time so far)."""
    save_checkpoint(Path(run.cfg.out_dir), step, run.policy, run.optimizer,
                    {"step": step, "elapsed": seconds, **run.state_dict()})


def open_run(cfg: DoprConfig, *, resume: bool, log=print,
             **given) -> tuple[Run, RunLog, int, float]:
    """The run in ``cfg.out_dir``, ready for its next step: built
    (:meth:`Run.start` with ``given``), resumed from its last checkpoint
    unless ``resume=False`` (then the old run's checkpoints go), its config
    saved and its logs opened at that step.  Returns (run, logs, step,
    seconds trained so far)."""
    if not (cfg.max_steps or cfg.max_rollouts):
        raise ConfigError("set a budget: config field 'max_steps' or "
                          "'max_rollouts' must be > 0")
    out = Path(cfg.out_dir)
    if resume:
        check_resumable(out, cfg.to_dict())
    run = Run.start(cfg, log=log, **given)
    state = restore(out, run.policy, run.optimizer, log) if resume else None
    if not resume:  # starting over: the replaced run's checkpoints go
        discard(out)
    out.mkdir(parents=True, exist_ok=True)
    cfg.save(out / "config.json")
    step, elapsed = (state["step"], state["elapsed"]) if state else (0, 0.0)
    if state:
        run.load_state_dict(state)
        log(f"resumed from {state['path']} (step {step}, "
            f"{run.counter.cost} rollouts)")
    return run, RunLog(out, step, fresh=state is None, log=log), step, elapsed


def train(cfg: DoprConfig, *, policy: Policy | None = None,
          data: PromptData | None = None, reward_fn=None,
          selector: Selector | None = None, resume: bool = True,
          progress: bool = True, log=print,
          shuffle_rewards: bool = False) -> RunResult:
    """Run GRPO with ``cfg.selector`` until the budget is spent.

    Resumes the run in ``cfg.out_dir`` unless ``resume=False``: a finished
    run returns its result, and a run with other settings there is refused
    (ConfigError).  Nothing is written before the config, the model source
    and the data have been checked.  ``shuffle_rewards`` permutes each
    batch's rewards across rollouts before the update (a control that
    should learn nothing).
    """
    t_start, out = time.time(), Path(cfg.out_dir)
    run, logs, step, elapsed = open_run(
        cfg, resume=resume, log=log, policy=policy, data=data,
        reward_fn=reward_fn, selector=selector,
        shuffle_rewards=shuffle_rewards)
    t_origin = t_start - elapsed  # a run's time adds up over resumes
    if step and not budget_left(cfg, step, run.counter) and logs.evals \
            and logs.evals[-1]["step"] == step:  # finished and evaluated
        log(f"{out}: this run is finished ({step} steps, {run.counter.cost} "
            "rollouts); its result follows (--fresh starts it over)")
        return RunResult(out, logs.metrics, logs.evals, run.counter,
                         seconds=elapsed)
    if not logs.evals:
        logs.add_eval(evaluate_run(run, step, logs.last_metrics))
    bar = Progress(cfg, run.counter, step, on=progress)
    nonfinite = NonFiniteStreak()
    with stop_after_step(log) as interrupted:
        while budget_left(cfg, step, run.counter):
            row = train_step(run, step, logs.last_metrics)
            step += 1
            logs.add_metrics(row)
            nonfinite.check(row, log)
            bar.update(row, logs.evals[-1]["accuracy"])
            if step % cfg.eval_every == 0:
                logs.add_eval(evaluate_run(run, step, row))
            # the last step is saved once, after its final evaluation: a
            # checkpoint before that evaluation would let a run killed in
            # between resume as finished with the evaluation uncounted
            if (cfg.save_every and step % cfg.save_every == 0
                    and budget_left(cfg, step, run.counter)):
                checkpoint(run, step, time.time() - t_origin)
            if interrupted():
                bar.close()
                checkpoint(run, step, time.time() - t_origin)
                log(f"checkpoint saved at step {step} in {out}; run again "
                    "to resume")
                raise KeyboardInterrupt
    bar.close()
    if logs.evals[-1]["step"] != step:
        logs.add_eval(evaluate_run(run, step, logs.last_metrics))
    checkpoint(run, step, time.time() - t_origin)
    logs.write_csv()
    return RunResult(out, logs.metrics, logs.evals, run.counter,
                     seconds=time.time() - t_origin)
