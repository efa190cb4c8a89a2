"""Corpus -> training batches, through :class:`skyloom.corpus.Corpus` only.

* Buckets of (resolution, frames, aspect ratio) with a per-bucket batch size (Open-Sora):
  each clip goes to the bucket whose aspect ratio is closest to its own (ties: the larger
  resolution that the clip does not need to be upscaled for); frames are centre-cropped to the
  bucket's aspect and resized, and a window of ``num_frames`` frames (every ``frame_stride``-th)
  is taken at a seeded random start.
* The batch sampler is a pure function of (seed, epoch, position): every epoch it shuffles each
  bucket's clips, cuts them into batches of that bucket's size, and shuffles the batches.
  ``state_dict()`` = (epoch, position) is saved in checkpoints, so resume continues with the
  very next batch. Distributed workers take every ``world_size``-th batch.
* Caption = the clip's newest caption of a kind in ``caption_kinds`` (dense, short or vlm by
  default), else "" (the model then learns it as an unconditional sample). With
  ``caption_mode=random`` each step draws one of the newest caption of each kind instead, so
  the model follows both short prompts and dense captions.

At scale (issue 29):

* The *training index* (:mod:`skyloom.model.data_index`: id, path, bucket, caption candidates per
  clip) is built from a columnar scan of five manifest columns in batches (:meth:`Corpus.iter_tables`),
  never from Python records of the whole corpus; captions stay Arrow strings (about 0.3 KB a clip,
  not ~10 KB of Python objects).
* Distributed workers read only their shard of it (same module): ``shard_ranks`` deals each bucket's clips
  round-robin (in id order) over the ranks, so shards are disjoint, cover the corpus, differ by at
  most one clip per bucket and depend only on the corpus; ``write_index`` stores the index
  with one row group per rank and ``read_index_shard`` reads only the row groups of its rank.
* Decoded clips live in an LRU cache bounded by ``cache_mb`` (:class:`ClipCache`).
* ``data.source=wds`` streams the tar shards of ``skyloom corpus export-wds`` instead
  (:mod:`skyloom.model.wds`).
"""

from __future__ import annotations

import logging
import math
import os
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pyarrow.compute as pc

from skyloom.config import ConfigError
from skyloom.corpus import ClipRecord, Corpus, CorpusError
from skyloom.model.config import Bucket, DataConfig

if TYPE_CHECKING:
    from skyloom.model.data_index import TrainIndex

logger = logging.getLogger(__name__)


@dataclass
class Batch:
    """One training batch: frames uint8 (B, T, H, W, 3), captions, clip ids, bucket index."""

    video: np.ndarray
    captions: list[str]
    ids: list[str]
    bucket: int


def caption_of(rec: ClipRecord, kinds: tuple[str, ...] = ("dense", "short")) -> str:
    """Newest caption whose kind is in ``kinds``; "" when there is none."""
    for c in reversed(rec.captions):
        if c.kind in kinds and c.text:
            return c.text
    return ""


def caption_candidates(rec: ClipRecord, kinds: tuple[str, ...], mode: str) -> list[str]:
    """Captions a training sample may use: the newest (``mode=newest``) or the newest of each kind
    (``mode=random``, one drawn per step); ``[""]`` when the clip has none."""
    if mode == "newest":
        return [caption_of(rec, kinds)]
    if mode != "random":
        raise ConfigError(f"data.caption_mode must be newest or random, got {mode!r}")
    out = [t for t in (caption_of(rec, (k,)) for k in kinds) if t]
    return out or [""]


def assign_bucket(width: int, height: int, buckets: tuple[Bucket, ...]) -> int:
    """Index of the bucket with the closest aspect ratio (ties: largest not-upscaled resolution)."""
    ar = math.log(width / height)

    def key(i: int) -> tuple[float, int, int]:
        b = buckets[i]
        upscale = int(b.height > height or b.width > width)
        return (round(abs(math.log(b.width / b.height) - ar), 6), upscale, -b.height * b.width)

    return min(range(len(buckets)), key=key)


