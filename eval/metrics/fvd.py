"""FVD and KVD metrics (distribution distances on video features), mergeable across shards.

Registered in ``skyloom.eval.metrics.METRICS`` as ``fvd`` and ``kvd``; the maths is in
``skyloom.eval.functional.frechet``.

Example:
    >>> import numpy as np
    >>> m = FVD(extractor="pixels")
    >>> rng = np.random.default_rng(0)
    >>> m.update_features(rng.normal(size=(50, 4)), real=True)
    >>> m.update_features(rng.normal(size=(50, 4)) + 1.0)
    >>> r = m.compute(); (r.n, r.details["protocol"], round(r.value) >= 3)
    (50, 'fvd50_16f', True)
"""

from __future__ import annotations

import copy
import hashlib
import io
import zlib
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from skyloom.eval.features.base import check_videos
from skyloom.eval.functional import frechet
from skyloom.eval.metrics.base import METRICS, CompensatedSum, Metric, MetricResult


@dataclass(frozen=True)
class FVDConfig:
    """Settings of ``fvd``."""

    num_frames: int = 16  # clip length fed to the extractor
    num_videos: int = 2048  # the protocol's sample count; fewer samples are flagged in details
    ddof: int = 0  # covariance normalisation (0 = StyleGAN-V's /N)
    seed: int = 0  # seeds the random window of each real clip


@dataclass(frozen=True)
class KVDConfig:
    """Settings of ``kvd``."""

    num_frames: int = 16  # clip length fed to the extractor
    num_subsets: int = 0  # MMD over random subsets (0: the whole sets)
    subset_size: int = 1000  # size of each subset
    seed: int = 0  # seeds real-clip windows and subsets


