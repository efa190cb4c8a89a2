"""Physics metrics: Physics-IQ (:mod:`skyloom.eval.functional.physics_iq`) and the trajectory checks
(:mod:`skyloom.eval.functional.trajectory`) as registered per-item metrics."""

from __future__ import annotations

import logging
import math
from typing import Any

import numpy as np

from skyloom.errors import InvalidInputError
from skyloom.eval.features.base import NO_WEIGHTS
from skyloom.eval.functional import physics_iq, trajectory
from skyloom.eval.metrics.base import METRICS, PerItemMetric

log = logging.getLogger(__name__)


# -- metrics ---------------------------------------------------------------------------------
class _PhysicsMetric(PerItemMetric):
    default_extractor = None
    inputs: tuple[str, ...] = ("videos", "item_ids", "reference")

    def __init__(self, cond_frames: int = 4, **kw: Any) -> None:
        self.cond_frames = int(cond_frames)
        super().__init__(None)
        self._identity = {"extractor": self.extractor_label, "weights": NO_WEIGHTS,
                          "preprocessing": dict(physics_iq.PREPROCESSING, cond_frames=self.cond_frames)}

    extractor_label = "motion-masks"


@METRICS.register("physics_iq")
class PhysicsIQ(_PhysicsMetric):
    """Physics-IQ score (protocol ``physics-iq``): Physics-IQ's own pipeline on the continuations
    (frames from ``cond_frames`` on) and its dataset-level score.

    Per scene the value is the scene's term of Physics-IQ's formula,
    100·[(st/V_st + sp/V_sp + w/V_w)/3 − mse + V_mse] (:func:`physics_iq.piq_contribution`), with V the physical
    variance over the *set* of scenes (``variance["physics_iq_dataset"]``, which the suite builds
    from every scene's perturbed re-simulation; one scene's own otherwise); the metric's value is
    their mean clipped to [0, 100] and rounded to 2 dp — Physics-IQ's ``calculate_iq_score`` for
    single-view scenes of equal length. ``update(videos, reference=[gt clips],
    variance=[physics_iq.physical_variance dicts] | specs=[specs])``. skyloom's per-scene normalised score is
    ``physics_iq_scene``.
    """

    name = "physics_iq"
    version = "2"  # 2: Physics-IQ's own protocol (v1 is physics_iq_scene)
    optional_inputs = ("variance", "specs")

    def __init__(self, cond_frames: int = 4, perturb_scale: float = 0.01, perturb_takes: int = 1,
                 seed: int = 0) -> None:
        self.perturb_scale, self.perturb_takes, self.seed = float(perturb_scale), int(perturb_takes), int(seed)
        super().__init__(cond_frames)
        self._pixel_identity()["preprocessing"] = dict(physics_iq.PIQ_PROTOCOL, cond_frames=self.cond_frames,
                                               perturb_scale=self.perturb_scale)

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

    def score_video(self, video: np.ndarray, reference: np.ndarray, variance: dict | None = None,
                    specs: dict | None = None) -> tuple[float, dict[str, float]]:
        ref = np.asarray(reference)
        c = self.cond_frames
        summary = physics_iq.piq_view_summary(physics_iq.piq_view(np.asarray(video)[c:], ref[c:]))
        variance = self._variance(ref, variance, specs)
        if variance is None or "physics_iq" not in variance:
            return math.nan, summary
        var_set = variance.get("physics_iq_dataset") or physics_iq.piq_dataset_variance([variance["physics_iq"]])
        variances = {f"variance_{k}": v for k, v in var_set.items()}
        return physics_iq.piq_contribution(summary, var_set), {**summary, **variances}

    def aggregate(self, values: list[float]) -> float:
        """Physics-IQ reports the mean clipped to [0, 100], 2 dp."""
        return round(max(min(math.fsum(values) / len(values), 100.0), 0.0), 2)


