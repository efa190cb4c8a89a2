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
"""

from __future__ import annotations

import logging
import math
import os
from dataclasses import dataclass
from typing import Any

import numpy as np

from skyloom.config import ConfigError
from skyloom.corpus import ClipRecord, Corpus, CorpusError
from skyloom.model.config import Bucket, DataConfig

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


class CorpusVideoDataset:
    """Clips of one corpus split, with their bucket and caption."""

    def __init__(self, corpus: Corpus | str | os.PathLike, cfg: DataConfig) -> None:
        self.corpus = corpus if isinstance(corpus, Corpus) else Corpus(corpus)
        self.cfg = cfg
        if not cfg.buckets:
            raise ConfigError("data.buckets is empty: give at least one {height, width, num_frames, batch_size}")
        for i, b in enumerate(cfg.buckets):
            if min(b.height, b.width, b.num_frames, b.batch_size) <= 0:
                raise ConfigError(f"data.buckets[{i}] = {b}: all fields must be > 0")
        recs = sorted(self.corpus.records(split=cfg.split), key=lambda r: r.id)
        if cfg.max_clips > 0:
            recs = recs[:cfg.max_clips]
        if not recs:
            raise CorpusError(f"corpus {self.corpus.root}: no clips in split {cfg.split!r} to train on")
        self.records = recs
        self.bucket_of = [assign_bucket(r.width, r.height, cfg.buckets) for r in recs]
        self.captions = [caption_candidates(r, tuple(cfg.caption_kinds), cfg.caption_mode) for r in recs]
        self._cache: dict[int, np.ndarray] = {}
        n_cap = sum(1 for c in self.captions if c != [""])
        logger.info("dataset: %d clips (%d captioned) in %d bucket(s)", len(recs), n_cap, len(cfg.buckets))

    def __len__(self) -> int:
        return len(self.records)

    def _frames(self, i: int) -> np.ndarray:
        if i in self._cache:
            return self._cache[i]
        b = self.cfg.buckets[self.bucket_of[i]]
        need = b.num_frames * self.cfg.frame_stride
        from skyloom.video import read_video

        raw = read_video(self.corpus.abspath(self.records[i]), num_frames=need * 4)  # (T, H, W, 3)
        frames = crop_resize(raw, b.height, b.width)
        if self.cfg.cache_clips:
            self._cache[i] = frames
        return frames

    def clip(self, i: int, rng: np.random.Generator) -> np.ndarray:
        """Frames of clip ``i`` for its bucket: uint8 (T, H, W, 3), random window from ``rng``."""
        b = self.cfg.buckets[self.bucket_of[i]]
        frames = self._frames(i)
        span = (b.num_frames - 1) * self.cfg.frame_stride + 1
        start = int(rng.integers(0, max(1, len(frames) - span + 1)))
        idx = np.minimum(start + self.cfg.frame_stride * np.arange(b.num_frames), len(frames) - 1)
        return frames[idx]


class BucketBatchSampler:
    """Deterministic, resumable batches of clip indices, one bucket per batch."""

    def __init__(self, bucket_of: list[int], buckets: tuple[Bucket, ...], seed: int,
                 rank: int = 0, world_size: int = 1) -> None:
        self.bucket_of, self.buckets, self.seed = bucket_of, buckets, seed
        self.rank, self.world_size = rank, world_size
        self.epoch, self.position = 0, 0
        self._epoch_batches: list[tuple[int, list[int]]] | None = None

    def batches(self, epoch: int) -> list[tuple[int, list[int]]]:
        """All (bucket, indices) batches of ``epoch`` for this rank, in order."""
        rng = np.random.default_rng([self.seed, epoch])
        out: list[tuple[int, list[int]]] = []
        for b, bucket in enumerate(self.buckets):
            members = [i for i, x in enumerate(self.bucket_of) if x == b]
            if not members:
                continue
            members = [members[j] for j in rng.permutation(len(members))]
            bs = bucket.batch_size
            if len(members) < bs:  # tiny corpora: repeat clips to fill one batch
                members = (members * math.ceil(bs / len(members)))[:bs]
            out += [(b, members[k:k + bs]) for k in range(0, len(members) - bs + 1, bs)]
        out = [out[j] for j in rng.permutation(len(out))]
        mine = out[self.rank::self.world_size]
        return mine or out[:1]

    def __iter__(self):
        return self

    def __next__(self) -> tuple[int, list[int], int]:
        """(bucket, indices, batch seed); the seed is unique per (epoch, position)."""
        if self._epoch_batches is None:
            self._epoch_batches = self.batches(self.epoch)
        if self.position >= len(self._epoch_batches):
            self.epoch, self.position = self.epoch + 1, 0
            self._epoch_batches = self.batches(self.epoch)
        b, idx = self._epoch_batches[self.position]
        seed = (self.epoch << 20) + self.position * self.world_size + self.rank
        self.position += 1
        return b, idx, seed

    def state_dict(self) -> dict[str, Any]:
        return {"epoch": self.epoch, "position": self.position, "seed": self.seed}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.epoch, self.position = int(state["epoch"]), int(state["position"])
        self._epoch_batches = None


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
        caps = [self.dataset.captions[i] for i in idx]
        captions = [c[int(rng.integers(len(c)))] if len(c) > 1 else c[0] for c in caps]
        return Batch(video=video, captions=captions,
                     ids=[self.dataset.records[i].id for i in idx], bucket=b)
