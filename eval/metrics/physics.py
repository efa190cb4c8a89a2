"""Physics metrics: Physics-IQ (:mod:`skyloom.eval.functional.physics_iq`) and the trajectory checks
(:mod:`skyloom.eval.functional.trajectory`) as registered per-item metrics."""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from skyloom.eval.features.base import NO_WEIGHTS
from skyloom.eval.functional import physics_iq, trajectory
from skyloom.eval.metrics.base import METRICS, PerItemMetric

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class PhysicsIQConfig:
    """Settings of ``physics_iq``, ``physics_iq_exact`` and ``physics_iq_scene``."""

    cond_frames: int = 4  # frames given to the model; scoring starts after them
    perturb_scale: float = 0.01  # relative size of the perturbed re-simulations behind the physical variance
    perturb_takes: int = 1  # perturbed re-simulations per scene
    seed: int = 0  # seeds the perturbations


@dataclass(frozen=True)
class PhysicsTrajectoryConfig:
    """Settings of ``physics_trajectory`` (simulator agreement)."""

    cond_frames: int = 4  # frames given to the model; agreement is measured after them
    colour_tol: int = 40  # L-inf RGB distance within which a pixel belongs to an object's colour
    base_tol: float = 0.02  # tolerance floor, as a fraction of the frame diagonal
    spread: float = 1.0  # multiple of the perturbed take's distance from the simulator added to the floor
    velocity_weight: float = 0.5  # weight of the velocity term against the position term


# -- metrics ---------------------------------------------------------------------------------
RESOLUTION = ("the probe's: the reference is never resized; a candidate of another size is resized to the "
              "reference's (cv2 INTER_LINEAR, per frame) before its masks")


class _PhysicsMetric(PerItemMetric):
    default_extractor = None
    inputs = ("videos", "item_ids", "reference")
    fit_reference = False  # update_kwargs keeps the reference at the probe's size (skyloom.eval.metrics.inputs)

    def __init__(self, config: Any) -> None:
        self.cond_frames = int(config.cond_frames)
        super().__init__(config, extractor=None)
        self._identity = {"extractor": self.extractor_label, "weights": NO_WEIGHTS,
                          "preprocessing": dict(physics_iq.PREPROCESSING, cond_frames=self.cond_frames,
                                                resolution=RESOLUTION)}

    extractor_label = "motion-masks"

    @staticmethod
    def _at_probe_size(video: np.ndarray, reference: np.ndarray) -> tuple[np.ndarray, dict[str, float]]:
        """The candidate at the reference's frame size, and its own size (recorded per item)."""
        v, ref = np.asarray(video), np.asarray(reference)
        size = {"candidate_height": float(v.shape[1]), "candidate_width": float(v.shape[2])}
        return physics_iq.to_size(v, ref.shape[1], ref.shape[2]), size


