"""The DoPR rule inside TRL's ``GRPOTrainer``: scale out without a new trainer.

:class:`DoprGRPOTrainer` is TRL's ``GRPOTrainer`` (so its LoRA/QLoRA options,
vLLM, accelerate and DeepSpeed all work unchanged) with one difference: each
time it generates, the prompts come from a dopr_lite selector instead of the
dataloader's shuffle.  The selector sees the same things as in dopr_lite's
own loop: a candidate batch (``prompts_per_step`` prompts, the same
epoch-wise draw as :func:`dopr_lite.select.candidate_batch`), the
per-prompt visit counts, and the policy's first-token entropy on the
candidates.

How it hooks in (TRL 1.x; the two methods it overrides are internal, hence
the version pin in the ``trl`` extra):

* ``_generate_and_score_completions``: before generating, every process runs
  the selector (so that a forward pass under ZeRO-3 involves every rank),
  process 0's choice is broadcast, and each process takes its contiguous
  slice of the chosen prompts repeated G times -- the layout TRL's own
  sampler produces, so groups and advantages are formed as usual;
* ``_calculate_rewards``: TRL gathers the rewards of all processes; the
  selector is updated with them (the column of ``feedback_reward``, by
  default the first reward function), on every process alike.

The generation batch must hold exactly what the rule picks (its
:class:`~dopr_lite.select.Shape`): one prompt for the one-prompt rules
(``per_device_train_batch_size * steps_per_generation * processes ==
num_generations``), ``prompts_per_step`` prompts for ``full``.  TRL trains
on every rollout it generates, so rules that roll out more than they train
(probes, refills: ``fixed``, ``dynamic``, DoPR with probes) are refused
here; ``dopr`` runs with ``probe=0`` (its volatility learns from the trained
groups only) unless ``selector_args`` asks for probes, which is refused.

A generation whose groups are all all-equal (every advantage 0) makes no
optimiser step, as in dopr_lite's loop.  TRL would step AdamW on the zero
gradient, and with zero gradients AdamW keeps moving the weights along its
momentum: the last informative group is applied again at every all-equal
step.  With one prompt per step most late steps are all-equal, and that
replay is what made TRL's DoPR runs drift and collapse
(``bench/README.md``, stability).  The trainer skips such a generation's
forward and backward passes (its loss is 0 and no parameter gets a
gradient, so AdamW leaves every weight as it is).  It cannot under
DeepSpeed, whose engine steps inside ``backward``, or when one accumulation
cycle spans two generations, and warns; with ``beta > 0`` the KL term has
a gradient, so the generation trains, as in dopr_lite's loop.

Rollouts are counted exactly (``dopr/rollouts`` in TRL's logs; skipped
updates in ``dopr/skipped_updates``).  The selector's state is one of the
trainer's stateful callbacks (``DoprState`` in each checkpoint's
``trainer_state.json``), so ``train(resume_from_checkpoint=...)`` restores
it with TRL's own state.
"""

from __future__ import annotations

import warnings

import torch
from accelerate.utils import broadcast_object_list
from transformers import TrainerCallback
from transformers.trainer_callback import ExportableState
from trl import GRPOConfig, GRPOTrainer

from dopr_lite.config import DoprConfig
from dopr_lite.errors import ConfigError
from dopr_lite.policy import lora_config, quantization_config, resolve_source
from dopr_lite.rewards import get_reward
from dopr_lite.rollout import RolloutCounter, prompt_entropy
from dopr_lite.select import (SELECTORS, PromptHistory, SelectContext,
                              Selector, candidate_batch, feedback,
                              make_selector)



def trl_selector(selector: str | Selector, args: dict | None = None
                 ) -> Selector:
    """The selector a TRL run uses: ``dopr`` without probes unless asked;
    ConfigError for a rule that rolls out more than it trains."""
    if isinstance(selector, str):
        args = dict(args or {})
        # no probes in TRL unless asked: see above
        args = {**SELECTORS[selector].PROBE_FREE, **args} \
            if selector in SELECTORS else args
        selector = make_selector(selector, **args)
    if not selector.shape.trains_all_it_generates:
        runs = [n for n, cls in SELECTORS.items() if make_selector(
            n, **cls.PROBE_FREE).shape.trains_all_it_generates]
        raise ConfigError(
            f"selector {selector.name!r} with {args or 'its defaults'} is "
            "not supported inside TRL: it rolls out more than it trains "
            f"(probes or refills; for dopr set probe=0). Rules that run "
            f"there: {runs}")
    return selector


