"""Physics-probe items of a suite: rendered scenes the model must continue.

Scenes are drawn from a ``datagen`` preset (``physics.preset``, default ``physics-probe``) with
the suite's seed, rendered once with ``skyloom.datagen.render_spec`` (deterministic), and each becomes an
item with the first ``cond_frames`` frames as conditioning, the full simulator clip as the
reference, the ground-truth dict, the scene spec and the *physical variance* (Physics-IQ metrics
between the ground truth and ``perturb_takes`` re-simulations with tiny perturbations), computed
once per suite run and shared by every checkpoint.
"""

from __future__ import annotations

import logging
from typing import Any, cast

import numpy as np

from skyloom.eval.harness.items import GroundTruth, PhysicsItem
from skyloom.eval.harness.suites import PhysicsSpec

logger = logging.getLogger(__name__)


def describe(gt: GroundTruth) -> str:
    """A plain prompt for a probe scene from its ground truth: "a red sphere dropped and a ..."."""
    parts = []
    for o in gt.get("objects", []):
        motion = (o.get("initial") or {}).get("motion", "")
        parts.append(" ".join(x for x in ("a", o.get("colour", ""), o.get("shape", "object"), motion) if x))
    return " and ".join(parts) or "objects moving on a floor"


def item_id(ph: PhysicsSpec, index: int) -> str:
    """The item id of the ``index``-th probe scene of ``ph``."""
    return f"{ph.preset}-{index:03d}"


def probe_specs(ph: PhysicsSpec) -> dict[str, dict[str, Any]]:
    """``{item_id: scene spec}`` of the probe scenes of ``ph``, without rendering them.

    The same specs :func:`build_items` renders, so a later reader (the dashboard) can re-render a
    stored evaluation's scenes from its suite config alone.

    Raises:
        skyloom.config.ConfigError: unknown datagen preset or override.
    """
    from skyloom import datagen
    from skyloom.config import load
    from skyloom.datagen.render import RenderConfig

    cfg = load(RenderConfig, ph.preset, list(ph.overrides) + [f"scene.num_frames={ph.num_frames}"], group="datagen")
    return {item_id(ph, i): spec for i, spec in enumerate(datagen.sample_specs(cfg, ph.num_scenes, ph.seed))}


def build_items(ph: PhysicsSpec) -> list[PhysicsItem]:
    """One item per probe scene (see the module docstring).

    Raises:
        skyloom.config.ConfigError: unknown datagen preset or override.
    """
    from skyloom import datagen
    from skyloom.eval.functional.physics_iq import physical_variance

    items: list[PhysicsItem] = []
    for i, (iid, spec) in enumerate(probe_specs(ph).items()):
        frames, gt_full = datagen.render_spec(spec)  # (T, H, W, 3)
        gt = cast(GroundTruth, {k: v for k, v in gt_full.items() if k != "arrays_data"})
        variance = physical_variance(spec, ph.cond_frames, ph.perturb_scale, ph.perturb_takes, seed=ph.seed,
                                     reference=frames)
        items.append({
            "item_id": iid, "prompt": describe(gt), "seed": int(spec.get("seed", i)),
            "category": ph.category, "kind": "physics", "cond_frames": np.ascontiguousarray(frames[: ph.cond_frames]),
            "num_frames": int(frames.shape[0]), "height": int(frames.shape[1]), "width": int(frames.shape[2]),
            "fps": float(gt.get("fps") or spec.get("fps") or 0) or None, "reference": frames, "ground_truth": gt,
            "specs": spec,
            "variance": variance,
        })
    if items:  # Physics-IQ's variance is a property of the set of scenes: every item carries the set's
        from skyloom.eval.functional.physics_iq import piq_dataset_variance

        var_set = piq_dataset_variance([it["variance"]["physics_iq"] for it in items])
        for it in items:
            it["variance"]["physics_iq_dataset"] = var_set
    return items
