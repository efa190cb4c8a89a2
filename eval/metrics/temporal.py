"""Temporal-quality metrics: VBench subject/background consistency, CLIP-Temp, flickering, warping error,
dynamic degree (the maths in :mod:`skyloom.eval.functional.temporal`)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from skyloom.config import ConfigError
from skyloom.eval.features.base import NO_WEIGHTS
from skyloom.eval.functional import temporal
from skyloom.eval.metrics.base import METRICS, MetricResult, PerItemMetric, _FrameFeatureMetric
from skyloom.registry import NoOptions


def _check_choice(what: str, value: str, valid: tuple[str, ...]) -> str:
    if value not in valid:
        raise ConfigError(f"unknown {what} {value!r}; valid: {', '.join(valid)}")
    return value


@dataclass(frozen=True)
class TemporalFlickeringConfig:
    """Settings of ``temporal_flickering``."""

    protocol: str = "vbench-static"  # "vbench-static": static videos only, as VBench; "all": every video
    flow: str = "dis"  # OpenCV optical flow of the static filter: "dis" or "farneback"


@dataclass(frozen=True)
class WarpingErrorConfig:
    """Settings of ``warping_error``."""

    flow: str = "dis"  # OpenCV optical flow: "dis" or "farneback"
    protocol: str = "lai2018"  # "lai2018": Lai et al.'s evaluate_WarpError.py; "rgb-sum": skyloom's earlier variant


@dataclass(frozen=True)
class DynamicDegreeConfig:
    """Settings of ``dynamic_degree``."""

    flow: str = "dis"  # OpenCV optical flow: "dis" or "farneback" (VBench uses RAFT)
    # the videos' frame rate: VBench keeps every max(1, round(fps/8))-th frame first; None keeps every frame
    # (a suite passes its generation.fps, `eval score` each file's rate)
    fps: float | None = None


@METRICS.register("subject_consistency")
class SubjectConsistency(_FrameFeatureMetric):
    """VBench subject consistency (``temporal.vbench_consistency``) on DINO ViT-B/16 features
    (``dino`` extractor: VBench's ``dino_transform`` and DINO's forward); any frame extractor can be
    passed and is recorded.

    Aggregation as VBench: the sum of all frame terms divided by the number of terms
    (``details.vbench_frame_weighted``; equal to the mean of per-video values when every video has
    the same length, as in a suite); ``value`` is that number.
    """

    name = "subject_consistency"
    version = "2"  # 2: VBench transforms, DINO pos-embed, frame-weighted
    default_extractor = "dino"
    config_class = NoOptions

    def score_video(self, video: np.ndarray) -> tuple[float, dict[str, float]]:
        terms = temporal.vbench_consistency_per_frame(self.frame_features(video))  # (T-1,)
        return float(terms.mean()), {"frame_terms": float(len(terms))}

    def compute(self) -> MetricResult:
        r = super().compute()
        w = self._extra.get("frame_terms", [])
        pairs = [(v, n) for v, n in zip(self._values, w) if math.isfinite(v)]
        if pairs:  # VBench: Σ_videos Σ_t term / Σ_videos (T - 1)
            r.value = math.fsum(v * n for v, n in pairs) / math.fsum(n for _, n in pairs)
            r.details["vbench_frame_weighted"] = r.value
            r.details["aggregate"] = "sum of frame terms / number of frame terms (VBench)"
        return r


@METRICS.register("background_consistency")
class BackgroundConsistency(SubjectConsistency):
    """VBench background consistency: the same formula on CLIP ViT-B/32 frame features with
    VBench's ``clip_transform`` (default extractor ``clip?preprocess=vbench``)."""

    name = "background_consistency"
    default_extractor = "clip?preprocess=vbench"


@METRICS.register("clip_temp")
class ClipTemp(_FrameFeatureMetric):
    """EvalCrafter CLIP-Temp: mean cosine of consecutive frames' CLIP embeddings."""

    name = "clip_temp"
    config_class = NoOptions

    def score_video(self, video: np.ndarray) -> float:
        return temporal.clip_temp(self.frame_features(video))


