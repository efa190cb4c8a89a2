"""Physics-probe items of a suite: rendered scenes the model must continue, admitted only if they can tell.

Scenes are drawn from a ``datagen`` preset (``physics.preset``) with the suite's seed and rendered
once with ``skyloom.datagen.render_spec`` (deterministic). Every clip the probe's metrics compare —
the ground truth and its perturbed re-simulations — goes through the same H.264 encoding every
candidate gets when it is stored (:func:`skyloom.video.encode_round_trip`, crf 18), so the truth is
not scored against frames no candidate could ever reproduce.

A drawn scene is **admitted** only if

1. its encoded continuation moves under the metric's own masks: at least ``physics.min_moving_cells``
   moving cells (Physics-IQ's masks at W/4 x H/4, summed over frames;
   :func:`skyloom.eval.functional.physics_iq.moving_cells`). A probe without visible motion gives any
   static output an IoU of 1 (an empty union), so it rewards doing nothing;
2. its physical variance is defined: the perturbed re-simulation shares motion with the truth;
3. it passes the **degenerate gate**: each continuation of
   :data:`skyloom.eval.harness.continuations.DEGENERATE` (grey, black, fade to grey, blur of the
   truth, first frame frozen, last given frame frozen, shuffled, reversed, teleported, noise),
   encoded like a candidate, scores below a second perturbed re-simulation (the *gate take*, seed
   ``physics.seed + GATE_SEED_OFFSET + draw``) on ``physics_iq`` — first with the scene's own
   variance, then again with the suite-wide variance of the admitted set.

Scenes are drawn until ``physics.num_scenes`` are admitted (at most ``physics.max_draws``, default
5 x ``num_scenes``); item ids keep the draw index (``<preset>-<draw>``), so a rejected draw leaves a
gap. Each item carries the reference, ground truth, spec, the physical variance (Physics-IQ metrics
between the truth and ``perturb_takes`` re-simulations; ``physics_iq_dataset``: the set's), the gate
take, and ``draw`` (shared by the items of one suite): the threshold, the draws made and every
rejected draw with its reason.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from skyloom.eval.harness.suites import PhysicsSpec

logger = logging.getLogger(__name__)

GATE_SEED_OFFSET = 7919  # the gate take's perturbation seed: physics.seed + this + draw index
DRAW_FACTOR = 5  # max_draws 0: up to this many draws per declared scene


class ProbeDrawError(ValueError):
    """Too few drawn scenes pass admission to fill the suite's declared count."""


def describe(gt: dict[str, Any]) -> str:
    """A plain prompt for a probe scene from its ground truth: "a red sphere dropped and a ..."."""
    parts = []
    for o in gt.get("objects", []):
        motion = (o.get("initial") or {}).get("motion", "")
        parts.append(" ".join(x for x in ("a", o.get("colour", ""), o.get("shape", "object"), motion) if x))
    return " and ".join(parts) or "objects moving on a floor"


def item_id(ph: PhysicsSpec, index: int) -> str:
    """The item id of the ``index``-th drawn probe scene of ``ph``."""
    return f"{ph.preset}-{index:03d}"


def max_draws(ph: PhysicsSpec) -> int:
    return int(ph.max_draws) or DRAW_FACTOR * int(ph.num_scenes)


def probe_specs(ph: PhysicsSpec, draws: int | None = None) -> dict[str, dict[str, Any]]:
    """``{item_id: scene spec}`` of the first ``draws`` (default :func:`max_draws`) drawn scenes of
    ``ph``, without rendering them: a superset of the admitted probes, under the same ids, so a later
    reader (the dashboard) can re-render a stored evaluation's scenes from its suite config alone.

    Raises:
        skyloom.config.ConfigError: unknown datagen preset or override.
    """
    from skyloom import datagen
    from skyloom.config import load
    from skyloom.datagen.render import RenderConfig

    n = max_draws(ph) if draws is None else int(draws)
    cfg = load(RenderConfig, ph.preset, list(ph.overrides) + [f"scene.num_frames={ph.num_frames}"], group="datagen")
    return {item_id(ph, i): spec for i, spec in enumerate(datagen.sample_specs(cfg, n, ph.seed))}


