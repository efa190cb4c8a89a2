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
import os
from dataclasses import dataclass
from typing import Any

import numpy as np

from skyloom.eval.harness.suites import PhysicsSpec

logger = logging.getLogger(__name__)


def describe(gt: dict[str, Any]) -> str:
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


def build_items(ph: PhysicsSpec) -> list[dict[str, Any]]:
    """One item per probe scene (see the module docstring).

    Raises:
        skyloom.config.ConfigError: unknown datagen preset or override.
    """
    from skyloom import datagen
    from skyloom.eval.functional.physics_iq import physical_variance

    items = []
    for i, (iid, spec) in enumerate(probe_specs(ph).items()):
        frames, gt = datagen.render_spec(spec)  # (T, H, W, 3)
        gt = {k: v for k, v in gt.items() if k != "arrays_data"}
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


@dataclass(frozen=True)
class ProbeReference:
    """What an evaluation compares a probe scene's continuation against, for readers of stored results.

    Attributes:
        frames: uint8 (T, H, W, 3), the simulator's clip (the item's ``reference``).
        perturbed: uint8 (T, H, W, 3), the first perturbed re-simulation (take 0 of the physical variance).
        ground_truth: the simulator's ground truth of the scene.
        cond_frames: frames given to the model (at least 1, at most T).
        fps: the clip's frame rate.
        variance: Physics-IQ raw metrics of ``perturbed`` against ``frames`` from ``cond_frames`` on
            (:func:`continuation_numbers`): the take-0 terms of
            :func:`skyloom.eval.functional.physics_iq.physical_variance`.
    """

    frames: np.ndarray
    perturbed: np.ndarray
    ground_truth: dict[str, Any]
    cond_frames: int
    fps: float
    variance: dict[str, float]


def probe_reference(spec: dict[str, Any], ph: PhysicsSpec) -> ProbeReference:
    """Re-create a stored evaluation's probe scene: the simulator's clip, the perturbed take and the variance.

    Rendering is deterministic, so these are the frames the evaluation compared against (the dashboard
    shows them beside each checkpoint's continuation).
    """
    from skyloom import datagen  # lazy: MuJoCo

    frames, gt = datagen.render_spec(spec)  # (T, H, W, 3)
    perturbed, _ = datagen.render_spec(datagen.perturb_spec(spec, ph.perturb_scale, ph.seed))  # take 0
    k = max(1, min(int(ph.cond_frames), frames.shape[0]))
    fps = float(gt.get("fps") or spec["render"]["fps"])
    return ProbeReference(frames=frames, perturbed=perturbed, ground_truth=gt, cond_frames=k, fps=fps,
                          variance=continuation_numbers(perturbed, frames, k))


def continuation_numbers(video: np.ndarray | str | os.PathLike, simulator: np.ndarray,
                         cond_frames: int) -> dict[str, float]:
    """Physics-IQ raw metrics of a continuation (frames, or a video file) against the simulator's frames.

    The simulator's frames are conformed to the video's size as the scorer does
    (:func:`skyloom.eval.metrics.inputs.fit_frames`), both clips cut to the shorter, and the metrics
    (:func:`skyloom.eval.functional.physics_iq.physics_iq_raw`) taken from ``cond_frames`` on.
    """
    from skyloom.eval.functional.physics_iq import physics_iq_raw
    from skyloom.eval.metrics.inputs import fit_frames

    if not isinstance(video, np.ndarray):
        from skyloom.video import read_video

        video = read_video(video)
    ref = fit_frames(simulator, video.shape)
    T = min(len(video), len(ref))
    return physics_iq_raw(video[:T], ref[:T], start=min(cond_frames, max(0, T - 1)))


__all__ = ["ProbeReference", "build_items", "continuation_numbers", "describe", "item_id", "probe_reference",
           "probe_specs"]
