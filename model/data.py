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

* The *training index* (:class:`TrainIndex`: id, path, bucket, caption candidates per clip) is
  built from a columnar scan of five manifest columns in batches (:meth:`Corpus.iter_tables`),
  never from Python records of the whole corpus; captions stay Arrow strings (about 0.3 KB a clip,
  not ~10 KB of Python objects).
* Distributed workers read only their shard of it: :func:`shard_ranks` deals each bucket's clips
  round-robin (in id order) over the ranks, so shards are disjoint, cover the corpus, differ by at
  most one clip per bucket and depend only on the corpus; :func:`write_index` stores the index
  with one row group per rank and :func:`read_index_shard` reads only the row groups of its rank.
* Decoded clips live in an LRU cache bounded by ``cache_mb`` (:class:`ClipCache`).
* ``data.source=wds`` streams the tar shards of ``skyloom corpus export-wds`` instead
  (:mod:`skyloom.model.wds`).
"""

from __future__ import annotations

import json
import logging
import math
import os
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from skyloom.config import ConfigError, to_dict
from skyloom.corpus import ClipRecord, Corpus, CorpusError
from skyloom.fsutil import atomic_path
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


# -- the training index ----------------------------------------------------------------------
INDEX_COLUMNS = ("id", "path", "width", "height", "captions")  # what the index reads of the manifest
SCAN_BATCH_ROWS = 65_536  # rows per batch read from the manifest (bounds the memory of a build)
INDEX_FORMAT = "skyloom-train-index"


def _last_per_row(rows: np.ndarray) -> np.ndarray:
    """Mask of the last entry of each run of equal ``rows`` (``rows`` sorted)."""
    return np.r_[rows[1:] != rows[:-1], True] if len(rows) else np.zeros(0, bool)


def index_captions(captions: pa.Array | pa.ChunkedArray, kinds: Sequence[str], mode: str) -> pa.ListArray:
    """:func:`caption_candidates` of every clip at once, from the manifest's ``captions`` column.

    Returns a ``list<string>`` array (N,): per clip the newest non-empty caption of a kind in
    ``kinds`` (``mode=newest``), or the newest of each kind in ``kinds`` order (``mode=random``);
    an empty list when there is none. Vectorised over the flattened caption structs.
    """
    if mode not in ("newest", "random"):
        raise ConfigError(f"data.caption_mode must be newest or random, got {mode!r}")
    if isinstance(captions, pa.ChunkedArray):
        captions = captions.combine_chunks() if captions.num_chunks else pa.array([], captions.type)
    n = len(captions)
    flat = pc.list_flatten(captions)  # struct (M,)
    parents = pc.list_parent_indices(captions).to_numpy().astype(np.int64)  # (M,)
    kind = flat.field("kind")
    text = flat.field("text")
    nonempty = pc.fill_null(pc.greater(pc.utf8_length(text), 0), False).to_numpy(zero_copy_only=False)
    rows_out, order_out, take_out = [], [], []
    groups = [tuple(kinds)] if mode == "newest" else [(k,) for k in kinds]
    for g, group in enumerate(groups):
        ok = pc.fill_null(pc.is_in(kind, value_set=pa.array(list(group), pa.string())), False)
        pos = np.flatnonzero(ok.to_numpy(zero_copy_only=False) & nonempty)
        last = _last_per_row(parents[pos])
        rows_out.append(parents[pos][last])
        order_out.append(np.full(int(last.sum()), g))
        take_out.append(pos[last])
    rows = np.concatenate(rows_out) if rows_out else np.zeros(0, np.int64)
    srt = np.lexsort((np.concatenate(order_out), rows)) if len(rows) else np.zeros(0, np.int64)
    values = text.take(pa.array(np.concatenate(take_out)[srt] if len(rows) else np.zeros(0, np.int64)))
    offsets = np.r_[0, np.cumsum(np.bincount(rows, minlength=n))].astype(np.int32)
    return pa.ListArray.from_arrays(pa.array(offsets, pa.int32()), values.cast(pa.string()))


@dataclass
class TrainIndex:
    """What training needs per clip, column-wise, sorted by id.

    ``ids``/``paths``: Arrow strings (N,); ``bucket``: int16 (N,); ``captions``: ``list<string>``
    (N,), the caption candidates (:func:`index_captions`).
    """

    ids: pa.Array
    paths: pa.Array
    bucket: np.ndarray
    captions: pa.ListArray

    def __len__(self) -> int:
        return len(self.ids)

    def caption_candidates(self, i: int) -> list[str]:
        return self.captions[i].as_py() or [""]

    def to_table(self) -> pa.Table:
        return pa.table({"id": self.ids, "path": self.paths, "bucket": pa.array(self.bucket, pa.int16()),
                         "captions": self.captions})

    @classmethod
    def from_table(cls, t: pa.Table) -> TrainIndex:
        cap = t.column("captions")
        cap = cap.combine_chunks() if cap.num_chunks else pa.array([], pa.list_(pa.string()))
        return cls(ids=t.column("id").combine_chunks(), paths=t.column("path").combine_chunks(),
                   bucket=t.column("bucket").to_numpy().astype(np.int16), captions=cap)

    def take(self, rows: np.ndarray) -> TrainIndex:
        idx = pa.array(np.asarray(rows, np.int64))
        return TrainIndex(ids=self.ids.take(idx), paths=self.paths.take(idx), bucket=self.bucket[rows],
                          captions=self.captions.take(idx))


def index_settings(cfg: DataConfig) -> dict[str, Any]:
    """The data settings an index depends on (stored in it; an index built otherwise is refused)."""
    return {k: to_dict(getattr(cfg, k)) for k in ("split", "buckets", "caption_kinds", "caption_mode", "max_clips")}


def build_index(corpus: Corpus | str | os.PathLike, cfg: DataConfig) -> TrainIndex:
    """The training index of ``corpus``'s split ``cfg.split``, built batch by batch from a columnar
    scan of :data:`INDEX_COLUMNS` (only the index itself grows with the corpus)."""
    corpus = corpus if isinstance(corpus, Corpus) else Corpus(corpus)
    check_buckets(cfg.buckets)
    ids, paths, buckets, caps = [], [], [], []
    n = 0
    for t in corpus.iter_tables(INDEX_COLUMNS, SCAN_BATCH_ROWS, split=cfg.split):
        if cfg.max_clips > 0:
            t = t.slice(0, cfg.max_clips - n)
        if not t.num_rows:
            continue
        ids.append(t.column("id"))
        paths.append(t.column("path"))
        buckets.append(assign_buckets(t.column("width").to_numpy(), t.column("height").to_numpy(), cfg.buckets))
        caps.append(index_captions(t.column("captions"), tuple(cfg.caption_kinds), cfg.caption_mode))
        n += t.num_rows
        if cfg.max_clips and n >= cfg.max_clips:
            break
    if n == 0:
        raise CorpusError(f"corpus {corpus.root}: no clips in split {cfg.split!r} to train on")
    return TrainIndex(ids=pa.chunked_array(ids).combine_chunks(), paths=pa.chunked_array(paths).combine_chunks(),
                      bucket=np.concatenate(buckets), captions=pa.concat_arrays(caps))


def captioned_count(corpus: Corpus | str | os.PathLike, cfg: DataConfig) -> tuple[int, int]:
    """(clips of split ``cfg.split``, how many have a caption the run trains on), batch by batch."""
    corpus = corpus if isinstance(corpus, Corpus) else Corpus(corpus)
    n = captioned = 0
    for t in corpus.iter_tables(["captions"], SCAN_BATCH_ROWS, split=cfg.split):
        if not t.num_rows:
            continue
        n_cands = pc.list_value_length(index_captions(t.column("captions"), tuple(cfg.caption_kinds),
                                                      cfg.caption_mode))
        n += t.num_rows
        captioned += int(pc.sum(pc.greater(n_cands, 0)).as_py() or 0)
    return n, captioned


def shard_ranks(bucket: np.ndarray, world_size: int) -> np.ndarray:
    """Rank of every clip: each bucket's clips (in index order) dealt round-robin over the ranks.

    Disjoint and covering by construction; per bucket the shards differ by at most one clip; a
    pure function of the index, so every worker and every resume computes the same shards.
    """
    if world_size < 1:
        raise ConfigError(f"world size must be >= 1, got {world_size}")
    rank = np.zeros(len(bucket), np.int32)
    for b in np.unique(bucket):
        pos = np.flatnonzero(bucket == b)
        rank[pos] = np.arange(len(pos)) % world_size
    return rank


def write_index(index: TrainIndex, path: str | os.PathLike, world_size: int, cfg: DataConfig,
                corpus: str = "") -> Path:
    """Write ``index`` as Parquet with a ``rank`` column and one row group per rank (atomically).

    Refuses a world larger than a bucket can feed (a rank with no clip at all).
    """
    path = Path(path)
    rank = shard_ranks(index.bucket, world_size)
    counts = np.bincount(rank, minlength=world_size)
    if counts.min() == 0:
        raise CorpusError(f"corpus {corpus or '?'}: {len(index)} clip(s) in split {cfg.split!r} cannot feed "
                          f"{world_size} workers (a worker would get none); use fewer workers")
    t = index.to_table().append_column("rank", pa.array(rank, pa.int32()))
    meta = {"skyloom.format": INDEX_FORMAT, "skyloom.world_size": str(world_size),
            "skyloom.data": json.dumps(index_settings(cfg), sort_keys=True), "skyloom.corpus": corpus}
    t = t.replace_schema_metadata(meta)
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path, suffix=".parquet") as tmp, pq.ParquetWriter(tmp, t.schema, compression="zstd") as w:
        for r in range(world_size):
            w.write_table(t.filter(pc.equal(t.column("rank"), r)), row_group_size=max(1, int(counts[r])))
    return path


def read_index_shard(path: str | os.PathLike, rank: int, world_size: int,
                     cfg: DataConfig | None = None) -> tuple[TrainIndex, int]:
    """Rank ``rank``'s shard of an index :func:`write_index` wrote, reading only that rank's row groups.

    Returns the shard and the number of row groups read. Refuses an index written for another
    world size or other data settings (ConfigError).
    """
    f = pq.ParquetFile(path)
    meta = {k.decode(): v.decode() for k, v in (f.schema_arrow.metadata or {}).items()}
    if meta.get("skyloom.format") != INDEX_FORMAT:
        raise CorpusError(f"{path}: not a skyloom training index")
    if int(meta.get("skyloom.world_size", 0)) != world_size:
        raise ConfigError(f"{path}: index was written for {meta.get('skyloom.world_size')} workers, not {world_size}")
    if cfg is not None and json.loads(meta.get("skyloom.data", "{}")) != json.loads(
            json.dumps(index_settings(cfg), sort_keys=True)):
        raise ConfigError(f"{path}: index was built with other data settings than this run's")
    col = f.schema_arrow.get_field_index("rank")
    groups = [g for g in range(f.num_row_groups)
              if (st := f.metadata.row_group(g).column(col).statistics) is not None and st.has_min_max
              and st.min <= rank <= st.max]
    t = f.read_row_groups(groups, columns=["id", "path", "bucket", "captions", "rank"])
    t = t.filter(pc.equal(t.column("rank"), rank))
    return TrainIndex.from_table(t), len(groups)


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
    index = None
    if index_path is not None:
        index, _ = read_index_shard(index_path, rank, world_size, cfg)
    elif world_size > 1:  # no index written for us: build it and keep our shard
        full = build_index(corpus, cfg)
        index = full.take(np.flatnonzero(shard_ranks(full.bucket, world_size) == rank))
    return BatchLoader(CorpusVideoDataset(corpus, cfg, index=index), seed, rank, world_size)