@dataclass
class _Gate:
    summaries: dict[str, dict[str, float]] = field(default_factory=dict)  # candidate -> piq_view_summary

    def terms(self, var: dict[str, float]) -> dict[str, float]:
        from skyloom.eval.functional.physics_iq import piq_contribution

        return {k: piq_contribution(s, var) for k, s in self.summaries.items()}

    def failures(self, var: dict[str, float]) -> list[str]:
        t = self.terms(var)
        return [k for k in t if k != "perturbed" and t[k] >= t["perturbed"]]


def _render_encoded(spec: dict[str, Any]) -> tuple[np.ndarray, dict[str, Any]]:
    from skyloom import datagen
    from skyloom.video import encode_round_trip

    frames, gt = datagen.render_spec(spec)
    fps = float(gt.get("fps") or spec.get("fps") or 8)
    return encode_round_trip(frames, fps), gt


def _gate(ref: np.ndarray, take: np.ndarray, c: int, fps: float, objects: list[dict[str, Any]],
          seed: int) -> _Gate:
    from skyloom.eval.functional.physics_iq import piq_view, piq_view_summary
    from skyloom.eval.harness import continuations
    from skyloom.video import encode_round_trip

    g = _Gate()
    g.summaries["perturbed"] = piq_view_summary(piq_view(take[c:], ref[c:]))
    for name in continuations.DEGENERATE:
        v = encode_round_trip(continuations.make(name, ref, c, seed=seed, objects=objects), fps)
        g.summaries[name] = piq_view_summary(piq_view(v[c:], ref[c:]))
    return g


def _candidate(ph: PhysicsSpec, index: int, iid: str, spec: dict[str, Any]) -> tuple[dict[str, Any] | None, str]:
    """One drawn scene made into an item, or ``(None, why it is rejected)``."""
    from skyloom import datagen
    from skyloom.eval.functional.physics_iq import moving_cells, physical_variance, piq_dataset_variance

    frames, gt = _render_encoded(spec)  # (T, H, W, 3), as a stored candidate would be
    gt = {k: v for k, v in gt.items() if k != "arrays_data"}
    c = ph.cond_frames
    cells = moving_cells(frames[c:])
    if cells < ph.min_moving_cells:
        return None, f"{cells} moving cells after encoding (< {ph.min_moving_cells}): a static output would score"
    variance = physical_variance(spec, c, ph.perturb_scale, ph.perturb_takes, seed=ph.seed, reference=frames,
                                 render=_render_encoded, perturb=datagen.perturb_spec, keep_take=True)
    own = piq_dataset_variance([variance["physics_iq"]])
    flat = [k for k in ("spatiotemporal_iou", "spatial_iou", "weighted_spatial_iou") if not own[k] > 0]
    if flat:
        return None, f"physical variance of {', '.join(flat)} is 0 (the re-simulation shares no motion with the truth)"
    fps = float(gt.get("fps") or spec.get("fps") or 8)
    gate_seed = ph.seed + GATE_SEED_OFFSET + index
    take = _render_encoded(datagen.perturb_spec(spec, ph.perturb_scale, gate_seed))[0]
    objects = [o for o in gt.get("objects", []) if "rgb" in o]
    gate = _gate(frames, take, c, fps, objects, seed=index)
    bad = gate.failures(own)
    if bad:
        return None, f"degenerate gate: {', '.join(bad)} score at least the perturbed re-simulation"
    item = {
        "item_id": iid, "prompt": describe(gt), "seed": int(spec.get("seed", index)), "category": ph.category,
        "kind": "physics", "cond_frames": np.ascontiguousarray(frames[:c]), "num_frames": int(frames.shape[0]),
        "height": int(frames.shape[1]), "width": int(frames.shape[2]), "fps": fps, "reference": frames,
        "ground_truth": gt, "specs": spec, "variance": variance, "moving_cells": cells,
        "gate_take": take, "gate_seed": gate_seed, "_gate": gate,
    }
    return item, ""


