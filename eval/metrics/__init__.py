"""Metrics in torchmetrics' shape (``update`` / ``merge`` / ``compute``), one module per family.

Public names:
    METRICS                          the metric registry (``METRICS.get(name)``, ``METRICS.build``)
    Metric, PerItemMetric,
    MetricResult, CompensatedSum     the base classes and the result record (``base``)
    SubjectConsistency, BackgroundConsistency, ClipTemp, TemporalFlickering,
    WarpingErrorMetric, DynamicDegree  temporal quality (``temporal``)
    CLIPSim, CLIPSimX100             text-video alignment (``clipsim``)
    FVD, KVD                         set-level distances on video features (``fvd``)
    PhysicsIQ, PhysicsIQScene,
    PhysicsTrajectory                physics against the simulator (``physics``)
    ColourMotion                     the colour-and-motion criterion (``colour_motion``)

What a metric reads is declared in ``inputs`` and checked in :mod:`skyloom.eval.metrics.inputs`.
"""

from __future__ import annotations

import importlib
from typing import Any

from skyloom.eval.metrics.base import METRICS as METRICS
from skyloom.eval.metrics.base import CompensatedSum as CompensatedSum
from skyloom.eval.metrics.base import Metric as Metric
from skyloom.eval.metrics.base import MetricResult as MetricResult
from skyloom.eval.metrics.base import PerItemMetric as PerItemMetric

_LAZY = {
    **dict.fromkeys(["SubjectConsistency", "BackgroundConsistency", "ClipTemp", "TemporalFlickering",
                     "WarpingErrorMetric", "DynamicDegree"], "temporal"),
    **dict.fromkeys(["CLIPSim", "CLIPSimX100", "clipsim_from_embeddings"], "clipsim"),
    **dict.fromkeys(["FVD", "KVD"], "fvd"),
    **dict.fromkeys(["PhysicsIQ", "PhysicsIQScene", "PhysicsTrajectory"], "physics"),
    "ColourMotion": "colour_motion",
}
__all__ = sorted(["METRICS", "Metric", "PerItemMetric", "MetricResult", "CompensatedSum", *_LAZY])


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(f"skyloom.eval.metrics.{_LAZY[name]}"), name)
    raise AttributeError(f"module 'skyloom.eval.metrics' has no attribute {name!r}")
