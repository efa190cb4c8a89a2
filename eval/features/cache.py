"""Feature cache: features per (video hash, extractor), so nothing is encoded twice.

The reference clips of a suite and every video that did not change between two evaluations
(same checkpoint, prompt, seed and sampler -> same pixels) are encoded once; later evaluations
read the features from disk.

Keys:

- the *extractor key* is the extractor's name plus a hash of its identity (name, weights hash,
  preprocessing), so a retrained evaluator or a changed resize never reads stale features;
- the *input key* is a BLAKE2b hash of the exact uint8 array the extractor sees (shape + bytes):
  a video ``(T, H, W, 3)``, a frame ``(H, W, 3)`` or a UTF-8 text.
- *aliases* map a cheap key (a reference clip's file sha256 + how it is read) to the input key,
  so a warm cache needs not even decode the reference clips.

Layout: ``CACHE/<extractor key>/<k[:2]>/<k>.npy`` (float32, written atomically: a crash never
leaves a torn entry) and ``CACHE/aliases/<a[:2]>/<a>.txt``. Safe for several processes (entries are
immutable and idempotent). The default root is ``$SKYLOOM_CACHE_DIR`` or
``~/.cache/skyloom/features``.

Example:
    >>> import numpy as np, tempfile
    >>> from skyloom.eval.features.base import get_extractor
    >>> cache = FeatureCache(tempfile.mkdtemp())
    >>> ex = CachedExtractor(get_extractor("pixels"), cache)
    >>> v = np.zeros((2, 4, 16, 16, 3), np.uint8)
    >>> _ = ex.encode_videos(v); _ = ex.encode_videos(v)
    >>> cache.stats["misses"], cache.stats["hits"]
    (2, 2)
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from skyloom.fsutil import atomic_path, atomic_write_text

logger = logging.getLogger(__name__)


def default_cache_dir() -> Path:
    return Path(os.environ.get("SKYLOOM_CACHE_DIR") or Path.home() / ".cache" / "skyloom" / "features")


def array_key(arr: np.ndarray) -> str:
    """BLAKE2b-128 of an array's dtype, shape and bytes."""
    a = np.ascontiguousarray(arr)
    h = hashlib.blake2b(digest_size=16)
    h.update(f"{a.dtype.str}{a.shape}".encode())
    h.update(a.tobytes())  # the same bytes memoryview(a).cast("B") gave
    return h.hexdigest()


def text_key(text: str) -> str:
    return hashlib.blake2b(b"text:" + text.encode("utf-8"), digest_size=16).hexdigest()


def extractor_key(extractor: Any) -> str:
    """``<safe name>-<hash of name, weights, preprocessing>``."""
    ident = {"name": getattr(extractor, "name", type(extractor).__name__),
             "weights": getattr(extractor, "weights", None),
             "preprocessing": getattr(extractor, "preprocessing", None)}
    h = hashlib.sha256(json.dumps(ident, sort_keys=True, default=str).encode()).hexdigest()[:16]
    safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in str(ident["name"]))[:48]
    return f"{safe}-{h}"


