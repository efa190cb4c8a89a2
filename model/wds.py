"""Training batches streamed from WebDataset tar shards (``data.source=wds``).

``skyloom corpus export-wds CORPUS [--split train]`` writes tar shards in the WebDataset layout
(Aizman et al., "High Performance I/O For Large Scale Deep Learning", 2019; the ``webdataset``
package): the members of one clip are consecutive and share the key before the first dot,
``<id>.mp4``, ``<id>.json`` (its manifest row), ``<id>.txt``. Training from them reads each shard
front to back and never opens the manifest, which is what a corpus on object storage or a
network file system wants.

* Shards: the export's ``index.json`` lists them per split; the export of ``data.split`` is used,
  else the ``all`` export with rows of other splits skipped. Worker ``rank`` of ``world_size``
  reads ``shards[rank::world_size]`` (webdataset's ``split_by_node``): disjoint, covering.
* Order: every epoch the worker shuffles its shards (seeded by seed, epoch, rank) and passes the
  samples through a shuffle buffer of ``data.shuffle_buffer`` entries (webdataset's ``shuffle``);
  the buffer holds metadata (key, bucket, captions, where the mp4 lies in the tar), not frames.
  Each sample joins its bucket's pending batch; a full one is emitted. Leftovers at the end of an
  epoch are dropped (a corpus too small for one batch repeats its clips, as the corpus source does).
* Resume: the stream is a pure function of (seed, epoch, rank), so a checkpoint's (epoch,
  position) is reached by replaying the epoch's metadata without decoding a frame.
* Frames are decoded from the mp4 bytes with PyAV exactly as :func:`skyloom.video.read_video`
  decodes a file, then fitted to the bucket as :mod:`skyloom.model.data` does.
"""

from __future__ import annotations

import io
import json
import logging
import os
import tarfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from skyloom.corpus import ClipRecord, Corpus, CorpusError, read_wds_index
from skyloom.model.config import DataConfig
from skyloom.model.data import (
    Batch,
    ClipCache,
    assign_bucket,
    cache_bytes,
    caption_candidates,
    check_buckets,
    load_frames,
    window,
)
from skyloom.video import VideoError

logger = logging.getLogger(__name__)


def read_video_bytes(data: bytes, num_frames: int | None = None) -> np.ndarray:
    """Decode an in-memory video to uint8 ``(T, H, W, 3)`` (the first ``num_frames`` frames)."""
    import av

    frames = []
    try:
        with av.open(io.BytesIO(data), mode="r") as container:
            stream = container.streams.video[0]
            stream.thread_type = "AUTO"
            for frame in container.decode(stream):
                frames.append(frame.to_ndarray(format="rgb24"))
                if num_frames is not None and len(frames) >= num_frames:
                    break
    except (av.error.FFmpegError, IndexError) as e:  # IndexError: no video stream
        if not frames:
            raise VideoError(f"video bytes ({len(data)} B): cannot decode ({type(e).__name__}: {e})") from None
    if not frames:
        raise VideoError(f"video bytes ({len(data)} B): no decodable frames")
    return np.stack(frames)  # (T, H, W, 3)


@dataclass(frozen=True)
class ShardSample:
    """One clip of a shard: its key, its manifest row, and where its mp4 lies in the tar."""

    key: str
    row: dict[str, Any]
    shard: Path
    offset: int  # of the mp4 member's data in the tar file
    size: int


def iter_shard(path: str | os.PathLike) -> Iterator[ShardSample]:
    """The samples of one tar shard, in file order (members grouped by the key before the first dot).

    A sample without an ``mp4`` or ``json`` member is skipped with a warning.
    """
    path = Path(path)
    with tarfile.open(path) as tar:
        key: str | None = None
        members: dict[str, tarfile.TarInfo] = {}

        def flush() -> ShardSample | None:
            if key is None:
                return None
            if "mp4" not in members or "json" not in members:
                logger.warning("%s: sample %r has no %s member; skipped", path, key,
                               "mp4" if "mp4" not in members else "json")
                return None
            meta = tar.extractfile(members["json"])
            if meta is None:  # a json member that is not a regular file
                logger.warning("%s: sample %r has no readable json member; skipped", path, key)
                return None
            row = json.loads(meta.read())
            return ShardSample(key=key, row=row, shard=path, offset=members["mp4"].offset_data,
                               size=members["mp4"].size)

        for m in tar:
            if not m.isfile():
                continue
            base = m.name.rsplit("/", 1)[-1]
            k, _, ext = base.partition(".")
            k = m.name[:len(m.name) - len(base)] + k
            if k != key:
                s = flush()
                if s is not None:
                    yield s
                key, members = k, {}
            members[ext] = m
        s = flush()
        if s is not None:
            yield s


