"""Metrics in torchmetrics' shape: ``update`` accumulates, ``merge`` combines shards, ``compute``.

State is float64 and mergeable: Fréchet metrics keep (count, Σx, Σxxᵀ) per side with compensated
(two-sum) accumulation, per-video metrics keep per-item values and sum them with ``math.fsum``, so
neither the split across Ray shards/processes nor the merge order changes a result (bitwise);
metric objects pickle without their extractor (rebuilt lazily from its name). The maths lives in
pure functions (``skyloom.eval.frechet``, ``skyloom.eval.temporal``, ``skyloom.eval.physics``) with the formulas.

Every :class:`MetricResult` records the metric version, the extractor, its weights hash (or
``"random-init"``/``"none"``), its preprocessing and the sample counts.

Example:
    >>> import numpy as np
    >>> from tests.conftest import moving_square_video
    >>> m = METRICS.get("temporal_flickering")()
    >>> m.update(np.stack([moving_square_video()]))
    >>> r = m.compute(); (r.n, r.value > 0.9)
    (1, True)
"""

from __future__ import annotations

import logging
import math
from abc import ABC, abstractmethod
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from skyloom.eval import temporal
from skyloom.eval.features import NO_WEIGHTS, check_videos, get_extractor, l2_normalise
from skyloom.registry import Registry

log = logging.getLogger(__name__)

METRICS: Registry[Any] = Registry("metric", group="skyloom.metrics")
METRICS.register_lazy("fvd", "skyloom.eval.fvd:FVD")
METRICS.register_lazy("kvd", "skyloom.eval.fvd:KVD")
METRICS.register_lazy("physics_iq", "skyloom.eval.physics:PhysicsIQ")
METRICS.register_lazy("physics_iq_scene", "skyloom.eval.physics:PhysicsIQScene")
METRICS.register_lazy("physics_trajectory", "skyloom.eval.physics:PhysicsTrajectory")
METRICS.register_lazy("colour_motion", "skyloom.eval.colour_motion:ColourMotion")


@dataclass
class MetricResult:
    """One metric's number and exactly how it was computed."""

    name: str
    value: float
    n: int
    higher_is_better: bool
    metric_version: str
    extractor: str | None
    weights: str | None
    preprocessing: dict[str, Any]
    per_item: dict[str, float] | None = None
    details: dict[str, Any] = field(default_factory=dict)
    stderr: float | None = None

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["value"] = _json_float(self.value)
        if self.per_item is not None:
            d["per_item"] = {k: _json_float(v) for k, v in self.per_item.items()}
        return d


def _json_float(x: float) -> float | None:
    return None if x is None or not math.isfinite(x) else float(x)


class CompensatedSum:
    """A float64 array sum with a two-sum error term (Neumaier): order-independent to ~1e-30."""

    def __init__(self, shape: tuple[int, ...] = ()) -> None:
        self.hi = np.zeros(shape, np.float64)
        self.lo = np.zeros(shape, np.float64)

    def add(self, x: np.ndarray) -> None:
        x = np.asarray(x, np.float64)
        s = self.hi + x
        bp = s - self.hi
        self.lo += (self.hi - (s - bp)) + (x - bp)
        self.hi = s

    def merge(self, other: CompensatedSum) -> None:
        self.add(other.hi)
        self.add(other.lo)

    @property
    def value(self) -> np.ndarray:
        return self.hi + self.lo