def grpo_args(cfg: DoprConfig, output_dir: str, processes: int = 1,
              **overrides):
    """TRL's ``GRPOConfig`` with the settings of a :class:`DoprConfig`.

    Same G, lengths, sampling, learning rate (constant), clipping, loss,
    reward scaling, KL weight and seed as dopr_lite's loop; the per-device
    batch holds one generation (``prompts x G`` rollouts) split over
    ``processes``; the budget becomes ``max_steps``.
    """
    G = cfg.num_generations
    shape = trl_selector(cfg.selector, cfg.selector_args).shape
    prompts = shape.picks or cfg.prompts_per_step
    per_step = prompts * G
    if per_step % processes:
        raise ConfigError(
            f"a generation of {prompts} prompt(s) x G={G} = {per_step} "
            f"rollouts cannot be split evenly over {processes} processes; "
            "change num_generations or the process count")
    if cfg.entropy_coef:
        raise ConfigError("config field 'entropy_coef': TRL's GRPO has no "
                          "entropy bonus; set it to 0")
    steps = cfg.max_steps or -(-cfg.max_rollouts // per_step)
    cuda = torch.cuda.is_available()
    kwargs = dict(
        output_dir=output_dir, seed=cfg.seed, max_steps=steps,
        per_device_train_batch_size=per_step // processes,
        num_generations=G, max_completion_length=cfg.max_new_tokens,
        temperature=cfg.temperature, top_p=cfg.top_p, top_k=cfg.top_k,
        learning_rate=cfg.learning_rate, lr_scheduler_type="constant",
        weight_decay=cfg.weight_decay, max_grad_norm=cfg.max_grad_norm,
        loss_type=cfg.loss_type, scale_rewards=cfg.scale_rewards,
        epsilon=cfg.epsilon, epsilon_high=cfg.epsilon_high, beta=cfg.beta,
        num_iterations=cfg.num_iterations,
        bf16=cuda and cfg.dtype == "bfloat16", use_cpu=not cuda,
        model_init_kwargs={"dtype": cfg.dtype},
        logging_steps=1, report_to=[], disable_tqdm=True,
        save_strategy="steps" if cfg.save_every else "no",
        save_steps=cfg.save_every or 500)
    # transformers 5 renamed gradient_checkpointing (deprecated in v6)
    ckpt = ("activation_checkpointing" if "activation_checkpointing" in
            GRPOConfig.__dataclass_fields__ else "gradient_checkpointing")
    kwargs[ckpt] = cfg.gradient_checkpointing
    kwargs.update(overrides)
    return GRPOConfig(**kwargs)


def dopr_trainer(cfg: DoprConfig, train_dataset, tokenizer,
                 output_dir: str, processes: int = 1,
                 **kwargs) -> "DoprGRPOTrainer":
    """A :class:`DoprGRPOTrainer` set up as ``cfg`` says: TRL loads the
    model (4-bit through ``quantization_config``, LoRA through
    ``peft_config``), the reward is ``cfg.reward``, the rule
    ``cfg.selector``.  ``kwargs`` go to ``grpo_args`` (TRL's config)."""
    if cfg.preflight:
        raise ConfigError("config field 'preflight': the TRL integration "
                          "does not start a rule from a pre-flight (its "
                          "rollouts would go uncounted); unset preflight, "
                          "or train with dopr_lite's own loop")
    return DoprGRPOTrainer(
        model=resolve_source(cfg.model), reward_funcs=get_reward(cfg.reward),
        args=grpo_args(cfg, output_dir, processes, **kwargs),
        train_dataset=train_dataset, processing_class=tokenizer,
        peft_config=lora_config(cfg),
        quantization_config=(quantization_config(cfg) if cfg.load_in_4bit
                             else None),
        selector=cfg.selector, selector_args=cfg.selector_args,
        prompts_per_step=cfg.prompts_per_step)


class DoprGRPOTrainer(GRPOTrainer):
    """``GRPOTrainer`` whose prompts are picked by a dopr_lite selector.

    Takes every ``GRPOTrainer`` argument, plus ``selector`` (a name or a
    :class:`~dopr_lite.select.Selector`), ``selector_args``,
    ``prompts_per_step`` (candidates per generation) and ``feedback_reward``
    (which reward function's column the selector learns from).
    """

    def __init__(self, *args, selector: str | Selector = "dopr",
                 selector_args: dict | None = None,
                 prompts_per_step: int = 8, feedback_reward: int = 0,
                 **kwargs):
        selector = trl_selector(selector, selector_args)
        super().__init__(*args, **kwargs)
        self.selector = selector
        self.prompts_per_step = prompts_per_step
        self.feedback_reward = feedback_reward
        self.history = PromptHistory()
        self.counter = RolloutCounter()
        self.generation = 0  # selection steps so far (candidate draws)
        self.skipped_updates = 0  # generations with every advantage 0
        self._chosen: list[int] | None = None
        self._skip = False  # the buffered generation trains nothing
        per_generation = self.args.generation_batch_size // \
            self.num_generations
        want = selector.shape.picks or prompts_per_step
        if per_generation != want:
            raise ConfigError(
                f"the generation batch holds {per_generation} prompts "
                f"(generation_batch_size {self.args.generation_batch_size} / "
                f"num_generations {self.num_generations}) but selector "
                f"{selector.name!r} picks {want}; set "
                "per_device_train_batch_size * steps_per_generation * "
                f"processes = {want * self.num_generations}")
        # an all-equal generation's passes and optimiser step can be
        # skipped unless DeepSpeed steps inside backward or an accumulation
        # cycle spans two generations (whose gradients must not be dropped
        # together); with beta > 0 its KL term has a gradient: it trains
        why_not = ("DeepSpeed steps the optimiser inside backward"
                   if self.is_deepspeed_enabled else
                   "an accumulation cycle spans two generations"
                   if (self.args.steps_per_generation * self.num_iterations)
                   % self.args.gradient_accumulation_steps else "")
        self._skip_all_equal = not why_not and self.beta == 0
        if why_not:
            warnings.warn(
                f"DoprGRPOTrainer: {why_not}, so generations whose "
                "advantages are all 0 still make an AdamW step (on momentum "
                "alone); one-prompt rules are less stable than with skips",
                stacklevel=2)
        if self.args.restore_callback_states_from_checkpoint:
            raise ConfigError(
                "restore_callback_states_from_checkpoint=True would rebuild "
                "DoprState without its trainer; leave it False: the trainer "
                "restores the selector's state from the checkpoint itself")
        self.add_callback(DoprState(self))

    # --- selection -----------------------------------------------------------
    def _prompt_text(self, index: int) -> str:
        prompt = self.train_dataset[index]["prompt"]
        if isinstance(prompt, str):
            return prompt
        return self.processing_class.apply_chat_template(
            prompt, tokenize=False, add_generation_prompt=True)

    def _entropy(self, indices: list[int]) -> torch.Tensor:
        model = self.accelerator.unwrap_model(self.model)
        return prompt_entropy(model, self.processing_class,
                              [self._prompt_text(i) for i in indices],
                              self.temperature).cpu()

    def _context(self) -> SelectContext:
        return SelectContext(step=self.generation, history=self.history,
                             num_generations=self.num_generations,
                             seed=self.args.seed, probe_rewards=None,
                             entropy=self._entropy)

    def _select_inputs(self, n_local: int) -> list[dict]:
        candidates = candidate_batch(self.generation, len(self.train_dataset),
                                     self.prompts_per_step, self.args.seed)
        chosen = self.selector.select(candidates, self._context())
        chosen = broadcast_object_list([list(chosen)], from_process=0)[0]
        G, acc = self.num_generations, self.accelerator
        rows = [i for i in chosen for _ in range(G)]
        if len(rows) != n_local * acc.num_processes:
            raise ConfigError(f"selector picked {len(chosen)} prompts x G="
                              f"{G}, but the generation batch holds "
                              f"{n_local * acc.num_processes} rollouts")
        self._chosen = chosen
        mine = rows[acc.process_index * n_local:
                    (acc.process_index + 1) * n_local]
        return [self.train_dataset[i] for i in mine]

    def _generate_and_score_completions(self, inputs):
        training = self.model.training  # evaluation keeps TRL's own prompts
        if training:
            inputs = self._select_inputs(len(inputs))
        out = super()._generate_and_score_completions(inputs)
        if training and self._skip_all_equal:  # each process holds a
            # slice: decide on all of them
            top = self.accelerator.gather(
                out["advantages"].detach().abs().max().reshape(1))
            self._skip = not bool(top.max() > 0)
            self.skipped_updates += self._skip
        return out

    def compute_loss(self, model, inputs, return_outputs=False,
                     num_items_in_batch=None):
        """TRL's loss; for a generation whose advantages are all 0, a 0
        without a forward pass, so no parameter gets a gradient and the
        optimiser skips the step instead of replaying its momentum."""
        if self._skip and model.training:
            return torch.zeros((), device=self.accelerator.device,
                               requires_grad=True)
        return super().compute_loss(model, inputs, return_outputs,
                                    num_items_in_batch)

    def _calculate_rewards(self, inputs, prompts, completions,
                           completion_ids_list):
        rewards = super()._calculate_rewards(inputs, prompts, completions,
                                             completion_ids_list)
        if self.model.training and self._chosen is not None:
            chosen, G = self._chosen, self.num_generations
            r = rewards[:, self.feedback_reward].float().cpu().view(
                len(chosen), G)
            r = torch.nan_to_num(r, nan=0.0)
            feedback(self.selector, chosen, r, self._context())
            tokens = torch.tensor(sum(len(c) for c in completion_ids_list),
                                  device=self.accelerator.device)
            self.counter.add("train", len(chosen) * G,
                             int(self.accelerator.gather(tokens).sum()))
            self.generation += 1
            self._chosen = None
        return rewards

    # --- logging and checkpoints ---------------------------------------------
    def log(self, logs: dict, start_time: float | None = None) -> None:
        logs = {**logs, "dopr/rollouts": self.counter.cost,
                "dopr/tokens": self.counter.cost_tokens,
                "dopr/prompts_seen": len(self.history.visits),
                "dopr/skipped_updates": self.skipped_updates}
        super().log(logs, start_time)

    def state_dict(self) -> dict:
        return {"generation": self.generation,
                "skipped_updates": self.skipped_updates,
                "selector": self.selector.state_dict(),
                "history": self.history.state_dict(),
                "counter": self.counter.state_dict()}

    def load_state_dict(self, state: dict) -> None:
        self.generation = state["generation"]
        self.skipped_updates = state["skipped_updates"]
        self.selector.load_state_dict(state["selector"])
        self.history.load_state_dict(state["history"])
        self.counter.load_state_dict(state["counter"])


class DoprState(TrainerCallback, ExportableState):
    """The trainer's selection state as one of TRL's stateful callbacks:
    ``Trainer`` writes :meth:`state` into each checkpoint's
    ``trainer_state.json`` and, resuming, reads it back into
    ``TrainerState.stateful_callbacks``, from which
    :meth:`on_train_begin` restores the trainer."""

    def __init__(self, trainer: DoprGRPOTrainer):
        self.trainer = trainer

    def state(self) -> dict:
        return self.trainer.state_dict()

    def on_train_begin(self, args, state, control, **kwargs):
        if state.global_step == 0:  # a fresh run
            return
        saved = state.stateful_callbacks.get(type(self).__name__)
        if saved is None:
            raise ConfigError(
                f"the checkpoint resumed at step {state.global_step} holds "
                f"no {type(self).__name__} in its trainer_state.json: it "
                "was not written by DoprGRPOTrainer")
        self.trainer.load_state_dict(saved)