def read_member(sample: ShardSample) -> bytes:
    """The mp4 bytes of ``sample`` (one seek and one read in its shard)."""
    with open(sample.shard, "rb") as f:
        f.seek(sample.offset)
        return f.read(sample.size)


def wds_folder(corpus: str | os.PathLike, cfg: DataConfig) -> Path:
    """The export folder a run streams from: ``data.wds_dir`` (relative to the corpus) or CORPUS/shards."""
    root = Path(corpus.root if isinstance(corpus, Corpus) else corpus)
    return (root / cfg.wds_dir) if cfg.wds_dir else root / "shards"


def split_shards(folder: Path, split: str) -> tuple[list[Path], bool]:
    """The shards holding ``split`` and whether rows of other splits must be skipped (``all`` export)."""
    if not (folder / "index.json").is_file():
        raise CorpusError(f"{folder}: no WebDataset export (no index.json); write one with "
                          f"`skyloom corpus export-wds CORPUS --split {split}`")
    exports = read_wds_index(folder)["exports"]
    if split in exports:
        names, mixed = exports[split].get("shards", []), False
    elif "all" in exports:
        names, mixed = exports["all"].get("shards", []), True
    else:
        raise CorpusError(f"{folder}: no WebDataset export of split {split!r} (has: {', '.join(exports) or 'none'}); "
                          f"run `skyloom corpus export-wds CORPUS --split {split}`")
    shards = [folder / n for n in sorted(names)]
    missing = [p.name for p in shards if not p.is_file()]
    if missing:
        raise CorpusError(f"{folder}: shard(s) listed in index.json are missing: {', '.join(missing[:3])}; re-export")
    return shards, mixed