class Metric(ABC):
    """Base: extractor handling, identity, pickling, merge compatibility checks.

    Args:
        extractor: a registered extractor name, an extractor object, or None (pixel metrics).
        extractor_kwargs: constructor arguments when ``extractor`` is a name.
    """

    name: str = "metric"
    version: str = "1"
    higher_is_better: bool = True
    default_extractor: str | None = None
    # What update() takes (names in skyloom.eval.dispatch.INPUTS); suites and `eval score` feed it from these.
    inputs: tuple[str, ...] = ("videos",)
    optional_inputs: tuple[str, ...] = ()  # passed when every item has them
    config_class: type | None = None  # optional frozen dataclass the settings are checked against

    def __init__(self, extractor: Any = "default", extractor_kwargs: dict[str, Any] | None = None) -> None:
        if extractor == "default":
            extractor = self.default_extractor
        self._extractor_obj = None if isinstance(extractor, str) or extractor is None else extractor
        self._extractor_name = extractor if isinstance(extractor, str) else None
        self._extractor_kwargs = dict(extractor_kwargs or {})
        self._identity: dict[str, Any] | None = (self._extractor_obj.identity() if self._extractor_obj is not None
                                                 else None if extractor is not None else
                                                 {"extractor": None, "weights": NO_WEIGHTS, "preprocessing": {}})
        self.reset()

    # -- extractor -----------------------------------------------------------------------
    @property
    def extractor(self) -> Any:
        if self._extractor_obj is None:
            if self._extractor_name is None:
                raise RuntimeError(f"metric {self.name!r} lost its extractor object when pickled; "
                                   "call .attach(extractor) before update()")
            self._extractor_obj = get_extractor(self._extractor_name, **self._extractor_kwargs)
            self._identity = self._extractor_obj.identity()
        return self._extractor_obj

    def attach(self, extractor: Any) -> None:
        """Give an unpickled metric its extractor back (must have the same identity)."""
        ident = extractor.identity()
        if self._identity is not None and ident != self._identity:
            raise ValueError(f"extractor identity {ident} differs from this metric's {self._identity}")
        self._extractor_obj, self._identity = extractor, ident

    def identity(self) -> dict[str, Any]:
        if self._identity is None:
            _ = self.extractor
        return dict(self._identity)

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state["_extractor_obj"] = None  # models are not shipped between processes
        return state

    # -- torchmetrics shape --------------------------------------------------------------
    @abstractmethod
    def reset(self) -> None:
        """Clear the accumulated state."""

    @abstractmethod
    def update(self, videos: Any, **kwargs: Any) -> None:
        """Accumulate a batch of uint8 (N, T, H, W, 3) videos."""

    @abstractmethod
    def _merge_state(self, other: Metric) -> None: ...

    @abstractmethod
    def compute(self) -> MetricResult:
        """Derive the number from the accumulated state."""

    def merge(self, other: Metric) -> Metric:
        """Fold ``other``'s state into this one (exact; shards may come from other processes)."""
        if type(other) is not type(self) or other.version != self.version:
            raise ValueError(f"cannot merge {type(other).__name__} v{other.version} into {type(self).__name__} "
                             f"v{self.version}")
        if self._identity and other._identity and self._identity != other._identity:
            raise ValueError(f"cannot merge {self.name}: extractor differs ({other._identity} vs {self._identity})")
        self._identity = self._identity or other._identity
        self._merge_state(other)
        return self

    def _result(self, value: float, n: int, **kw: Any) -> MetricResult:
        ident = self._identity or {"extractor": self._extractor_name, "weights": None, "preprocessing": {}}
        return MetricResult(name=self.name, value=float(value), n=int(n), higher_is_better=self.higher_is_better,
                            metric_version=self.version, extractor=ident["extractor"], weights=ident["weights"],
                            preprocessing=ident["preprocessing"], **kw)


class PerItemMetric(Metric):
    """Mean of a per-video score; state = item ids + float64 values (merge concatenates)."""

    inputs = ("videos", "item_ids")

    def reset(self) -> None:
        self._ids: list[str | None] = []
        self._values: list[float] = []
        self._extra: dict[str, list[float]] = {}

    @abstractmethod
    def score_video(self, video: np.ndarray, **kwargs: Any) -> float | tuple[float, dict[str, float]]:
        """Score one uint8 (T, H, W, 3) video."""

    def update(self, videos: Any, item_ids: list[str] | None = None, **kwargs: Any) -> None:
        """Score each video; per-video keyword lists (``prompts=[...]``) are split across items."""
        vids = list(videos) if isinstance(videos, (list, tuple)) else list(check_videos(videos))
        if item_ids is not None and len(item_ids) != len(vids):
            raise ValueError(f"{len(item_ids)} item_ids for {len(vids)} videos")
        for k, v in kwargs.items():
            if v is not None and len(v) != len(vids):
                raise ValueError(f"{k}: {len(v)} entries for {len(vids)} videos")
        for i, vid in enumerate(vids):
            out = self.score_video(np.asarray(vid), **{k: v[i] for k, v in kwargs.items() if v is not None})
            value, extra = out if isinstance(out, tuple) else (out, {})
            self._ids.append(None if item_ids is None else str(item_ids[i]))
            self._values.append(float(value))
            for k, x in extra.items():
                self._extra.setdefault(k, [math.nan] * (len(self._values) - 1)).append(float(x))
            for k in self._extra:
                if len(self._extra[k]) < len(self._values):
                    self._extra[k].append(math.nan)

    def _merge_state(self, other: Metric) -> None:
        assert isinstance(other, PerItemMetric)
        n0 = len(self._values)
        self._ids += other._ids
        self._values += other._values
        for k in set(self._extra) | set(other._extra):
            mine = self._extra.get(k, [math.nan] * n0)
            self._extra[k] = mine + other._extra.get(k, [math.nan] * len(other._values))

    def compute(self) -> MetricResult:
        vals = [v for v in self._values if math.isfinite(v)]
        if not vals:
            raise ValueError(f"{self.name}: no (finite) per-video scores to average; update() with videos first")
        ids = [i if i is not None else f"item-{k:06d}" for k, i in enumerate(self._ids)]
        if len(set(ids)) != len(ids):
            raise ValueError(f"{self.name}: duplicate item ids across shards")
        mean = self.aggregate(vals)
        stderr = float(np.std(vals, ddof=1) / math.sqrt(len(vals))) if len(vals) > 1 else None
        details = {"skipped_non_finite": len(self._values) - len(vals)}
        for k, xs in self._extra.items():
            ok = [x for x in xs if math.isfinite(x)]
            details[k] = math.fsum(ok) / len(ok) if ok else None
        details.update(self._details())
        return self._result(mean, len(vals), per_item=dict(zip(ids, self._values)), details=details, stderr=stderr)

    def _details(self) -> dict[str, Any]:
        return {}

    def aggregate(self, values: list[float]) -> float:
        """The metric's value from its finite per-item values (default: the mean)."""
        return math.fsum(values) / len(values)