def crop_resize(frames: np.ndarray, height: int, width: int) -> np.ndarray:
    """Centre-crop (T, H, W, 3) to the target aspect, then resize to (T, height, width, 3)."""
    import cv2

    T, H, W, _ = frames.shape
    target = width / height
    if W / H > target:  # too wide
        w = max(1, round(H * target))
        x0 = (W - w) // 2
        frames = frames[:, :, x0:x0 + w]
    elif W / H < target:
        h = max(1, round(W / target))
        y0 = (H - h) // 2
        frames = frames[:, y0:y0 + h]
    if frames.shape[1:3] == (height, width):
        return np.ascontiguousarray(frames)
    interp = cv2.INTER_AREA if frames.shape[1] > height else cv2.INTER_LINEAR
    return np.stack([cv2.resize(f, (width, height), interpolation=interp) for f in frames])


def check_buckets(buckets: tuple[Bucket, ...]) -> None:
    """Refuse an empty bucket list or a bucket with a non-positive field (ConfigError)."""
    if not buckets:
        raise ConfigError("data.buckets is empty: give at least one {height, width, num_frames, batch_size}")
    for i, b in enumerate(buckets):
        if min(b.height, b.width, b.num_frames, b.batch_size) <= 0:
            raise ConfigError(f"data.buckets[{i}] = {b}: all fields must be > 0")


def assign_buckets(width: np.ndarray, height: np.ndarray, buckets: tuple[Bucket, ...]) -> np.ndarray:
    """:func:`assign_bucket` of every clip, computed once per distinct (width, height): int16 (N,)."""
    key = (np.asarray(width, np.int64) << 32) | np.asarray(height, np.int64)
    uniq, inv = np.unique(key, return_inverse=True)
    per = np.array([assign_bucket(int(k >> 32), int(k & 0xFFFFFFFF), buckets) for k in uniq], np.int16)
    return per[inv] if len(key) else np.zeros(0, np.int16)


# -- decoded clips ---------------------------------------------------------------------------
class ClipCache:
    """LRU cache of decoded clips bounded by bytes (a clip larger than the bound is not kept)."""

    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = int(max_bytes)
        self._items: OrderedDict[Any, np.ndarray] = OrderedDict()
        self.bytes = 0
        self.hits = self.misses = self.evictions = 0

    def __len__(self) -> int:
        return len(self._items)

    def get(self, key: Any) -> np.ndarray | None:
        arr = self._items.get(key)
        if arr is None:
            self.misses += 1
            return None
        self._items.move_to_end(key)
        self.hits += 1
        return arr

    def put(self, key: Any, arr: np.ndarray) -> None:
        if arr.nbytes > self.max_bytes or key in self._items:
            return
        self._items[key] = arr
        self.bytes += arr.nbytes
        while self.bytes > self.max_bytes:
            _, old = self._items.popitem(last=False)
            self.bytes -= old.nbytes
            self.evictions += 1


def cache_bytes(cfg: DataConfig) -> int:
    """The clip cache's bound in bytes (0 = no cache)."""
    if cfg.cache_mb < 0:
        raise ConfigError(f"data.cache_mb must be >= 0, got {cfg.cache_mb}")
    return cfg.cache_mb << 20 if cfg.cache_clips else 0


def load_frames(source: str | os.PathLike | bytes, bucket: Bucket, frame_stride: int) -> np.ndarray:
    """Decode the first frames of a clip (a path, or the bytes of an mp4) and fit them to ``bucket``."""
    need = bucket.num_frames * frame_stride
    if isinstance(source, bytes):
        from skyloom.model.wds import read_video_bytes

        raw = read_video_bytes(source, num_frames=need * 4)  # (T, H, W, 3)
    else:
        from skyloom.video import read_video

        raw = read_video(source, num_frames=need * 4)  # (T, H, W, 3)
    return crop_resize(raw, bucket.height, bucket.width)