class FeatureCache:
    """On-disk feature store keyed by (extractor key, input key); counts hits and misses.

    Args:
        root: cache directory (default :func:`default_cache_dir`).
        enabled: ``False`` makes every lookup a miss and stores nothing (for cold benchmarks).
    """

    def __init__(self, root: str | os.PathLike | None = None, enabled: bool = True) -> None:
        self.root = Path(root) if root is not None else default_cache_dir()
        self.enabled = enabled
        self.stats = {"hits": 0, "misses": 0, "encoded": 0}

    def _path(self, ekey: str, key: str) -> Path:
        return self.root / ekey / key[:2] / f"{key}.npy"

    def get(self, ekey: str, key: str) -> np.ndarray | None:
        if not self.enabled:
            self.stats["misses"] += 1
            return None
        p = self._path(ekey, key)
        try:
            arr = np.load(p, allow_pickle=False)
        except FileNotFoundError:
            self.stats["misses"] += 1
            return None
        except (ValueError, OSError) as e:  # a damaged entry: recompute it
            logger.warning("feature cache entry %s is unreadable (%s); recomputing", p, e)
            self.stats["misses"] += 1
            return None
        self.stats["hits"] += 1
        return arr

    def put(self, ekey: str, key: str, value: np.ndarray) -> None:
        if not self.enabled:
            return
        p = self._path(ekey, key)
        with atomic_path(p, suffix=".npy") as tmp, open(tmp, "wb") as f:
            np.save(f, np.asarray(value, np.float32), allow_pickle=False)

    def get_many(self, ekey: str, keys: Sequence[str], compute: Callable[[list[int]], np.ndarray]) -> np.ndarray:
        """Rows for ``keys``; ``compute(missing indices) -> (M, D)`` encodes only the misses.

        Returns:
            float32 (N, D) in the order of ``keys``.
        """
        rows: list[np.ndarray | None] = [self.get(ekey, k) for k in keys]
        missing = [i for i, r in enumerate(rows) if r is None]
        if missing:
            new = np.asarray(compute(missing))  # (M, D)
            if new.shape[0] != len(missing):
                raise ValueError(f"extractor returned {new.shape[0]} rows for {len(missing)} inputs")
            self.stats["encoded"] += len(missing)
            for i, row in zip(missing, new):
                self.put(ekey, keys[i], row)
                rows[i] = np.asarray(row, np.float32)
        if not rows:
            return np.zeros((0, 0), np.float32)
        return np.stack([r for r in rows if r is not None]).astype(np.float32)  # (N, D): every row filled above

    # -- aliases: cheap key (file hash + read settings) -> input key ----------------------
    def _alias_path(self, alias: str) -> Path:
        h = hashlib.blake2b(alias.encode(), digest_size=16).hexdigest()
        return self.root / "aliases" / h[:2] / f"{h}.txt"

    def get_alias(self, alias: str) -> str | None:
        if not self.enabled:
            return None
        try:
            return self._alias_path(alias).read_text().strip() or None
        except FileNotFoundError:
            return None

    def put_alias(self, alias: str, key: str) -> None:
        if self.enabled:
            atomic_write_text(self._alias_path(alias), key)


class CachedExtractor:
    """Wraps an extractor: same interface, features read from / written to a :class:`FeatureCache`.

    Videos are keyed per clip, frames per frame, texts per string, so a batch that is partly
    cached encodes only the new part. Attributes (``name``, ``weights``, ``preprocessing``,
    ``dim``, ``identity()``, ...) are those of the wrapped extractor.
    """

    def __init__(self, extractor: Any, cache: FeatureCache) -> None:
        self.inner = extractor
        self.cache = cache
        self.ekey = extractor_key(extractor)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    def encode_videos(self, videos: np.ndarray, keys: Sequence[str] | None = None) -> np.ndarray:
        """uint8 (N, T, H, W, 3) -> (N, D); ``keys`` (precomputed input keys) skip hashing."""
        v = np.asarray(videos)
        keys = list(keys) if keys is not None else [array_key(x) for x in v]
        return self.cache.get_many("v-" + self.ekey, keys, lambda idx: self.inner.encode_videos(v[idx]))

    def encode_frames(self, frames: np.ndarray) -> np.ndarray:
        """uint8 (N, H, W, 3) -> (N, D); extractors with ``sequence_frames`` (frame embeddings that
        depend on the whole clip) are cached per sequence, others per frame."""
        f = np.asarray(frames)
        if getattr(self.inner, "sequence_frames", False):
            return self.cache.get_many("s-" + self.ekey, [array_key(f)],
                                       lambda idx: self.inner.encode_frames(f)[None])[0]
        keys = [array_key(x) for x in f]
        return self.cache.get_many("f-" + self.ekey, keys, lambda idx: self.inner.encode_frames(f[idx]))

    def encode_text(self, texts: list[str]) -> np.ndarray:
        keys = [text_key(t) for t in texts]
        return self.cache.get_many("t-" + self.ekey, keys, lambda idx: self.inner.encode_text([texts[i] for i in idx]))
