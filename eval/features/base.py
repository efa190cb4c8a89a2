"""Feature extractors: the registry and the two extractor shapes every metric consumes.

An extractor has ``.name``, ``.weights`` (sha256 of the weights file, ``"random-init"`` or
``"none"`` for weight-free extractors), ``.preprocessing`` (a dict describing exactly how pixels
become model input), ``.dim`` and either

* ``encode_videos(videos uint8 (N, T, H, W, 3)) -> (N, D)`` (video extractors: I3D, ...), or
* ``encode_frames(frames uint8 (N, H, W, 3)) -> (N, D)`` and ``encode_text(list[str]) -> (N, D)``
  (CLIP-like extractors, L2-normalised outputs).

``EXTRACTORS`` maps a name to an extractor class built as ``cls(config)`` from its options checked
against its ``config_class`` (:meth:`skyloom.registry.Registry.build`); entries are lazy so
torch/open_clip load only when used. ``get_extractor(name, **options)`` builds one.

Example:
    >>> import numpy as np
    >>> ex = get_extractor("pixels")
    >>> ex.encode_videos(np.zeros((2, 4, 16, 16, 3), np.uint8)).shape
    (2, 96)
"""

from __future__ import annotations

import logging
import os
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from skyloom.errors import InvalidInputError
from skyloom.registry import Registry

if TYPE_CHECKING:
    from skyloom.eval.features.indomain import InDomainExtractor

log = logging.getLogger(__name__)

EXTRACTORS: Registry[Any] = Registry("feature extractor", group="skyloom.extractors")
EXTRACTORS.register_lazy("i3d", "skyloom.eval.features.i3d:I3DExtractor")
EXTRACTORS.register_lazy("i3d-torchscript", "skyloom.eval.features.i3d:TorchScriptI3DExtractor")
EXTRACTORS.register_lazy("clip", "skyloom.eval.features.clip:OpenCLIPExtractor")
EXTRACTORS.register_lazy("dino", "skyloom.eval.features.dino:DinoExtractor")

RANDOM_INIT = "random-init"
NO_WEIGHTS = "none"


class _Extractor(ABC):
    """What every extractor states about itself, and what a result records of it."""

    name: str
    weights: str
    preprocessing: dict[str, Any]
    dim: int

    def identity(self) -> dict[str, Any]:
        """What a result records about the extractor."""
        return {"extractor": self.name, "weights": self.weights, "preprocessing": dict(self.preprocessing)}


class VideoExtractor(_Extractor):
    """Maps whole clips to one feature vector each."""

    kind = "video"

    @abstractmethod
    def encode_videos(self, videos: np.ndarray) -> np.ndarray:
        """uint8 (N, T, H, W, 3) -> float (N, D)."""


class FrameTextExtractor(_Extractor):
    """CLIP-like: frames and texts into one L2-normalised embedding space."""

    kind = "frame"

    @abstractmethod
    def encode_frames(self, frames: np.ndarray) -> np.ndarray:
        """uint8 (N, H, W, 3) -> L2-normalised float (N, D)."""

    def encode_text(self, texts: list[str]) -> np.ndarray:
        """list of N strings -> L2-normalised float (N, D)."""
        raise NotImplementedError(f"extractor {self.name!r} has no text encoder; use a CLIP-like extractor")

    def _encode_frame_batches(self, frames: np.ndarray, embed: Callable[[np.ndarray], Any]) -> np.ndarray:
        """The loop every torch frame extractor shares: uint8 (N, H, W, 3) frames in batches of
        ``self.batch_size`` through ``embed`` (a uint8 batch -> torch (B, D)), L2-normalised, float64 (N, D)."""
        import torch
        import torch.nn.functional as F

        f = np.asarray(frames)
        if f.ndim != 4 or f.shape[-1] != 3 or f.dtype != np.uint8:
            raise ValueError(f"frames: expected uint8 (N, H, W, 3), got {f.dtype} {f.shape}")
        batch, dim = int(getattr(self, "batch_size")), int(getattr(self, "dim"))  # noqa: B009 - set by subclasses
        out = []
        with torch.inference_mode():
            for i in range(0, len(f), batch):
                out.append(F.normalize(embed(f[i:i + batch]).float(), dim=-1).double().cpu().numpy())  # (B, D)
        return np.concatenate(out) if out else np.zeros((0, dim))


def check_videos(videos: Any, what: str = "videos", min_frames: int = 1) -> np.ndarray:
    """Validate a uint8 (N, T, H, W, 3) batch (a list of equal-shape clips is stacked)."""
    if isinstance(videos, (list, tuple)):
        shapes = {np.shape(v) for v in videos}
        if len(shapes) > 1:
            raise InvalidInputError(f"{what}: clips have different shapes {sorted(shapes)}; pass them one at a time")
        videos = np.stack(videos) if videos else np.zeros((0, min_frames, 1, 1, 3), np.uint8)
    v = np.asarray(videos)
    if v.ndim != 5 or v.shape[-1] != 3:
        raise InvalidInputError(f"{what}: expected uint8 (N, T, H, W, 3), got shape {v.shape}")
    if v.dtype != np.uint8:
        raise InvalidInputError(f"{what}: expected dtype uint8 (0..255 RGB), got {v.dtype}")
    if v.shape[1] < min_frames:
        raise InvalidInputError(f"{what}: {v.shape[1]} frame(s) per clip, need at least {min_frames}")
    return v