def window(frames: np.ndarray, bucket: Bucket, frame_stride: int, rng: np.random.Generator) -> np.ndarray:
    """``bucket.num_frames`` frames, every ``frame_stride``-th, from a random start drawn from ``rng``."""
    span = (bucket.num_frames - 1) * frame_stride + 1
    start = int(rng.integers(0, max(1, len(frames) - span + 1)))
    idx = np.minimum(start + frame_stride * np.arange(bucket.num_frames), len(frames) - 1)
    return frames[idx]


class CorpusVideoDataset:
    """Clips of one corpus split (or of a worker's shard of its index), with bucket and captions."""

    def __init__(self, corpus: Corpus | str | os.PathLike, cfg: DataConfig, index: TrainIndex | None = None) -> None:
        from skyloom.model.data_index import build_index

        self.root = Path(corpus.root if isinstance(corpus, Corpus) else corpus)
        self.cfg = cfg
        check_buckets(cfg.buckets)
        self.index = index if index is not None else build_index(corpus, cfg)
        if not len(self.index):
            raise CorpusError(f"corpus {self.root}: no clips in split {cfg.split!r} to train on")
        self.bucket_of = self.index.bucket
        self.cache = ClipCache(cache_bytes(cfg))
        n_cap = len(self.index) - int(pc.sum(pc.equal(pc.list_value_length(self.index.captions), 0)).as_py() or 0)
        logger.info("dataset: %d clips (%d captioned) in %d bucket(s); clip cache %d MiB", len(self.index), n_cap,
                    len(cfg.buckets), self.cache.max_bytes >> 20)

    def __len__(self) -> int:
        return len(self.index)

    def clip_id(self, i: int) -> str:
        return self.index.ids[i].as_py()

    def captions(self, i: int) -> list[str]:
        """Caption candidates of clip ``i`` (``[""]`` when it has none)."""
        return self.index.caption_candidates(i)

    def _frames(self, i: int) -> np.ndarray:
        frames = self.cache.get(i)
        if frames is None:
            b = self.cfg.buckets[int(self.bucket_of[i])]
            frames = load_frames(self.root / self.index.paths[i].as_py(), b, self.cfg.frame_stride)
            self.cache.put(i, frames)
        return frames

    def clip(self, i: int, rng: np.random.Generator) -> np.ndarray:
        """Frames of clip ``i`` for its bucket: uint8 (T, H, W, 3), random window from ``rng``."""
        return window(self._frames(i), self.cfg.buckets[int(self.bucket_of[i])], self.cfg.frame_stride, rng)


