"""Selection rules: which prompts of a candidate batch get rollouts.

Each step the training loop draws a candidate batch of prompt indices
(:func:`candidate_batch`) and asks its :class:`Selector` which of them to
roll out.  The selector sees a :class:`SelectContext`: the step, how often
each prompt was rolled out (:class:`PromptHistory`), the policy's entropy on
the candidates (one forward pass over the prompts, no rollouts) and, for
rules that need them, *probe* rollouts, which are charged to the ``probe``
rollout count.  It is told the rewards its choice caused (:func:`feedback`)
and its state goes into checkpoints (``state_dict``).  What a rule does with
a batch (one prompt or all, probes, refills) is its :class:`Shape`.

Rules (``SELECTORS``):

* ``full``     :class:`FullBatch`, standard GRPO: every candidate.
* ``random``   :class:`RandomOne`, one candidate uniformly (the ablation that
  isolates the value of a selection rule), or ``k`` of them (GRPO on k
  random prompts: the control for a rule that picks k).
* ``fixed``    :class:`FixedOneShot`, one example for the whole run, picked
  by the reward variance of probe rollouts (one-shot RLVR, Wang et al. 2025).
* ``dynamic``  :class:`DynamicSampling`, every candidate, but groups whose
  rewards are all equal are dropped and the batch is refilled (DAPO, Yu et
  al. 2025); the loop does the refilling.
* ``thompson`` :class:`Thompson`, Beta posterior per prompt, Thompson sample,
  pick the prompt whose sample is closest to p = 0.5 (MoPPS, Qu et al. 2025).
* ``dopr-v1``  :class:`DoPRv1` and ``dopr`` :class:`DoPR` share
  :class:`PosteriorRule` (posterior, empirical-Bayes prior, probes, the
  entropy cache, ``select`` = dedupe -> probe -> score -> rank);
  ``dopr-v1`` is this project's first formalisation of DoPR:
  reward volatility plus an entropy-modulated UCB bonus (kept for
  comparison).
* ``dopr``     :class:`DoPR`, one prompt per batch by its reward volatility
  u(p) = 1 - p^G - (1-p)^G at a posterior sample of p (``score="ucb"``:
  at its Bayes-UCB quantile, the policy's entropy ordering prompts the
  evidence cannot tell apart), and one probe rollout on each of the two
  best new candidates of the next batch, generated in this step's call
  (Zhang et al. 2026; our interpretation, see the class docstring).
"""

from __future__ import annotations

from dopr_lite.errors import ConfigError
from dopr_lite.select.base import (DRAW_SEED_STRIDE, PromptHistory,
                                   SelectContext, Selector, Shape,
                                   candidate_batch, feedback)
from dopr_lite.select.baselines import (DynamicSampling, FixedOneShot,
                                        FullBatch, RandomOne)
from dopr_lite.select.dopr import (QUANTILE_CELLS, DoPR, DoPRv1,
                                   EntropyCache, PosteriorRule,
                                   informative_quantile)
from dopr_lite.select.posterior import (BayesianSelector, BetaPosterior,
                                        Thompson, beta_moment,
                                        expected_informative_prob)

__all__ = [
    "DRAW_SEED_STRIDE", "PromptHistory", "SelectContext", "Selector",
    "Shape", "candidate_batch", "feedback", "DynamicSampling",
    "FixedOneShot", "FullBatch", "RandomOne", "QUANTILE_CELLS", "DoPR",
    "DoPRv1", "EntropyCache", "PosteriorRule", "informative_quantile",
    "BayesianSelector", "BetaPosterior", "Thompson", "beta_moment",
    "expected_informative_prob", "SELECTORS", "check_selector",
    "can_warm_start", "make_selector"]

SELECTORS: dict[str, type[Selector]] = {  # baselines first, DoPR last
    "full": FullBatch, "dynamic": DynamicSampling, "fixed": FixedOneShot,
    "random": RandomOne, "thompson": Thompson, "dopr-v1": DoPRv1,
    "dopr": DoPR}


def _selector_class(name: str) -> type[Selector]:
    if name not in SELECTORS:
        raise ConfigError(f"config field 'selector': unknown selector "
                          f"{name!r}; choose one of {sorted(SELECTORS)}")
    return SELECTORS[name]


def check_selector(name: str, args: dict) -> None:
    """Raise ConfigError, naming the field, unless ``make_selector(name,
    **args)`` would work; builds nothing."""
    try:
        _selector_class(name).check_args(**args)
    except (TypeError, ValueError) as err:
        if isinstance(err, ConfigError):
            raise
        raise ConfigError(f"config field 'selector_args': {err}") from err


def can_warm_start(name: str) -> bool:
    """Whether rule ``name`` can start from a pre-flight's counts."""
    return issubclass(_selector_class(name), BayesianSelector)


def make_selector(name: str, **kwargs) -> Selector:
    """A selector by its config name; unknown names list the choices."""
    check_selector(name, kwargs)
    return SELECTORS[name](**kwargs)