@METRICS.register("physics_iq")
class PhysicsIQ(_PhysicsMetric):
    """Physics-IQ score at the probe's resolution (protocol ``skyloom-physics-iq``): Physics-IQ's own
    pipeline on the continuations (frames from ``cond_frames`` on) and its formula, with the candidate
    resized to the probe's frame size *before* its masks (the reference is never shrunk).

    Per scene the value is the scene's term of Physics-IQ's formula,
    100·[(st/V_st + sp/V_sp + w/V_w)/3 − mse + V_mse] (:func:`physics_iq.piq_contribution`), with V the physical
    variance over the *set* of scenes (``variance["physics_iq_dataset"]``, which the suite builds
    from every scene's perturbed re-simulation; one scene's own otherwise). The metric's value is
    their mean, **not clipped**: 100 is as close as a second take of the experiment, the simulator's own
    continuation scores above 100 (Physics-IQ's clip at 100 ties it with a re-simulation), a negative
    value is further than uniform frames. ``update(videos, reference=[gt clips],
    variance=[physics_iq.physical_variance dicts] | specs=[specs])``. ``physics_iq_exact`` is
    Physics-IQ's number as published (its resizing rule, clipped); ``physics_iq_scene`` skyloom's
    per-scene normalised score.
    """

    name = "physics_iq"
    version = "3"  # 3: probe resolution (candidate resized up), unclipped mean; 2: Physics-IQ's protocol
    optional_inputs = ("variance", "specs")
    protocol = "skyloom-physics-iq"

    config_class = PhysicsIQConfig

    def __init__(self, config: PhysicsIQConfig | None = None) -> None:
        config = config or PhysicsIQConfig()
        self.perturb_scale, self.perturb_takes = float(config.perturb_scale), int(config.perturb_takes)
        self.seed = int(config.seed)
        super().__init__(config)
        self._identity["preprocessing"] = dict(physics_iq.PIQ_PROTOCOL, protocol=self.protocol,
                                               cond_frames=self.cond_frames, perturb_scale=self.perturb_scale,
                                               **self._protocol_changes())

    def _protocol_changes(self) -> dict[str, str]:
        return {"resolution": RESOLUTION, "aggregate": "mean of the scene terms, not clipped"}

    def update(self, videos: Any, reference: Any = None, variance: list[dict] | None = None,
               specs: list[dict] | None = None, item_ids: list[str] | None = None) -> None:
        if reference is None:
            raise ValueError(f"{self.name} needs the simulator's clips: update(videos, reference=[...])")
        super().update(videos, item_ids=item_ids, reference=list(reference), variance=variance, specs=specs)

    def _variance(self, reference: np.ndarray, variance: dict | None, specs: dict | None) -> dict | None:
        if variance is None and specs is not None:
            variance = physics_iq.physical_variance(specs, self.cond_frames, self.perturb_scale, self.perturb_takes,
                                         self.seed, reference=np.asarray(reference))
        return variance

    def _candidate(self, video: np.ndarray, reference: np.ndarray) -> tuple[np.ndarray, dict[str, float]]:
        return self._at_probe_size(video, reference)

    def score_video(self, video: np.ndarray, reference: np.ndarray, variance: dict | None = None,
                    specs: dict | None = None) -> tuple[float, dict[str, float]]:
        ref = np.asarray(reference)
        c = self.cond_frames
        video, size = self._candidate(video, ref)
        summary = physics_iq.piq_view_summary(physics_iq.piq_view(np.asarray(video)[c:], ref[c:]))
        variance = self._variance(ref, variance, specs)
        if variance is None or "physics_iq" not in variance:
            return math.nan, {**summary, **size}
        var_set = variance.get("physics_iq_dataset") or physics_iq.piq_dataset_variance([variance["physics_iq"]])
        variances = {f"variance_{k}": v for k, v in var_set.items()}
        return physics_iq.piq_contribution(summary, var_set), {**summary, **variances, **size}

    def aggregate(self, values: list[float]) -> float:
        """The mean of the scene terms (not clipped: see the class docstring)."""
        return math.fsum(values) / len(values)


@METRICS.register("physics_iq_exact")
class PhysicsIQExact(PhysicsIQ):
    """Physics-IQ exactly as published (protocol ``physics-iq``; quote this one beside Physics-IQ's
    table): Physics-IQ's resizing rule — the candidate's masks are computed at the candidate's own size
    and then resized, with its frames, to the reference's W/4 x H/4 — and its aggregate, the mean of the
    scene terms clipped to [0, 100] and rounded to 2 dp (``calculate_iq_score``). At the probe's size it
    equals ``physics_iq`` up to the clip."""

    name = "physics_iq_exact"
    version = "1"
    protocol = "physics-iq"

    def _protocol_changes(self) -> dict[str, str]:
        return {"resolution": "Physics-IQ's: candidate masks at the candidate's size, then resized to the "
                              "reference's W/4 x H/4 with its frames", "aggregate": "mean clipped to [0, 100], 2 dp"}

    def _candidate(self, video: np.ndarray, reference: np.ndarray) -> tuple[np.ndarray, dict[str, float]]:
        v = np.asarray(video)
        return v, {"candidate_height": float(v.shape[1]), "candidate_width": float(v.shape[2])}

    def aggregate(self, values: list[float]) -> float:
        """Physics-IQ reports the mean clipped to [0, 100], 2 dp."""
        return round(max(min(math.fsum(values) / len(values), 100.0), 0.0), 2)


