"""eval: metrics, feature extractors, suites, the evaluation runner, the results store and statistics.

Layout (each a subpackage; docs/architecture.md has the map):
    functional/   pure maths (Fréchet, temporal, Physics-IQ, trajectories)
    metrics/      the metric base, declared inputs, one module per metric family
    features/     feature extractors (pixels, CLIP, DINO, I3D, the in-domain evaluator) and the feature cache
    harness/      suites, probes, generation, scoring, the runner, calibration, submissions, the ladder, adapters
    results/      the results store, statistics and verdicts, leaderboards and breakdowns
    cli/          the ``skyloom eval`` commands

Public names (imported lazily, so ``import eval`` stays light):
    EXTRACTORS, METRICS                   registries of feature extractors and metrics
    ResultsStore, open_store              the results store (SQLite / any SQLAlchemy URL)
    locate_store                          where the results store is (the one rule, skyloom.rundir's)
    bootstrap_ci, paired_test,
    paired_compare, leaderboard           statistics for leaderboards and comparisons
    verdict, verdict_label                the one verdict rule (p < alpha of a paired test) and its words
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
    **dict.fromkeys(["EXTRACTORS"], "features.base"), "METRICS": "metrics",
    **dict.fromkeys(["ResultsStore", "open_store", "locate_store"], "results.store"),
    **dict.fromkeys(["bootstrap_ci", "paired_test", "paired_compare", "leaderboard", "verdict", "verdict_label"],
                    "results.stats"),
    **dict.fromkeys(["Suite", "load_suite", "list_suites"], "harness.suites"),
    **dict.fromkeys(["EvalConfig", "run_eval", "EvalResult"], "harness.runner"),
    "FeatureCache": "features.cache",
    **dict.fromkeys(["export_suite", "run_submission"], "harness.submissions"),
    "run_calibration": "harness.calibration", "board": "results.boards",
    **dict.fromkeys(["train_evaluator", "load_evaluator"], "features.indomain"),
}
__all__ = sorted(_LAZY)


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(f"skyloom.eval.{_LAZY[name]}"), name)
    raise AttributeError(f"module 'eval' has no attribute {name!r}")
