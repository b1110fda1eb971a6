"""A selection rule's typical step on a real model, and its estimated time.

:func:`step_workload` builds a typical step from numbers alone (candidates,
G, the rows the rule trains and probes, whether it measures entropy);
:func:`rule_workload` reads those numbers off a rule's declared
:class:`~dopr_lite.select.Shape`.  :func:`gpu_estimate`,
:func:`time_to_target` and :func:`format_estimates` time them with
:mod:`dopr_lite.steptime` (estimates, never measurements).
"""

from __future__ import annotations

from dopr_lite.archs import Dims, model_dims
from dopr_lite.config import DoprConfig
from dopr_lite.curves import NOT_REACHED, reached
from dopr_lite.select import make_selector
from dopr_lite.steplog import precision_of, run_settings
from dopr_lite.steptime import (Call, Card, Efficiency, Workload, memory_gb,
                                step_seconds)

PROMPT_TOKENS = 200  # a GSM8K question in its template, about (for
#                      estimates of a run not yet made)
PUBLISHED = Efficiency()  # the efficiencies of the published measurements


def step_workload(dims: Dims, *, batch: int, generations: int,
                  prompt_tokens: int, completion_tokens: int,
                  picks: int | None, probe_rows: int = 0,
                  own_probe_call: bool = False, entropy: bool = False,
                  rows: int | None = None, **settings) -> Workload:
    """A typical step at ``batch`` candidates, ``generations`` (G)
    rollouts a picked prompt: with ``picks`` None (full batch) one call of
    ``batch * G`` rows, all trained; else one call of ``picks * G`` rows
    plus ``probe_rows`` (in a second call if ``own_probe_call``), G per
    pick trained, and with ``entropy`` a prefill of all ``batch``
    candidates (an upper bound: a fresh pool's first steps).  ``rows``: a
    measured rows per step instead.  Every completion runs to
    ``completion_tokens`` and the update is never skipped: the worst case.
    ``settings``: :func:`dopr_lite.steplog.run_settings`."""
    G, P, C = generations, prompt_tokens, completion_tokens
    if picks is None:
        trained = rows or batch * G
        calls, entropy_rows = (Call(trained, P, C),), 0
    else:
        trained = picks * G
        rows = rows or trained + probe_rows
        own = own_probe_call and rows > trained
        calls = ((Call(trained, P, C), Call(rows - trained, P, C)) if own
                 else (Call(rows, P, C),))
        entropy_rows = batch if entropy else 0
    return Workload(dims, calls, trained, P, C, entropy_rows=entropy_rows,
                    **settings)


def rule_workload(rule: str, cfg: DoprConfig | None = None, *,
                  batch: int | None = None, dims: Dims | None = None,
                  prompt_tokens: int = PROMPT_TOKENS,
                  rows: int | None = None, selector_args=None) -> Workload:
    """A typical step (:func:`step_workload`) of ``rule`` (a selector
    name) with ``cfg``'s settings (default:
    :meth:`DoprConfig.consumer_gpu`) at ``batch`` candidates, on ``dims``
    (default: ``cfg.model``'s)."""
    cfg = cfg or DoprConfig.consumer_gpu()
    batch = batch or cfg.prompts_per_step
    dims = dims or model_dims(cfg.model)
    sel = make_selector(rule, **(selector_args or {}))
    shape = sel.shape
    if shape.draws > 1:
        raise ValueError(f"{rule!r} refills its batch: its calls per step "
                         "are not fixed, so it is not modelled")
    return step_workload(
        dims, batch=batch, generations=cfg.num_generations,
        prompt_tokens=prompt_tokens, completion_tokens=cfg.max_new_tokens,
        picks=shape.picks, probe_rows=shape.probe_rows(batch),
        own_probe_call=shape.own_probe_call,
        entropy=shape.entropy, rows=rows, **run_settings(cfg))


def gpu_estimate(rule: str, card: Card, cfg: DoprConfig | None = None,
                 eff: Efficiency = PUBLISHED, **kwargs) -> dict:
    """Estimated seconds of a typical step of ``rule`` on ``card``
    (:func:`rule_workload`'s ``kwargs``), by part, with the rows it
    generates (``rows``) and the memory its generate holds
    (``memory_gb``: :func:`memory_gb`; over the card's, it would not
    run as one call)."""
    w = rule_workload(rule, cfg, **kwargs)
    return step_seconds(w, card, eff) | {
        "rows": sum(c.rows for c in w.calls), "memory_gb": memory_gb(w)}


def time_to_target(steps_to_target: float, rule: str, card: Card,
                   cfg: DoprConfig | None = None,
                   eff: Efficiency = PUBLISHED, **kwargs) -> float:
    """Estimated seconds for ``steps_to_target`` typical steps of ``rule``
    on ``card`` (a target not reached stays not reached)."""
    return steps_to_target * gpu_estimate(rule, card, cfg, eff,
                                          **kwargs)["total"]


def format_estimates(cfg: DoprConfig, card: Card,
                     rules=("dopr", "thompson", "full"),
                     eff: Efficiency = PUBLISHED,
                     steps: dict | None = None) -> str:
    """Estimated seconds per step of ``rules`` with ``cfg``'s model and
    settings on ``card``, as text; with ``steps`` (rule -> steps to a
    target, nan: not reached), also the estimated hours to it."""
    dims = model_dims(cfg.model)
    if dims is None:
        return (f"time per step on {card.name}: no estimate (the shape of "
                f"{cfg.model!r} is not known offline)")
    lines = [f"estimated seconds per step on {card.name} ({cfg.model}, "
             f"{precision_of(cfg)}, G = {cfg.num_generations}, "
             f"B = {cfg.prompts_per_step}, completions run to "
             f"{cfg.max_new_tokens} tokens; an estimate, not a "
             "measurement" + ("; fp32 timed at the card's bf16 rate, too "
                              "fast" if precision_of(cfg) == "fp32" else "")
             + "):",
             f"  {'rule':<10}{'rows':>6}{'generate':>10}{'update':>9}"
             f"{'entropy':>9}{'total':>9}"
             + (f"{'steps':>7}{'to target':>11}" if steps else "")]
    for rule in rules:
        e = gpu_estimate(rule, card, cfg, eff, dims=dims)
        over = (f"  (needs ~{e['memory_gb']:.0f} GB: over the card's "
                f"{card.memory_gb:.0f})" if e["memory_gb"] > card.memory_gb
                else "")
        to = ""
        if steps:
            n = steps.get(rule, NOT_REACHED)
            to = (f"{'-':>7}  not reached" if not reached(n) else
                  f"{n:>7.0f}{n * e['total'] / 3600:>9.1f} h")
        lines.append(f"  {rule:<10}{e['rows']:>6}{e['generate']:>10.1f}"
                     f"{e['update']:>9.1f}{e['entropy']:>9.2f}"
                     f"{e['total']:>9.1f}{to}{over}")
    return "\n".join(lines)