@METRICS.register("physics_iq_scene")
class PhysicsIQScene(PhysicsIQ):
    """skyloom's per-scene normalised Physics-IQ score (0–100): the four Physics-IQ metrics of each
    scene (:func:`physics_iq.physics_iq_raw`, masks over the whole clip, no downscale) relative to that scene's
    physical variance, capped at 1, averaged (:func:`physics_iq.normalise`; degenerate variances explicit).
    Not comparable with published Physics-IQ numbers; use ``physics_iq`` for those."""

    name = "physics_iq_scene"
    version = "1"

    def __init__(self, cond_frames: int = 4, perturb_scale: float = 0.01, perturb_takes: int = 1,
                 seed: int = 0) -> None:
        super().__init__(cond_frames, perturb_scale, perturb_takes, seed)
        self._pixel_identity()["preprocessing"] = dict(physics_iq.PREPROCESSING, cond_frames=self.cond_frames,
                                               protocol="skyloom-scene",
                                               perturb_scale=self.perturb_scale, perturb_takes=self.perturb_takes)

    def score_video(self, video: np.ndarray, reference: np.ndarray, variance: dict | None = None,
                    specs: dict | None = None) -> tuple[float, dict[str, float]]:
        raw = physics_iq.physics_iq_raw(video, np.asarray(reference), start=self.cond_frames)
        variance = self._variance(np.asarray(reference), variance, specs)
        if variance is None:
            return math.nan, raw
        norm = physics_iq.normalise(raw, variance)
        degenerate = norm.pop("degenerate")
        return norm.pop("physics_iq"), {**raw, **norm, "degenerate_terms": float(len(degenerate)),
                                        **{f"variance_{k}": variance[k] for k in physics_iq.RAW_KEYS}}

    def aggregate(self, values: list[float]) -> float:
        return math.fsum(values) / len(values)


@METRICS.register("physics_trajectory")
class PhysicsTrajectory(_PhysicsMetric):
    """Fraction of trajectory checks passed (gravity, teleport, permanence, interpenetration).
    ``update(videos, reference=[gt clips], ground_truth=[skyloom-gt dicts])``."""

    name = "physics_trajectory"
    extractor_label = "colour-tracking"
    inputs = ("videos", "item_ids", "reference", "ground_truth")

    def __init__(self, cond_frames: int = 4, colour_tol: int = 40, rel_tol: float = 0.5) -> None:
        self.colour_tol, self.rel_tol = int(colour_tol), float(rel_tol)
        super().__init__(cond_frames)
        self._pixel_identity()["preprocessing"] = {"tracking": "colour L-inf", "colour_tol": self.colour_tol,
                                           "gravity_rel_tol": self.rel_tol, "cond_frames": self.cond_frames}

    def update(self, videos: Any, reference: Any = None, ground_truth: list[dict] | None = None,
               item_ids: list[str] | None = None) -> None:
        if reference is None or ground_truth is None:
            raise ValueError(f"{self.name} needs reference=[simulator clips] and ground_truth=[gt dicts]")
        super().update(videos, item_ids=item_ids, reference=list(reference), ground_truth=list(ground_truth))

    def score_video(self, video: np.ndarray, reference: np.ndarray,
                    ground_truth: dict) -> tuple[float, dict[str, float]]:
        objs = [o for o in ground_truth.get("objects", []) if "rgb" in o]
        if not objs:
            raise InvalidInputError("ground truth has no objects with 'rgb' colours to track")
        c = trajectory.trajectory_checks(video, np.asarray(reference), objs, float(ground_truth.get("fps", 8)),
                              start=self.cond_frames, tol=self.colour_tol, rel_tol=self.rel_tol)
        extra = {}
        for k in ("gravity", "teleport", "permanence"):
            ps = [v["passed"] for v in c[k].values() if v["passed"] is not None]
            extra[f"{k}_pass"] = float(np.mean(ps)) if ps else math.nan
        extra["interpenetration_pass"] = float(c["interpenetration"]["passed"])
        return c["pass_rate"], extra