class BucketBatchSampler:
    """Deterministic, resumable batches of clip indices, one bucket per batch.

    Every epoch has the same number of batches (per bucket ``max(n, batch_size) // batch_size``),
    so a position in the stream is one number, :meth:`drawn`; a worker of a multi-worker run
    resumes from the number of batches every worker has drawn (one per step).
    """

    def __init__(self, bucket_of: Sequence[int] | np.ndarray, buckets: tuple[Bucket, ...], seed: int,
                 rank: int = 0, world_size: int = 1) -> None:
        self.bucket_of, self.buckets, self.seed = np.asarray(bucket_of, np.int64), buckets, seed
        self.rank, self.world_size = rank, world_size
        self.epoch, self.position = 0, 0
        self._members = [np.flatnonzero(self.bucket_of == b) for b in range(len(buckets))]
        self.epoch_len = sum(max(len(m), bk.batch_size) // bk.batch_size for m, bk in zip(self._members, buckets)
                             if len(m))
        self._plan: tuple[np.ndarray, list[np.ndarray]] | None = None

    def _epoch_plan(self, epoch: int) -> tuple[np.ndarray, list[np.ndarray]]:
        """(order (n_batches, 2) of (bucket, row), per bucket its (rows, batch_size) matrix of clip indices)."""
        # one worker: the seed sequence of the single-process sampler; several: each its own stream
        rng = np.random.default_rng([self.seed, epoch] if self.world_size == 1 else [self.seed, epoch, self.rank])
        mats: list[np.ndarray] = []
        order: list[tuple[int, int]] = []
        for b, bucket in enumerate(self.buckets):
            members = self._members[b]
            if not len(members):
                mats.append(np.zeros((0, bucket.batch_size), np.int64))
                continue
            members = members[rng.permutation(len(members))]
            bs = bucket.batch_size
            if len(members) < bs:  # tiny corpora: repeat clips to fill one batch
                members = np.resize(members, bs)
            nb = len(members) // bs
            mats.append(members[:nb * bs].reshape(nb, bs))
            order += [(b, k) for k in range(nb)]
        arr = np.asarray(order, np.int64).reshape(-1, 2)
        return arr[rng.permutation(len(arr))], mats

    def batches(self, epoch: int) -> list[tuple[int, list[int]]]:
        """All (bucket, indices) batches of ``epoch``, in order."""
        order, mats = self._epoch_plan(epoch)
        return [(int(b), mats[b][k].tolist()) for b, k in order]

    def __iter__(self):
        return self

    def __next__(self) -> tuple[int, list[int], int]:
        """(bucket, indices, batch seed); the seed is unique per (epoch, position, rank)."""
        if self.position >= self.epoch_len:
            self.epoch, self.position = self.epoch + 1, 0
            self._plan = None
        if self._plan is None:
            self._plan = self._epoch_plan(self.epoch)
        order, mats = self._plan
        b, k = (int(x) for x in order[self.position])
        seed = (self.epoch << 20) + self.position * self.world_size + self.rank
        self.position += 1
        return b, mats[b][k].tolist(), seed

    def drawn(self) -> int:
        """Batches drawn so far (all epochs)."""
        return self.epoch * self.epoch_len + self.position

    def state_dict(self) -> dict[str, Any]:
        return {"epoch": self.epoch, "position": self.position, "seed": self.seed, "drawn": self.drawn()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if self.world_size > 1 and "drawn" in state:  # rank 0's count: every worker draws one batch per step
            self.epoch, self.position = divmod(int(state["drawn"]), self.epoch_len)
        else:
            self.epoch, self.position = int(state["epoch"]), int(state["position"])
        self._plan = None


class BatchLoader:
    """Dataset + sampler -> :class:`Batch` objects (the caller owns the sampler's state)."""

    def __init__(self, dataset: CorpusVideoDataset, seed: int, rank: int = 0, world_size: int = 1) -> None:
        self.dataset = dataset
        self.sampler = BucketBatchSampler(dataset.bucket_of, dataset.cfg.buckets, seed, rank, world_size)
        self.seed = seed

    def __iter__(self):
        return self

    def __next__(self) -> Batch:
        b, idx, bseed = next(self.sampler)
        rng = np.random.default_rng([self.seed, 1, bseed])
        video = np.stack([self.dataset.clip(i, rng) for i in idx])  # (B, T, H, W, 3)
        caps = [self.dataset.captions(i) for i in idx]
        captions = [c[int(rng.integers(len(c)))] if len(c) > 1 else c[0] for c in caps]
        return Batch(video=video, captions=captions, ids=[self.dataset.clip_id(i) for i in idx], bucket=b)


def make_loader(corpus: str | os.PathLike, cfg: DataConfig, seed: int, rank: int = 0, world_size: int = 1,
                index_path: str | os.PathLike | None = None):
    """The batch loader of a run: ``data.source=corpus`` (the training index, this worker's shard of
    it when ``index_path`` is given) or ``data.source=wds`` (:class:`skyloom.model.wds.WdsLoader`).

    Both have ``sampler.state_dict()``/``load_state_dict()`` and ``sampler.epoch``.
    """
    if cfg.source == "wds":
        from skyloom.model.wds import WdsLoader

        return WdsLoader(corpus, cfg, seed, rank, world_size)
    from skyloom.model.data_index import build_index, read_index_shard, shard_ranks

    index = None
    if index_path is not None:
        index, _ = read_index_shard(index_path, rank, world_size, cfg)
    elif world_size > 1:  # no index written for us: build it and keep our shard
        full = build_index(corpus, cfg)
        index = full.take(np.flatnonzero(shard_ranks(full.bucket, world_size) == rank))
    return BatchLoader(CorpusVideoDataset(corpus, cfg, index=index), seed, rank, world_size)