def l2_normalise(x: np.ndarray, eps: float = 1e-12) -> np.ndarray:
    x = np.asarray(x, np.float64)
    return x / np.maximum(np.linalg.norm(x, axis=-1, keepdims=True), eps)


def weights_hash(path: str | os.PathLike) -> str:
    """sha256 of a weights file, cached by (path, size, mtime) for large checkpoints."""
    from skyloom.fsutil import sha256_file

    p = Path(path)
    st = p.stat()
    key = (str(p.resolve()), st.st_size, st.st_mtime_ns)
    if key not in _HASH_CACHE:
        _HASH_CACHE[key] = sha256_file(p)
    return _HASH_CACHE[key]


_HASH_CACHE: dict[tuple[str, int, int], str] = {}


def get_extractor(name: str, **kwargs: Any) -> VideoExtractor | FrameTextExtractor | InDomainExtractor:
    """Build the extractor registered as ``name`` with constructor ``kwargs``.

    ``indomain:PATH`` loads the in-domain evaluator trained by ``skyloom eval train-evaluator``
    (its folder is its weights, so it takes no ``kwargs``). ``name?key=value&...`` adds options
    (values parsed as YAML), e.g. ``clip?preprocess=vbench``. ``kwargs`` are checked against the
    extractor's ``config_class`` (an unknown or mistyped option is a ``ConfigError``).
    """
    if "?" in name and not name.startswith("indomain:"):
        import yaml

        name, _, query = name.partition("?")
        for part in query.split("&"):
            k, _, v = part.partition("=")
            kwargs.setdefault(k, yaml.safe_load(v))
    if name.startswith("indomain:"):
        if kwargs:
            raise InvalidInputError(f"extractor {name!r} takes no options (got {', '.join(sorted(kwargs))})")
        from skyloom.eval.features.indomain import load_evaluator

        return load_evaluator(name.split(":", 1)[1])
    return EXTRACTORS.build(name, options=kwargs, where=f"extractor {name} options")


@dataclass(frozen=True)
class PixelConfig:
    """Options of the ``pixels`` extractor."""

    size: int = 8  # frame thumbnail side (frame features: 3 * size**2)
    grid: int = 4  # video thumbnail side (video features: 2 * 3 * grid**2)


@EXTRACTORS.register("pixels")
class PixelExtractor(VideoExtractor, FrameTextExtractor):
    """Weight-free features for tests, smoke runs and probes (not for reporting).

    Frames: an ``size × size`` area-downsampled RGB thumbnail in [0, 1], mean-centred and
    L2-normalised (dim ``3·size²``). Videos: the mean frame thumbnail and the mean absolute
    temporal difference thumbnail, concatenated (dim ``2·3·grid²``), so both appearance and
    motion move it.
    """

    kind = "video+frame"
    config_class = PixelConfig

    def __init__(self, config: PixelConfig | None = None) -> None:
        config = config or PixelConfig()
        self.size, self.grid = int(config.size), int(config.grid)
        self.name = f"pixels-{self.size}"
        self.weights = NO_WEIGHTS
        self.dim = 3 * self.size * self.size
        self.video_dim = 2 * 3 * self.grid * self.grid
        self.preprocessing = {"resize": "area", "frame_size": [self.size, self.size],
                              "video_grid": [self.grid, self.grid], "range": [0, 1]}

    @staticmethod
    def _thumb(frames: np.ndarray, s: int) -> np.ndarray:
        import cv2

        out = np.stack([cv2.resize(f, (s, s), interpolation=cv2.INTER_AREA) for f in frames])  # (N, s, s, 3)
        return out.astype(np.float64) / 255.0

    def encode_frames(self, frames: np.ndarray) -> np.ndarray:
        f = np.asarray(frames)
        if f.ndim != 4 or f.shape[-1] != 3:
            raise ValueError(f"frames: expected uint8 (N, H, W, 3), got shape {f.shape}")
        t = self._thumb(f, self.size).reshape(len(f), -1)  # (N, 3·s²)
        return l2_normalise(t - t.mean(axis=1, keepdims=True))

    def encode_videos(self, videos: np.ndarray) -> np.ndarray:
        v = check_videos(videos, min_frames=2)
        feats = []
        for clip in v:
            th = self._thumb(clip, self.grid)  # (T, g, g, 3)
            feats.append(np.concatenate([th.mean(0).ravel(), np.abs(np.diff(th, axis=0)).mean(0).ravel()]))
        return np.asarray(feats, np.float64).reshape(len(v), self.video_dim)  # (N, 2·3·g²)

    def identity(self) -> dict[str, Any]:
        return {"extractor": self.name, "weights": self.weights, "preprocessing": dict(self.preprocessing)}
