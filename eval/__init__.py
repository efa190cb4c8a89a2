"""eval: metrics, feature extractors, suites, the evaluation runner, the results store and statistics.

Public names (imported lazily, so ``import eval`` stays light):
    EXTRACTORS, METRICS                   registries of feature extractors and metrics
    ResultsStore, open_store              the results store (SQLite / any SQLAlchemy URL)
    bootstrap_ci, paired_test,
    paired_compare, leaderboard           statistics for leaderboards and comparisons
    Suite, load_suite, list_suites        versioned evaluation suites (configs/eval/suites/*.yaml)
    EvalConfig, run_eval -> EvalResult    evaluate checkpoints on a suite (generate, score, store)
    export_suite, run_submission          the submitter's kit of a suite; score a folder of videos
    run_calibration                       reference rows from the data (ground truth, frozen, noise, ...)
    board                                 a leaderboard with calibration flags and the score breakdown
    FeatureCache                          features per (video hash, extractor)
    train_evaluator, load_evaluator       in-domain video-text contrastive evaluator
"""

from __future__ import annotations

import importlib
from typing import Any

_LAZY = {
    "EXTRACTORS": "skyloom.eval.features", "METRICS": "skyloom.eval.metrics",
    "ResultsStore": "skyloom.eval.store", "open_store": "skyloom.eval.store",
    "bootstrap_ci": "skyloom.eval.stats", "paired_test": "skyloom.eval.stats", "paired_compare": "skyloom.eval.stats",
    "leaderboard": "skyloom.eval.stats",
    "Suite": "skyloom.eval.suites", "load_suite": "skyloom.eval.suites", "list_suites": "skyloom.eval.suites",
    "EvalConfig": "skyloom.eval.runner", "run_eval": "skyloom.eval.runner", "EvalResult": "skyloom.eval.runner",
    "FeatureCache": "skyloom.eval.cache",
    "export_suite": "skyloom.eval.submissions", "run_submission": "skyloom.eval.submissions",
    "run_calibration": "skyloom.eval.calibration", "board": "skyloom.eval.breakdown",
    "train_evaluator": "skyloom.eval.evaluator", "load_evaluator": "skyloom.eval.evaluator",
}
__all__ = sorted(_LAZY)


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'eval' has no attribute {name!r}")