class WdsLoader:
    """Batches from this worker's WebDataset shards; its own resumable state (it is its ``sampler``)."""

    def __init__(self, corpus: str | os.PathLike, cfg: DataConfig, seed: int, rank: int = 0,
                 world_size: int = 1) -> None:
        check_buckets(cfg.buckets)
        if cfg.max_clips > 0:
            raise CorpusError("data.max_clips applies to data.source=corpus; export fewer clips for source=wds")
        if cfg.shuffle_buffer < 1:
            raise CorpusError(f"data.shuffle_buffer must be >= 1, got {cfg.shuffle_buffer}")
        self.cfg, self.seed, self.rank, self.world_size = cfg, seed, rank, world_size
        self.folder = wds_folder(corpus, cfg)
        shards, self.mixed = split_shards(self.folder, cfg.split)
        self.shards = shards[rank::world_size]
        if not self.shards:
            raise CorpusError(f"{self.folder}: {len(shards)} shard(s) of split {cfg.split!r} cannot feed {world_size} "
                              "workers (each reads whole shards); re-export with a smaller --shard-size")
        self.cache = ClipCache(cache_bytes(cfg))
        self.sampler = self
        self.epoch, self.position = 0, 0
        self._stream: Iterator[tuple[int, list[ShardSample]]] | None = None
        self._skip = 0  # batches to pass over (metadata only) before the next one is decoded
        logger.info("wds: rank %d reads %d of %d shard(s) in %s", rank, len(self.shards), len(shards), self.folder)

    # -- the plan: pure function of (seed, epoch, rank) -----------------------------------------
    def samples(self, epoch: int) -> Iterator[ShardSample]:
        """This worker's samples of ``epoch`` after shard shuffling (before the shuffle buffer)."""
        rng = np.random.default_rng([self.seed, epoch, self.rank, 0])
        for s in rng.permutation(len(self.shards)):
            for sample in iter_shard(self.shards[s]):
                if self.mixed and sample.row.get("split") != self.cfg.split:
                    continue
                yield sample

    def plan(self, epoch: int) -> Iterator[tuple[int, list[ShardSample]]]:
        """(bucket, [(sample, caption index seed)]) batches of ``epoch``, in order."""
        rng = np.random.default_rng([self.seed, epoch, self.rank, 1])
        buckets, size = self.cfg.buckets, self.cfg.shuffle_buffer
        pending: dict[int, list[ShardSample]] = {}
        buf: list[ShardSample] = []
        emitted = 0

        def add(sample: ShardSample) -> Iterator[tuple[int, list[ShardSample]]]:
            b = assign_bucket(int(sample.row["width"]), int(sample.row["height"]), buckets)
            p = pending.setdefault(b, [])
            p.append(sample)
            if len(p) == buckets[b].batch_size:
                pending[b] = []
                yield b, p

        for sample in self.samples(epoch):
            if len(buf) < size:
                buf.append(sample)
                continue
            j = int(rng.integers(len(buf)))
            out, buf[j] = buf[j], sample
            for batch in add(out):
                emitted += 1
                yield batch
        for j in rng.permutation(len(buf)):
            for batch in add(buf[j]):
                emitted += 1
                yield batch
        if not emitted:  # fewer clips than one batch: repeat the fullest bucket's clips
            full = [(b, p) for b, p in sorted(pending.items()) if p]
            if full:
                b, p = max(full, key=lambda bp: len(bp[1]))
                yield b, (p * buckets[b].batch_size)[:buckets[b].batch_size]

    # -- iteration ---------------------------------------------------------------------------
    def __iter__(self):
        return self

    def _next_planned(self) -> tuple[int, list[ShardSample]]:
        for _ in range(2):
            if self._stream is None:
                self._stream = self.plan(self.epoch)
                for _ in range(self.position):  # resume: replay the epoch's metadata up to the position
                    next(self._stream)
            try:
                return next(self._stream)
            except StopIteration:
                self.epoch, self.position, self._stream = self.epoch + 1, 0, None
        raise CorpusError(f"{self.folder}: no clips of split {self.cfg.split!r} in this worker's shards; "
                          f"export them with `skyloom corpus export-wds CORPUS --split {self.cfg.split}`")

    def __next__(self) -> Batch:
        while self._skip:
            self._next_planned()
            self.position += 1
            self._skip -= 1
        b, samples = self._next_planned()
        bseed = (self.epoch << 20) + self.position * self.world_size + self.rank
        self.position += 1
        self._drawn = getattr(self, "_drawn", 0) + 1
        rng = np.random.default_rng([self.seed, 1, bseed])
        bucket = self.cfg.buckets[b]
        clips: list[np.ndarray] = []
        captions: list[str] = []
        for s in samples:
            frames = self.cache.get(s.key)
            if frames is None:
                frames = load_frames(read_member(s), bucket, self.cfg.frame_stride)
                self.cache.put(s.key, frames)
            clips.append(window(frames, bucket, self.cfg.frame_stride, rng))
            cands = caption_candidates(ClipRecord.from_row(s.row), tuple(self.cfg.caption_kinds), self.cfg.caption_mode)
            captions.append(cands[int(rng.integers(len(cands)))] if len(cands) > 1 else cands[0])
        video = np.stack(clips)  # (B, T, H, W, 3)
        return Batch(video=video, captions=captions, ids=[s.key for s in samples], bucket=b)

    # -- state -------------------------------------------------------------------------------
    def drawn(self) -> int:
        return getattr(self, "_drawn", 0)

    def state_dict(self) -> dict[str, Any]:
        return {"epoch": self.epoch, "position": self.position, "seed": self.seed, "drawn": self.drawn(),
                "source": "wds"}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self._stream = None
        if self.world_size > 1 and "drawn" in state:  # rank 0's count; this worker's epochs have their own length
            self.epoch, self.position, self._skip = 0, 0, int(state["drawn"])
        else:
            self.epoch, self.position, self._skip = int(state["epoch"]), int(state["position"]), 0
        self._drawn = int(state.get("drawn", 0))
