"""The typed shape of ``results.json``, the document one evaluation leaves in ``RUN/eval/<suite>/<id>/``.

lm-evaluation-harness's layout (``results``, ``versions``, ``n-shot``, ``n-samples``, ``configs``,
``higher_is_better``, ``config``, ``git_hash``, ``total_evaluation_time_seconds``), so its
tools (``make_table``) read the file as is, plus skyloom's own fields. Keys with a dash are not
Python names, hence the functional ``TypedDict`` form. Written by
:func:`skyloom.eval.harness.runner.build_results`; format ``skyloom-eval-results`` version 3.
"""

from __future__ import annotations

from typing import Any, TypedDict

RESULTS_FORMAT = "skyloom-eval-results"
# 2: CIs moved out of `results` into `confidence_intervals`; `n-shot` added
# 3: `date` (unix time of writing) and `date_iso` (the evaluation's creation) renamed `results_written_at` and
#    `eval_created_at`, both ISO 8601 UTC
RESULTS_FORMAT_VERSION = 3


class ConfidenceInterval(TypedDict):
    """A bootstrap confidence interval of one metric (``level``: e.g. 0.95; None when not bootstrapped)."""

    low: float | None
    high: float | None
    level: float | None


class ExtractorInfo(TypedDict):
    """Which features a metric was computed on: the extractor, its weights and preprocessing."""

    extractor: str | None
    weights: str | None
    preprocessing: Any


class SampleCounts(TypedDict):
    """Items the suite holds (``original``) and items that were scored (``effective``)."""

    original: int
    effective: int


class BootstrapConfig(TypedDict):
    n_boot: int | None
    set_boot: int | None
    level: float | None
    seed: int | None


class RunConfig(TypedDict):
    """``config``: the model that was evaluated and how (lm-evaluation-harness's ``model``/``model_args``)."""

    model: str
    model_args: str
    checkpoint: str | None
    checkpoint_name: str | None
    run_name: str | None
    step: int | None
    device: str | None
    batch_size: int | None
    pipeline_loader: str | None
    generation: dict[str, Any]
    bootstrap: BootstrapConfig


class Seeds(TypedDict):
    """Every seed a number depends on: the suite's, each prompt's, the physics scenes', the bootstrap's."""

    suite: list[int]
    prompts: dict[str, list[int]]
    physics_scene_seed: int | None
    bootstrap: int | None


class Failure(TypedDict):
    """One item that could not be generated or scored, and why."""

    item_id: str
    stage: str
    reason: str


# `results[suite]` maps "<metric>,none" to the value and "<metric>_stderr,none" to the standard error
# (or "N/A"), plus "alias": the task layout lm-evaluation-harness's make_table reads.
TaskResults = dict[str, Any]

ResultsDoc = TypedDict("ResultsDoc", {
    "format": str,
    "format_version": int,
    "results": dict[str, TaskResults],
    "confidence_intervals": dict[str, dict[str, ConfidenceInterval]],
    "groups": dict[str, Any],
    "group_subtasks": dict[str, list[str]],
    "n-shot": dict[str, int],
    "configs": dict[str, dict[str, Any]],  # the suite as loaded (skyloom.eval.harness.suites.suite_to_dict)
    "versions": dict[str, int],
    "metric_versions": dict[str, int],
    "higher_is_better": dict[str, dict[str, bool]],
    "n-samples": dict[str, SampleCounts],
    "n": dict[str, int],
    "extractors": dict[str, ExtractorInfo],
    "details": dict[str, dict[str, Any]],
    "kind": str,  # model, submission or calibration
    "meta": dict[str, Any],
    "config": RunConfig,
    "seeds": Seeds,
    "eval_id": str,
    "suite": str,
    "status": str,
    "failures": list[Failure],
    "git_hash": str | None,
    "eval_created_at": str,  # when the evaluation was first created in the store (ISO 8601, UTC)
    "results_written_at": str,  # when this document was written (ISO 8601, UTC)
    "skyloom_version": str,
    "total_evaluation_time_seconds": str | None,
})