@METRICS.register("temporal_flickering")
class TemporalFlickering(PerItemMetric):
    """VBench temporal flickering on raw uint8 frames.

    ``protocol="vbench-static"`` (default) scores, as VBench does, only the videos its static
    filter accepts (:func:`temporal.vbench_is_static`, OpenCV flow); a moving video gets no score
    (NaN, counted in ``details.skipped_non_finite``/``non_static``), so a frozen generator cannot top
    this column by not moving. ``protocol="all"`` scores every video. Read it beside
    ``dynamic_degree``.
    """

    name = "temporal_flickering"
    version = "2"  # 2: static videos only by default
    default_extractor = None
    PROTOCOLS = ("vbench-static", "all")
    # A NaN per-item value is an exclusion by protocol, not a failure (the scorer lists it as excluded).
    nan_means = "excluded: not static (VBench scores flickering on static videos only)"
    config_class = TemporalFlickeringConfig

    def __init__(self, config: TemporalFlickeringConfig | None = None) -> None:
        config = config or TemporalFlickeringConfig()
        protocol = _check_choice("flickering protocol", config.protocol, self.PROTOCOLS)
        flow = _check_choice("flow", config.flow, temporal.FLOW_METHODS)
        self.protocol, self.flow = protocol, flow
        super().__init__(config, extractor=None)
        if protocol != "all":
            self._identity = {"extractor": f"opencv-{flow}-flow", "weights": NO_WEIGHTS,
                              "preprocessing": {"protocol": protocol, "static_filter": "VBench rule, OpenCV flow"}}

    def score_video(self, video: np.ndarray) -> tuple[float, dict[str, float]]:
        if self.protocol == "vbench-static" and not temporal.vbench_is_static(video, self.flow):
            return math.nan, {"static": 0.0}
        return temporal.temporal_flickering(video), {"static": 1.0}

    def compute(self) -> MetricResult:
        if self.protocol == "vbench-static" and self._values and not any(math.isfinite(v) for v in self._values):
            ids = [i if i is not None else f"item-{k:06d}" for k, i in enumerate(self._ids)]
            note = (f"none of the {len(self._values)} video(s) is static, and VBench scores flickering on static "
                    "videos only (protocol='all' scores every video)")
            return self._result(math.nan, 0, per_item=dict(zip(ids, self._values)),
                                details={**self._details(), "note": note})
        return super().compute()

    def _details(self) -> dict[str, Any]:
        return {"protocol": self.protocol, "non_static": sum(1 for v in self._values if not math.isfinite(v))}


@METRICS.register("warping_error")
class WarpingErrorMetric(PerItemMetric):
    """Lai et al. 2018 warping error with OpenCV flow (``dis`` or ``farneback``); lower is better.

    ``protocol="lai2018"`` (default) is Lai et al.'s ``evaluate_WarpError.py``; ``"rgb-sum"`` is
    skyloom's earlier variant (3× larger, fully occluded pairs skipped). See ``temporal``.
    """

    name = "warping_error"
    version = "2"  # 2: Lai et al.'s normalisation by default
    higher_is_better = False
    default_extractor = None

    config_class = WarpingErrorConfig

    def __init__(self, config: WarpingErrorConfig | None = None) -> None:
        config = config or WarpingErrorConfig()
        flow = _check_choice("flow", config.flow, temporal.FLOW_METHODS)
        protocol = _check_choice("warping-error protocol", config.protocol, temporal.WARP_PROTOCOLS)
        self.flow, self.protocol = flow, protocol
        super().__init__(config, extractor=None)
        self._identity = {"extractor": f"opencv-{flow}-flow", "weights": NO_WEIGHTS,
                          "preprocessing": {"range": [0, 1], "flow": flow, "grey": "cv2 RGB2GRAY", "protocol": protocol,
                                            "occlusion": "Lai et al. 2018 fw-bw + motion boundary"}}

    def score_video(self, video: np.ndarray) -> float:
        return temporal.warping_error(video, self.flow, self.protocol)

    def _details(self) -> dict[str, Any]:
        return {"protocol": self.protocol}


@METRICS.register("dynamic_degree")
class DynamicDegree(PerItemMetric):
    """VBench dynamic degree: the fraction of videos that move (VBench's rule, OpenCV flow, no weights).

    Protocol ``vbench-opencv-<flow>``: a variant of VBench's (which uses RAFT); per video 1 if
    dynamic else 0 (:func:`temporal.dynamic_degree`); ``details.motion_px`` is the mean top-5 %
    flow magnitude. Shown beside the temporal metrics: a static video scores 0 here.

    Args:
        flow: OpenCV flow method.
        fps: the videos' frame rate: VBench keeps every ``round(fps/8)``-th frame first (a 30 fps
            clip moves 4x less per frame than at 8 fps). In a suite the scorer passes the suite's
            ``generation.fps``; ``skyloom eval score`` reads each file's rate. None: every frame.
    """

    name = "dynamic_degree"
    default_extractor = None

    config_class = DynamicDegreeConfig

    def __init__(self, config: DynamicDegreeConfig | None = None) -> None:
        config = config or DynamicDegreeConfig()
        self.flow = flow = _check_choice("flow", config.flow, temporal.FLOW_METHODS)
        if config.fps is not None and not config.fps > 0:
            raise ConfigError(f"dynamic_degree fps must be > 0, got {config.fps}")
        self.fps = None if config.fps is None else float(config.fps)
        super().__init__(config, extractor=None)
        self._identity = {"extractor": f"opencv-{flow}-flow", "weights": NO_WEIGHTS,
                          "preprocessing": {"protocol": f"vbench-opencv-{flow}", "flow": flow, "fps": self.fps,
                                            "frames": f"every {temporal.vbench_frame_interval(self.fps)}-th "
                                                      "(VBench: max(1, round(fps/8)))",
                                            "rule": "top-5% magnitude > 6*min(H,W)/256 in >= round(4T/16) pairs"}}

    def score_video(self, video: np.ndarray) -> tuple[float, dict[str, float]]:
        moving, mags = temporal.dynamic_degree(video, self.flow, fps=self.fps)
        return float(moving), {"motion_px": float(np.mean(mags))}

    def _details(self) -> dict[str, Any]:
        return {"protocol": f"vbench-opencv-{self.flow}"}