@METRICS.register("fvd")
class FVD(Metric):
    """Fréchet Video Distance on I3D logits; ``fvd2048_16f`` protocol by default.

    ``update(videos, real=False)``: generated clips use their first ``num_frames`` frames, real
    clips a random window (seeded by ``seed`` and the clip's bytes, so independent of sharding).
    The reference (real) statistics survive :meth:`reset` unless ``keep_reference=False`` and
    can be saved with :meth:`save_reference` / loaded with :meth:`load_reference`.

    Settings (:class:`FVDConfig`): ``num_frames``, ``num_videos``, ``ddof``, ``seed``.
    """

    name = "fvd"
    higher_is_better = False
    default_extractor = "i3d"
    inputs = ("videos", "real_videos")  # set-level: update(real, real=True) / update_features(...)
    config_class: type = FVDConfig

    def __init__(self, config: FVDConfig | None = None, *, extractor: Any = "default",
                 extractor_kwargs: dict[str, Any] | None = None) -> None:
        config = config or FVDConfig()
        self.num_frames, self.num_videos, self.ddof = int(config.num_frames), int(config.num_videos), int(config.ddof)
        self.seed = int(config.seed)
        self._sides: dict[str, dict[str, Any]] = {"real": self._empty(), "fake": self._empty()}
        super().__init__(config, extractor=extractor, extractor_kwargs=extractor_kwargs)

    @staticmethod
    def _empty() -> dict[str, Any]:
        return {"n": 0, "s1": None, "s2": None, "hashes": Counter()}

    def reset(self, keep_reference: bool = True) -> None:
        real = self._sides["real"] if keep_reference else self._empty()
        self._sides = {"real": real, "fake": self._empty()}

    def clip(self, video: np.ndarray, real: bool) -> np.ndarray:
        t = video.shape[0]
        if t < self.num_frames:
            raise ValueError(f"{self.name}: clip has {t} frames, the protocol needs {self.num_frames}")
        if not real or t == self.num_frames:
            return video[: self.num_frames]
        key = zlib.crc32(np.ascontiguousarray(video[0]).tobytes())
        off = int(np.random.default_rng([self.seed, key]).integers(0, t - self.num_frames + 1))
        return video[off: off + self.num_frames]

    def update(self, videos: Any, real: bool = False) -> None:
        vids = list(videos) if isinstance(videos, (list, tuple)) else list(check_videos(videos))
        if not vids:
            return
        clips = [self.clip(np.asarray(v), real) for v in vids]
        for shape in dict.fromkeys(c.shape for c in clips):  # clips of different sizes: one batch per size
            batch = np.stack([c for c in clips if c.shape == shape])  # (N, num_frames, H, W, 3)
            self.update_features(self.extractor.encode_videos(batch), real=real)

    def update_features(self, features: np.ndarray, real: bool = False) -> None:
        """Accumulate precomputed (N, D) features of one side."""
        f = np.asarray(features, np.float64)  # (N, D)
        if f.ndim != 2 or not np.all(np.isfinite(f)):
            raise ValueError(f"{self.name}: features must be finite (N, D), got shape {f.shape}")
        side = self._sides["real" if real else "fake"]
        if side["s1"] is None:
            side["s1"], side["s2"] = CompensatedSum((f.shape[1],)), CompensatedSum((f.shape[1], f.shape[1]))
        elif side["s1"].hi.shape[0] != f.shape[1]:
            raise ValueError(f"{self.name}: feature dim {f.shape[1]} != {side['s1'].hi.shape[0]} seen before")
        side["n"] += f.shape[0]
        side["s1"].add(f.sum(axis=0))
        side["s2"].add(f.T @ f)  # (D, D)
        side["hashes"].update(_row_hashes(f))  # duplicated clips inflate FVD: count them

    def _merge_state(self, other: Metric) -> None:
        assert isinstance(other, FVD)
        if (other.num_frames, other.ddof) != (self.num_frames, self.ddof):
            raise ValueError(f"cannot merge {self.name}: num_frames/ddof {other.num_frames}/{other.ddof} vs "
                             f"{self.num_frames}/{self.ddof}")
        for k in ("real", "fake"):
            a, b = self._sides[k], other._sides[k]
            if b["n"] == 0:
                continue
            if a["n"] == 0:
                self._sides[k] = copy.deepcopy(b)
                continue
            a["n"] += b["n"]
            a["s1"].merge(b["s1"])
            a["s2"].merge(b["s2"])
            a["hashes"].update(b["hashes"])

    def stats(self, real: bool) -> tuple[np.ndarray, np.ndarray]:
        s = self._sides["real" if real else "fake"]
        if s["n"] <= self.ddof:
            raise ValueError(f"{self.name}: {s['n']} {'real' if real else 'generated'} sample(s); need more")
        return frechet.stats_from_moments(s["n"], s["s1"].value, s["s2"].value, self.ddof)

    def save_reference(self, path: str | Path) -> Path:
        """Cache the real-side sufficient statistics (+ identity) as .npz."""
        import json

        from skyloom.fsutil import atomic_write_bytes

        s = self._sides["real"]
        if s["n"] == 0:
            raise ValueError(f"{self.name}: no reference statistics to save")
        buf = io.BytesIO()
        np.savez(buf, n=s["n"], s1_hi=s["s1"].hi, s1_lo=s["s1"].lo, s2_hi=s["s2"].hi, s2_lo=s["s2"].lo,
                 meta=json.dumps({"metric": self.name, "version": self.version, "identity": self.identity(),
                                  "num_frames": self.num_frames, "seed": self.seed}))
        return atomic_write_bytes(path, buf.getvalue())

    def load_reference(self, path: str | Path) -> None:
        """Load statistics saved by :meth:`save_reference`; the extractor and protocol must match."""
        import json

        z = np.load(path)
        meta = json.loads(str(z["meta"]))
        mine = {"identity": self.identity(), "num_frames": self.num_frames, "version": self.version}
        theirs = {"identity": meta["identity"], "num_frames": meta["num_frames"], "version": meta["version"]}
        if mine != theirs:
            raise ValueError(f"{path}: reference statistics computed differently: {theirs} vs {mine}")
        s1, s2 = CompensatedSum(), CompensatedSum()
        s1.hi, s1.lo, s2.hi, s2.lo = z["s1_hi"], z["s1_lo"], z["s2_hi"], z["s2_lo"]
        self._sides["real"] = {"n": int(z["n"]), "s1": s1, "s2": s2, "hashes": Counter()}

    def compute(self) -> MetricResult:
        mu_r, sig_r = self.stats(real=True)
        mu_f, sig_f = self.stats(real=False)
        value = max(0.0, frechet.frechet_distance(mu_f, sig_f, mu_r, sig_r))
        nr, nf = self._sides["real"]["n"], self._sides["fake"]["n"]
        return self._result(value, nf, details={
            "n_real": nr, "n_generated": nf, "num_frames": self.num_frames, "ddof": self.ddof,
            "protocol": f"fvd{min(nr, nf)}_{self.num_frames}f",
            "standard_protocol": nr >= self.num_videos and nf >= self.num_videos,
            "sqrt": "cholesky + symmetric eigenvalues (float64)", "feature_dim": int(mu_r.shape[0]),
            "rank_deficient": min(nr, nf) <= mu_r.shape[0],
            "duplicates_generated": _duplicates(self._sides["fake"]),
            "duplicates_real": _duplicates(self._sides["real"])})


