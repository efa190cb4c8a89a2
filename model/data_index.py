"""The training index of a corpus split, and the shards of it that distributed workers read (issue 29).

:class:`TrainIndex` holds what training needs per clip (id, path, bucket, caption candidates) as
Arrow columns. :func:`build_index` reads five manifest columns batch by batch
(:meth:`skyloom.corpus.Corpus.iter_tables`), never Python records of the whole corpus.
:func:`shard_ranks` deals each bucket's clips round-robin over the workers; :func:`write_index`
stores the index with one Parquet row group per worker and :func:`read_index_shard` reads one
worker's row group only. See docs/model.md, "Training data at scale".
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from skyloom.config import ConfigError, to_dict
from skyloom.corpus import Corpus, CorpusError
from skyloom.fsutil import atomic_path
from skyloom.model.config import DataConfig
from skyloom.model.data import assign_buckets, check_buckets

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
