"""A run's logged steps as step-time workloads.

Each ``metrics.jsonl`` row of :func:`dopr_lite.loop.train_step` carries
what the step ran (:data:`dopr_lite.steprow.ROW_KEYS`: its generate calls,
the prompts prefilled for the entropy, the update's rows and widths, and
whether the update was skipped); with the run's config that is a
:class:`~dopr_lite.steptime.Workload` the step-time model can time.
"""

from __future__ import annotations

from dopr_lite.archs import Dims, model_dims
from dopr_lite.config import DoprConfig
from dopr_lite.steprow import ALL_EQUAL, ROW_KEYS
from dopr_lite.steptime import Call, Workload


def precision_of(cfg: DoprConfig) -> str:
    """The :data:`~dopr_lite.archs.PRECISIONS` key of a run's weights."""
    if cfg.load_in_4bit:
        return "4bit"
    return "fp32" if cfg.dtype == "float32" else "bf16"


def run_settings(cfg: DoprConfig) -> dict:
    """A run's :class:`~dopr_lite.steptime.Workload` settings: precision,
    LoRA, gradient checkpointing, micro-batch."""
    return {"precision": precision_of(cfg), "lora": cfg.use_lora,
            "checkpointing": cfg.gradient_checkpointing,
            "micro_batch": cfg.micro_batch}


def workload_from_row(row: dict, dims: Dims, **settings) -> Workload:
    """The :class:`~dopr_lite.steptime.Workload` of a logged step (a
    ``metrics.jsonl`` row of :func:`dopr_lite.loop.train_step`) on a model
    of ``dims``; ``settings``: :func:`run_settings`.  The entropy pass is
    taken at the step's first call's prompt width."""
    missing = [k for k in ROW_KEYS if k not in row]
    if missing:
        raise ValueError(f"a step row without {missing}: logged by "
                         "dopr_lite.loop since the step-time model; rerun "
                         "the steps with the current package")
    ran = row["skipped"] != ALL_EQUAL
    return Workload(
        dims, tuple(Call(*c) for c in row["gen_calls"]),
        update_rows=row["update_rows"] if ran else 0,
        update_prompt_tokens=row["update_prompt_width"],
        update_completion_tokens=row["update_completion_width"],
        entropy_rows=row["entropy_rows"], **settings)


def workloads_from_metrics(rows: list[dict], cfg: DoprConfig,
                           dims: Dims | None = None) -> list[Workload]:
    """The workloads of a run's logged steps (``cfg``: the run's config;
    ``dims``: default, those of ``cfg.model``)."""
    dims = dims or model_dims(cfg.model)
    if dims is None:
        raise ValueError(f"no dimensions known for model {cfg.model!r}; "
                         "pass dims=archs.Dims.from_config(...)")
    return [workload_from_row(r, dims, **run_settings(cfg)) for r in rows]