def _row_hashes(f: np.ndarray) -> list[str]:
    return [hashlib.blake2b(np.ascontiguousarray(r).tobytes(), digest_size=8).hexdigest() for r in f]


def _duplicates(side: dict[str, Any]) -> int | None:
    """Clips whose features repeat another's exactly (None when unknown, e.g. cached statistics)."""
    h = side.get("hashes")
    if h is None or sum(h.values()) != side["n"]:
        return None
    return int(side["n"] - len(h))


@METRICS.register("kvd")
class KVD(FVD):
    """Kernel Video Distance: unbiased cubic-polynomial MMD² on the FVD features.

    Keeps the features themselves (float64; the kernel has no small sufficient statistic), so it
    suits the small samples where FVD is biased. Merge concatenates; order does not matter.
    """

    name = "kvd"
    config_class = KVDConfig

    def __init__(self, config: KVDConfig | None = None, *, extractor: Any = "default",
                 extractor_kwargs: dict[str, Any] | None = None) -> None:
        config = config or KVDConfig()
        self.num_subsets, self.subset_size = int(config.num_subsets), int(config.subset_size)
        super().__init__(FVDConfig(num_frames=config.num_frames, seed=config.seed), extractor=extractor,
                         extractor_kwargs=extractor_kwargs)
        self.config = config

    @staticmethod
    def _empty() -> dict[str, Any]:
        return {"n": 0, "feats": []}

    def update_features(self, features: np.ndarray, real: bool = False) -> None:
        f = np.asarray(features, np.float64)
        if f.ndim != 2 or not np.all(np.isfinite(f)):
            raise ValueError(f"{self.name}: features must be finite (N, D), got shape {f.shape}")
        side = self._sides["real" if real else "fake"]
        side["n"] += f.shape[0]
        side["feats"].append(f)

    def _merge_state(self, other: Metric) -> None:
        assert isinstance(other, KVD)
        if other.num_frames != self.num_frames:
            raise ValueError(f"cannot merge {self.name}: num_frames {other.num_frames} vs {self.num_frames}")
        for k in ("real", "fake"):
            self._sides[k]["n"] += other._sides[k]["n"]
            self._sides[k]["feats"] += [f.copy() for f in other._sides[k]["feats"]]

    def _features(self, real: bool) -> np.ndarray:
        s = self._sides["real" if real else "fake"]
        if s["n"] < 2:
            raise ValueError(f"{self.name}: {s['n']} {'real' if real else 'generated'} sample(s); need >= 2")
        f = np.concatenate(s["feats"])
        return f[np.lexsort(f.T[::-1])]  # canonical order: merge order cannot change the sums

    def save_reference(self, path: str | Path) -> Path:  # pragma: no cover - FVD's statistics only
        raise NotImplementedError("KVD keeps raw features; cache FVD statistics or the features instead")

    def compute(self) -> MetricResult:
        x, y = self._features(False), self._features(True)
        value, std = frechet.kvd(x, y, num_subsets=self.num_subsets, subset_size=self.subset_size, seed=self.seed)
        return self._result(value, x.shape[0], stderr=std if self.num_subsets else None, details={
            "n_real": y.shape[0], "n_generated": x.shape[0], "num_frames": self.num_frames,
            "duplicates_generated": int(len(x) - len(np.unique(x, axis=0))),
            "duplicates_real": int(len(y) - len(np.unique(y, axis=0))),
            "kernel": "(x·y/d + 1)^3", "estimator": "unbiased MMD²", "num_subsets": self.num_subsets,
            "subset_size": self.subset_size if self.num_subsets else None})