@METRICS.register("physics_iq_scene")
class PhysicsIQScene(PhysicsIQ):
    """skyloom's per-scene normalised Physics-IQ score: the four Physics-IQ metrics of each scene
    (:func:`physics_iq.physics_iq_raw`, masks over the whole clip, no downscale) relative to that scene's
    physical variance — IoU / IoU_variance (not capped: the truth scores 100·mean(1/V, ..., 1) ≥ 100 and a
    re-simulation about 100) and min(1, MSE_variance / MSE) — averaged (:func:`physics_iq.normalise`;
    degenerate variances explicit), at the probe's resolution (a candidate of another size is resized to it).
    Not comparable with published Physics-IQ numbers; use ``physics_iq_exact`` for those."""

    name = "physics_iq_scene"
    version = "2"  # 2: probe resolution (candidate resized up), IoU ratios not capped (v1 tied truth and perturbed)

    def __init__(self, config: PhysicsIQConfig | None = None) -> None:
        super().__init__(config)
        self._identity["preprocessing"] = dict(physics_iq.PREPROCESSING, cond_frames=self.cond_frames,
                                               protocol="skyloom-scene", resolution=RESOLUTION,
                                               perturb_scale=self.perturb_scale, perturb_takes=self.perturb_takes)

    def score_video(self, video: np.ndarray, reference: np.ndarray, variance: dict | None = None,
                    specs: dict | None = None) -> tuple[float, dict[str, float]]:
        video, size = self._at_probe_size(video, reference)
        raw = physics_iq.physics_iq_raw(video, np.asarray(reference), start=self.cond_frames)
        variance = self._variance(np.asarray(reference), variance, specs)
        if variance is None:
            return math.nan, {**raw, **size}
        norm = physics_iq.normalise(raw, variance, cap_iou=False)
        degenerate = norm.pop("degenerate")
        return norm.pop("physics_iq"), {**raw, **norm, **size, "degenerate_terms": float(len(degenerate)),
                                        **{f"variance_{k}": variance[k] for k in physics_iq.RAW_KEYS}}

    def aggregate(self, values: list[float]) -> float:
        return math.fsum(values) / len(values)


@METRICS.register("physics_trajectory")
class PhysicsTrajectory(_PhysicsMetric):
    """Agreement with the simulator's trajectories (0–1, :func:`trajectory.simulator_agreement`): per
    continuation frame, is each object's tracked centre within the perturbed re-simulation's tolerance of
    the simulator's (position), and its step within tolerance of the simulator's step (velocity);
    ``(1 − w)·position + w·velocity``. An object the generated frames do not show is a miss.
    ``update(videos, reference=[gt clips], ground_truth=[skyloom-gt dicts], variance=[dicts with "take"])``;
    without a take the tolerance is its floor alone."""

    name = "physics_trajectory"
    version = "2"  # 2: simulator agreement (v1: mean of four pass/fail checks, won by a frozen video)
    extractor_label = "colour-tracking"
    inputs = ("videos", "item_ids", "reference", "ground_truth")
    optional_inputs = ("variance",)

    config_class = PhysicsTrajectoryConfig

    def __init__(self, config: PhysicsTrajectoryConfig | None = None) -> None:
        config = config or PhysicsTrajectoryConfig()
        self.colour_tol, self.base_tol = int(config.colour_tol), float(config.base_tol)
        self.spread = float(config.spread)
        self.velocity_weight = float(config.velocity_weight)
        super().__init__(config)
        self._identity["preprocessing"] = {
            "tracking": "colour L-inf, largest component >= 1/4 of the simulator's median area",
            "colour_tol": self.colour_tol, "position_tol": f"{self.base_tol} x diagonal + {self.spread} x "
            "|take - simulator|", "velocity_tol": f"{self.base_tol / 2} x diagonal + {self.spread} x "
            "|take step - simulator step|", "velocity_weight": self.velocity_weight, "cond_frames": self.cond_frames,
            "resolution": RESOLUTION}

    def update(self, videos: Any, reference: Any = None, ground_truth: list[dict] | None = None,
               variance: list[dict] | None = None, item_ids: list[str] | None = None) -> None:
        if reference is None or ground_truth is None:
            raise ValueError(f"{self.name} needs reference=[simulator clips] and ground_truth=[gt dicts]")
        super().update(videos, item_ids=item_ids, reference=list(reference), ground_truth=list(ground_truth),
                       variance=variance)

    def score_video(self, video: np.ndarray, reference: np.ndarray, ground_truth: dict,
                    variance: dict | None = None) -> tuple[float, dict[str, float]]:
        objs = [o for o in ground_truth.get("objects", []) if "rgb" in o]
        if not objs:
            raise ValueError("ground truth has no objects with 'rgb' colours to track")
        ref = np.asarray(reference)
        video, size = self._at_probe_size(video, ref)
        take = (variance or {}).get("take")
        if take is not None and np.asarray(take).shape != ref.shape:
            take = physics_iq.to_size(np.asarray(take)[: len(ref)], ref.shape[1], ref.shape[2])
        a = trajectory.simulator_agreement(video, ref, objs, self.cond_frames, take=take, tol=self.colour_tol,
                                           base=self.base_tol, spread=self.spread,
                                           velocity_weight=self.velocity_weight)
        return a["score"], {"position": a["position"], "velocity": a["velocity"], "found": a["found"],
                            "undecidable_objects": float(a["undecidable"]),
                            "tolerance_from_take": float(take is not None), **size}