def build_items(ph: PhysicsSpec) -> list[dict[str, Any]]:
    """The admitted probe items of ``ph`` (see the module docstring), ``num_scenes`` of them.

    Raises:
        ProbeDrawError: fewer than ``num_scenes`` of :func:`max_draws` drawn scenes pass admission.
        skyloom.config.ConfigError: unknown datagen preset or override.
    """
    from skyloom.eval.functional.physics_iq import piq_dataset_variance

    if ph.num_scenes <= 0:
        return []
    specs = list(probe_specs(ph).items())
    admitted: list[dict[str, Any]] = []
    rejected: list[dict[str, Any]] = []
    nxt = 0
    var_set: dict[str, float] = {}
    while True:
        while len(admitted) < ph.num_scenes and nxt < len(specs):
            iid, spec = specs[nxt]
            item, why = _candidate(ph, nxt, iid, spec)
            if item is None:
                rejected.append({"item_id": iid, "probe": spec.get("probe"), "reason": why})
                logger.info("physics probe %s rejected: %s", iid, why)
            else:
                admitted.append(item)
            nxt += 1
        if len(admitted) < ph.num_scenes:
            reasons = "; ".join(f"{r['item_id']}: {r['reason']}" for r in rejected[-5:])
            raise ProbeDrawError(f"physics: only {len(admitted)} of {ph.num_scenes} probe scenes admitted in "
                                 f"{len(specs)} draws (preset {ph.preset}, seed {ph.seed}); raise physics.max_draws "
                                 f"or lower physics.min_moving_cells. Last rejections: {reasons}")
        # Physics-IQ's variance is a property of the set: the gate must hold under it too.
        var_set = piq_dataset_variance([it["variance"]["physics_iq"] for it in admitted])
        late = [(it, it["_gate"].failures(var_set)) for it in admitted]
        late = [(it, bad) for it, bad in late if bad]
        if not late:
            break
        for it, bad in late:
            admitted.remove(it)
            rejected.append({"item_id": it["item_id"], "probe": it["specs"].get("probe"),
                             "reason": f"degenerate gate under the suite-wide variance: {', '.join(bad)} score at "
                                       "least the perturbed re-simulation"})
    draw = {"min_moving_cells": ph.min_moving_cells, "draws": nxt, "admitted": [it["item_id"] for it in admitted],
            "rejected": rejected, "gate_seed_offset": GATE_SEED_OFFSET}
    for it in admitted:
        it["variance"]["physics_iq_dataset"] = var_set
        gate = it.pop("_gate")
        terms = gate.terms(var_set)
        it["gate"] = {"terms": terms, "passed": all(terms[k] < terms["perturbed"] for k in terms if k != "perturbed")}
        it["draw"] = draw
    return admitted


def draw_record(items: list[dict[str, Any]]) -> dict[str, Any] | None:
    """The probe draw of a suite's items (threshold, draws, admitted and rejected with reasons), or None."""
    for it in items:
        if it.get("kind") == "physics" and it.get("draw") is not None:
            return it["draw"]
    return None


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

    The video is resized up to the simulator's (the probe's) size as the physics metrics do
    (:func:`skyloom.eval.functional.physics_iq.to_size`; the simulator's clip is never shrunk), both clips
    cut to the shorter, and the metrics (:func:`skyloom.eval.functional.physics_iq.physics_iq_raw`) taken
    from ``cond_frames`` on.
    """
    from skyloom.eval.functional.physics_iq import physics_iq_raw, to_size

    if not isinstance(video, np.ndarray):
        from skyloom.video import read_video

        video = read_video(video)
    ref = np.asarray(simulator)
    video = to_size(video, ref.shape[1], ref.shape[2])
    T = min(len(video), len(ref))
    return physics_iq_raw(video[:T], ref[:T], start=min(cond_frames, max(0, T - 1)))


__all__ = ["ProbeDrawError", "ProbeReference", "build_items", "continuation_numbers", "describe", "draw_record",
           "item_id", "probe_reference", "probe_specs"]
