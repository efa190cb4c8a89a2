"""The metric base and registry. Metrics in torchmetrics' shape: ``update`` accumulates, ``merge``
combines shards, ``compute``.

State is float64 and mergeable: Fréchet metrics keep (count, Σx, Σxxᵀ) per side with compensated
(two-sum) accumulation, per-video metrics keep per-item values and sum them with ``math.fsum``, so
neither the split across Ray shards/processes nor the merge order changes a result (bitwise);
metric objects pickle without their extractor (rebuilt lazily from its name). The maths lives in
pure functions (``skyloom.eval.functional``: ``frechet``, ``temporal``, ``physics_iq``, ``trajectory``)
with the formulas.

Every :class:`MetricResult` records the metric version, the extractor, its weights hash (or
``"random-init"``/``"none"``), its preprocessing and the sample counts.

Example:
    >>> import numpy as np
    >>> from tests.conftest import moving_square_video
    >>> m = METRICS.build("temporal_flickering")
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

from skyloom.eval.features.base import NO_WEIGHTS, check_videos, get_extractor
from skyloom.eval.metrics.inputs import check_declared_inputs
from skyloom.registry import Registry

log = logging.getLogger(__name__)

# Every metric declares config_class (its settings) and inputs, checked against update() when it registers.
METRICS: Registry[Any] = Registry("metric", group="skyloom.metrics", check=check_declared_inputs)
for _name, _target in {
    "subject_consistency": "temporal:SubjectConsistency", "background_consistency": "temporal:BackgroundConsistency",
    "clip_temp": "temporal:ClipTemp", "temporal_flickering": "temporal:TemporalFlickering",
    "warping_error": "temporal:WarpingErrorMetric", "dynamic_degree": "temporal:DynamicDegree",
    "clipsim": "clipsim:CLIPSim", "clipsim_x100": "clipsim:CLIPSimX100",
}.items():
    METRICS.register_lazy(_name, "skyloom.eval.metrics." + _target)
METRICS.register_lazy("fvd", "skyloom.eval.metrics.fvd:FVD")
METRICS.register_lazy("kvd", "skyloom.eval.metrics.fvd:KVD")
METRICS.register_lazy("physics_iq", "skyloom.eval.metrics.physics:PhysicsIQ")
METRICS.register_lazy("physics_iq_exact", "skyloom.eval.metrics.physics:PhysicsIQExact")
METRICS.register_lazy("physics_iq_scene", "skyloom.eval.metrics.physics:PhysicsIQScene")
METRICS.register_lazy("physics_trajectory", "skyloom.eval.metrics.physics:PhysicsTrajectory")
METRICS.register_lazy("colour_motion", "skyloom.eval.metrics.colour_motion:ColourMotion")


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

    Built by ``METRICS.build(name, options=settings, extractor=...)``, i.e. ``cls(config, extractor=...)``.

    Args:
        config: the metric's settings, an instance of its ``config_class`` (None: the defaults).
        extractor: a registered extractor name, an extractor object, or None (pixel metrics).
        extractor_kwargs: constructor arguments when ``extractor`` is a name.
    """

    name: str = "metric"
    version: str = "1"
    higher_is_better: bool = True
    default_extractor: str | None = None
    # What update() takes (names in skyloom.eval.metrics.inputs.INPUTS); suites and `eval score` feed it from these.
    inputs: tuple[str, ...] = ("videos",)
    optional_inputs: tuple[str, ...] = ()  # passed when every item has them
    config_class: type | None = None  # the settings, a frozen dataclass (required to register)

    def __init__(self, config: Any = None, *, extractor: Any = "default",
                 extractor_kwargs: dict[str, Any] | None = None) -> None:
        if config is None and self.config_class is not None:
            config = self.config_class()
        self.config = config
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