class _FrameFeatureMetric(PerItemMetric):
    default_extractor = "clip"

    def frame_features(self, video: np.ndarray) -> np.ndarray:
        ex = self.extractor
        if not hasattr(ex, "encode_frames"):
            raise ValueError(f"{self.name} needs a frame extractor (encode_frames); {ex.name!r} has none")
        return np.asarray(ex.encode_frames(video), np.float64)  # (T, D)


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

    def __init__(self, protocol: str = "vbench-static", flow: str = "dis", **kw: Any) -> None:
        if protocol not in self.PROTOCOLS:
            raise ValueError(f"unknown flickering protocol {protocol!r}; valid: {', '.join(self.PROTOCOLS)}")
        if flow not in temporal.FLOW_METHODS:
            raise ValueError(f"unknown flow {flow!r}; valid: {', '.join(temporal.FLOW_METHODS)}")
        self.protocol, self.flow = protocol, flow
        super().__init__(None)
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
class WarpingError(PerItemMetric):
    """Lai et al. 2018 warping error with OpenCV flow (``dis`` or ``farneback``); lower is better.

    ``protocol="lai2018"`` (default) is Lai et al.'s ``evaluate_WarpError.py``; ``"rgb-sum"`` is
    skyloom's earlier variant (3× larger, fully occluded pairs skipped). See ``temporal``.
    """

    name = "warping_error"
    version = "2"  # 2: Lai et al.'s normalisation by default
    higher_is_better = False
    default_extractor = None

    def __init__(self, flow: str = "dis", protocol: str = "lai2018", **kw: Any) -> None:
        if flow not in temporal.FLOW_METHODS:
            raise ValueError(f"unknown flow {flow!r}; valid: {', '.join(temporal.FLOW_METHODS)}")
        if protocol not in temporal.WARP_PROTOCOLS:
            valid = ", ".join(temporal.WARP_PROTOCOLS)
            raise ValueError(f"unknown warping-error protocol {protocol!r}; valid: {valid}")
        self.flow, self.protocol = flow, protocol
        super().__init__(None)
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
    """

    name = "dynamic_degree"
    default_extractor = None

    def __init__(self, flow: str = "dis", **kw: Any) -> None:
        if flow not in temporal.FLOW_METHODS:
            raise ValueError(f"unknown flow {flow!r}; valid: {', '.join(temporal.FLOW_METHODS)}")
        self.flow = flow
        super().__init__(None)
        self._identity = {"extractor": f"opencv-{flow}-flow", "weights": NO_WEIGHTS,
                          "preprocessing": {"protocol": f"vbench-opencv-{flow}", "flow": flow,
                                            "rule": "top-5% magnitude > 6*min(H,W)/256 in >= round(4T/16) pairs"}}

    def score_video(self, video: np.ndarray) -> tuple[float, dict[str, float]]:
        moving, mags = temporal.dynamic_degree(video, self.flow)
        return float(moving), {"motion_px": float(np.mean(mags))}

    def _details(self) -> dict[str, Any]:
        return {"protocol": f"vbench-opencv-{self.flow}"}


@METRICS.register("clipsim")
class CLIPSim(_FrameFeatureMetric):
    """CLIPSIM: per-frame cosine(CLIP image, CLIP text), averaged over frames then videos.

    ``scale="raw"`` reports the cosine (Make-A-Video's 0.3049 on MSR-VTT). ``scale="x100"`` is
    torchmetrics' ``CLIPScore``: per video 100·mean_t cos (no floor), and the value is
    ``max(mean, 0)`` — the floor applies to the mean, not to each frame (videos of equal length, as
    in a suite; ``details.torchmetrics_clip_score`` weights by frames exactly as torchmetrics does).
    Both per-video figures are in ``details`` (``raw``, ``x100``); the model and weights are recorded.

    ``update(videos, prompts=[...])``.
    """

    name = "clipsim"
    version = "2"  # 2: open_clip's transform; x100 floors the mean
    inputs = ("videos", "item_ids", "prompts")

    def __init__(self, extractor: Any = "default", extractor_kwargs: dict[str, Any] | None = None,
                 scale: str = "raw") -> None:
        if scale not in ("raw", "x100"):
            raise ValueError(f"scale must be 'raw' or 'x100', got {scale!r}")
        self.scale = scale
        if scale == "x100":
            self.name = "clipsim_x100"
        super().__init__(extractor, extractor_kwargs)

    def update(self, videos: Any, prompts: list[str] | None = None, item_ids: list[str] | None = None) -> None:
        if prompts is None:
            raise ValueError(f"{self.name} needs prompts: update(videos, prompts=[...])")
        super().update(videos, item_ids=item_ids, prompts=list(prompts))

    def score_video(self, video: np.ndarray, prompts: str = "") -> tuple[float, dict[str, float]]:
        img = l2_normalise(self.frame_features(video))  # (T, D)
        txt = l2_normalise(np.asarray(self.extractor.encode_text([prompts]), np.float64))[0]  # (D,)
        raw, x100 = clipsim_from_embeddings(img, txt)
        return (raw if self.scale == "raw" else x100), {"raw": raw, "x100": x100, "frames": float(len(img))}

    def aggregate(self, values: list[float]) -> float:
        mean = math.fsum(values) / len(values)
        return max(mean, 0.0) if self.scale == "x100" else mean

    def compute(self) -> MetricResult:
        r = super().compute()
        pairs = [(x, n) for x, n in zip(self._extra.get("x100", []), self._extra.get("frames", [])) if math.isfinite(x)]
        if pairs:  # torchmetrics: max(Σ score / n_samples, 0) over every (frame, prompt) pair
            r.details["torchmetrics_clip_score"] = max(0.0, math.fsum(x * n for x, n in pairs) /
                                                       math.fsum(n for _, n in pairs))
        return r

    def _details(self) -> dict[str, Any]:
        return {"scale": self.scale, "floor": "max(mean, 0) (torchmetrics CLIPScore)" if self.scale == "x100" else None}


def clipsim_from_embeddings(frames: np.ndarray, text: np.ndarray) -> tuple[float, float]:
    """(raw, x100) CLIPSIM of one video: mean_t cos(e_t, e_text) and 100·mean_t cos (unfloored; the
    ``clipsim_x100`` metric floors the mean over videos at 0, as torchmetrics' CLIPScore)."""
    cos = l2_normalise(frames) @ l2_normalise(text)  # (T,)
    return float(cos.mean()), float(100.0 * cos.mean())


@METRICS.register("clipsim_x100")
class CLIPSimX100(CLIPSim):
    """CLIPSIM on torchmetrics CLIPScore's scale: max(100·mean cos, 0)."""

    name = "clipsim_x100"

    def __init__(self, extractor: Any = "default", extractor_kwargs: dict[str, Any] | None = None,
                 scale: str = "x100") -> None:
        super().__init__(extractor, extractor_kwargs, scale=scale)


def __getattr__(name: str) -> Any:
    """``skyloom.eval.metrics.FVD`` / ``KVD`` live in ``skyloom.eval.fvd`` (imported on first use)."""
    if name in ("FVD", "KVD"):
        import skyloom.eval.fvd as fvd_module

        return getattr(fvd_module, name)
    raise AttributeError(f"module 'skyloom.eval.metrics' has no attribute {name!r}")
