"""The corpus contract: the one on-disk format every stage reads and writes.

Layout of a corpus directory (format version :data:`CORPUS_FORMAT_VERSION`)::

    CORPUS/
      corpus.json              format name + version, created, name, corpus_id (stamped into its exports)
      manifest.parquet         snapshot for outside tools (pandas, DuckDB): one row per live clip, current
                               after every write up to SNAPSHOT_EAGER_ROWS clips, else as of the last compaction
      manifest/                the manifest log (skyloom/manifest_store.py)
        base-<rev>-<uid>.parquet   the last compaction: latest live row per id, sorted by id
        part-<rev>-<uid>.parquet   revisions written since (append-only; merged eight of a size at a time)
        index.sqlite               the id index (derived; rebuilt from the parts when it disagrees)
      clips/<id>.mp4           H.264 yuv420p clips
      gt/<id>.json             per-clip ground truth of synthetic clips (+ optional gt/<id>.npz)
      quarantine.jsonl         one current entry per (stage, item): reason, attempts
      takedowns.jsonl          the takedown journal: a "started" line (intent) and a "done" line per takedown
      exports.json             every WebDataset export folder written, relative to the corpus root
                               (a takedown rewrites those it can prove are its own: export_owner)
      .lock, .writer.lock      the short corpus lock, and the writer lock one job holds (Corpus.writer)
      shards/                  default WebDataset tar export (+ index.json: per split, shards and clip ids)

Every write (:meth:`Corpus.append`, captions, quality scores, updates, deletions) adds one part of the
rows it changes, atomically under the corpus lock, and indexes them: O(batch), never a rewrite of
earlier files. Readers keep the highest ``rev`` per ``id`` and drop tombstones (``deleted``), as
columns (:meth:`Corpus.scan`) or bounded batches (:meth:`Corpus.iter_records`); the id index answers
:meth:`Corpus.lookup`, :meth:`Corpus.present`, :meth:`Corpus.lacking_caption`,
:meth:`Corpus.derived_from` and :meth:`Corpus.count` without reading the parts. :meth:`Corpus.compact`
(also automatic once the parts hold an eighth of the base) streams everything into a new base and makes
``manifest.parquet`` that base. Every part carries the manifest version in its schema metadata and is
validated on read: a missing or mistyped column raises :class:`ManifestError` naming the file and the
field. Older formats (1: the log under ``manifest.parquet/``; 2: no index, no base) migrate once on open.

Example:
    >>> import tempfile
    >>> c = Corpus.create(tempfile.mkdtemp())
    >>> c.append([ClipRecord(id="demo-0", path="clips/demo-0.mp4", source_kind="synthetic",
    ...     duration_s=1.0, fps=8.0, width=32, height=32, num_frames=8, license_id="CC0-1.0",
    ...     source_url="skyloom://render/demo/0", author="skyloom", attribution="",
    ...     sha256="0" * 64)])
    1
    >>> [r.id for r in c.records()]
    ['demo-0']
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import os
import time
import uuid
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any, Literal

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from skyloom.corpus_export import (  # noqa: F401 - re-exported
    ExportsMixin,
    read_wds_index,
    shard_ids,
)
from skyloom.corpus_journal import JournalMixin
from skyloom.fsutil import (
    LockBusy,
    atomic_path,
    atomic_write_json,
    crash_point,
    file_lock,
    holder_lock,
    now_iso,
)
from skyloom.manifest import (  # noqa: F401 - re-exported: the corpus contract's public names
    CAPTION_TYPE,
    CORPUS_FORMAT_VERSION,
    ID_PATTERN,
    MANIFEST_SCHEMA,
    REQUIRED_NONEMPTY,
    SOURCE_KINDS,
    SPLITS,
    Caption,
    ClipRecord,
    CorpusBusyError,
    CorpusError,
    ManifestError,
    filter_table,
    latest_revisions,
    records_from_table,
    validate_part_schema,
    validate_record,
)
from skyloom.manifest_store import (
    INDEX,
    ManifestIndex,
    ManifestLog,
    compaction_due,
    merge_plan,
    part_name,
    read_part,
    write_table_file,
)

CORPUS_FORMAT = "skyloom-corpus"
MANIFEST_DIR = "manifest"  # the revision log
SNAPSHOT = "manifest.parquet"  # the current snapshot outside tools read
SNAPSHOT_EAGER_ROWS = 2_048  # up to this many clips, manifest.parquet is rewritten after every write


def assign_split(clip_id: str, val_fraction: float = 0.05, test_fraction: float = 0.0, salt: str = "") -> str:
    """Deterministic split from a hash of the id (stable across reruns and machines)."""
    h = int.from_bytes(hashlib.sha256(f"{salt}{clip_id}".encode()).digest()[:8], "big") / 2**64
    if h < test_fraction:
        return "test"
    if h < test_fraction + val_fraction:
        return "val"
    return "train"


class Corpus(ExportsMixin, JournalMixin):
    """Reader/writer for one corpus directory. All stages go through this class."""

    def __init__(self, root: str | os.PathLike) -> None:
        self.root = Path(root)
        self._index_obj: ManifestIndex | None = None
        info = self.root / "corpus.json"
        if not info.exists():
            raise CorpusError(f"{self.root}: not a skyloom corpus (no corpus.json); create one with "
                              "`skyloom datagen render --out DIR` or `skyloom datagen ingest SOURCES --out DIR`")
        try:
            meta = json.loads(info.read_text())
        except json.JSONDecodeError as e:
            raise CorpusError(f"{info}: not valid JSON ({e})") from None
        if meta.get("format") != CORPUS_FORMAT:
            raise CorpusError(f"{info}: field 'format' is {meta.get('format')!r}, expected {CORPUS_FORMAT!r}")
        if int(meta.get("version", 0)) > CORPUS_FORMAT_VERSION:
            raise CorpusError(f"{info}: corpus version {meta.get('version')} is newer than supported "
                              f"{CORPUS_FORMAT_VERSION}")
        self.info = meta
        if (self.root / SNAPSHOT).is_dir() or int(meta.get("version", 0)) < CORPUS_FORMAT_VERSION:
            self._migrate()

    @property
    def _log(self) -> ManifestLog:
        return ManifestLog(self.manifest_dir)

    @property
    def _index(self) -> ManifestIndex:
        idx = getattr(self, "_index_obj", None)
        if idx is None or idx.log.folder != self.manifest_dir:
            idx = self._index_obj = ManifestIndex(self._log, writable=True)
        return idx

    def _migrate(self) -> None:
        """Bring an older corpus to format :data:`CORPUS_FORMAT_VERSION`, once, under the corpus lock.

        Format 1 kept the revision log under ``manifest.parquet/`` (moved to ``manifest/``); format 2
        had no id index and no base (every part was read on every access). The log is then indexed
        and compacted into a base, and ``corpus.json`` says version 3 last: a crash at any step leaves
        a corpus the next open migrates again (each step is idempotent), never a half-migrated one
        that claims the new version. A read-only corpus is read in its old layout in place."""
        try:
            with self._lock():
                info = json.loads((self.root / "corpus.json").read_text())
                legacy, log = self.root / SNAPSHOT, self.root / MANIFEST_DIR
                if legacy.is_dir():
                    if log.exists() and any(log.iterdir()):
                        raise CorpusError(f"{self.root}: both {legacy.name}/ (format 1) and {log.name}/ exist; "
                                          "merge them by hand")
                    if log.exists():
                        log.rmdir()
                    os.replace(legacy, log)
                if int(info.get("version", 0)) >= CORPUS_FORMAT_VERSION:
                    self.info = info
                    return  # another process migrated it meanwhile
                (log / INDEX).unlink(missing_ok=True)  # built afresh from the log
                self._index_obj = None
                crash_point("migrate:indexed")
                self._compact_locked(force=True)
                crash_point("migrate:compacted")
                self.info = {**info, "version": CORPUS_FORMAT_VERSION}
                atomic_write_json(self.root / "corpus.json", self.info)
        except PermissionError:  # a read-only corpus: read the old layout in place (an in-memory index)
            pass

    # -- creation -------------------------------------------------------------------------
    @classmethod
    def create(cls, root: str | os.PathLike, name: str | None = None, exist_ok: bool = True) -> Corpus:
        """Create (or open, if ``exist_ok``) a corpus directory."""
        r = Path(root)
        if (r / "corpus.json").exists():
            if not exist_ok:
                raise CorpusError(f"{r}: corpus already exists")
            return cls(r)
        if r.exists() and r.is_file():
            raise CorpusError(f"{r}: is a file, expected a directory")
        for sub in (MANIFEST_DIR, "clips", "gt"):
            (r / sub).mkdir(parents=True, exist_ok=True)
        atomic_write_json(r / "corpus.json", {
            "format": CORPUS_FORMAT, "version": CORPUS_FORMAT_VERSION, "name": name or r.name, "created_at": now_iso(),
            "corpus_id": uuid.uuid4().hex,
        })
        c = cls(r)
        with c._lock():
            if not (r / SNAPSHOT).exists():
                c._write_snapshot()
        return c

    @classmethod
    def open(cls, root: str | os.PathLike, create: bool = False) -> Corpus:
        return cls.create(root) if create else cls(root)

    # -- paths ----------------------------------------------------------------------------
    @property
    def manifest_dir(self) -> Path:
        """The revision log (``manifest/``; ``manifest.parquet/`` in a read-only format-1 corpus)."""
        legacy = self.root / SNAPSHOT
        return legacy if legacy.is_dir() and not (self.root / MANIFEST_DIR).exists() else self.root / MANIFEST_DIR

    @property
    def snapshot_path(self) -> Path:
        """``manifest.parquet``: one row per live clip, the file outside tools should read."""
        return self.root / SNAPSHOT

    def clip_path(self, clip_id: str) -> Path:
        """Where the clip file of ``clip_id`` lives (``clips/<id>.mp4``)."""
        return self.root / "clips" / f"{clip_id}.mp4"

    def gt_path(self, clip_id: str, suffix: str = ".json") -> Path:
        return self.root / "gt" / f"{clip_id}{suffix}"

    def abspath(self, rec: ClipRecord) -> Path:
        return self.root / rec.path

    def _lock(self):
        """The short corpus lock every manifest, export and takedown step holds (re-entrant)."""
        return file_lock(self.root / ".lock")

    @property
    def corpus_id(self) -> str:
        """This corpus's id (``corpus.json``), stamped into every export it writes. A corpus made
        before ids existed gets one on first use (kept if the folder is read-only)."""
        cid = self.info.get("corpus_id")
        if not cid:
            try:
                with self._lock():
                    info = json.loads((self.root / "corpus.json").read_text())
                    cid = info.get("corpus_id") or uuid.uuid4().hex
                    if not info.get("corpus_id"):
                        atomic_write_json(self.root / "corpus.json", {**info, "corpus_id": cid})
                    self.info = {**info, "corpus_id": cid}
            except OSError:  # read-only: an id for this session only (it owns no outside export)
                cid = self.info.setdefault("corpus_id", uuid.uuid4().hex)
        return str(cid)

    @contextlib.contextmanager
    def writer(self, job: str, wait: bool = False):
        """Hold the corpus's writer lock for a whole job (ingest, render, caption): one such job at
        a time. A second one raises :class:`CorpusBusyError` naming the running job (``wait``:
        queue behind it instead). The kernel releases the lock when its process dies."""
        holder = {"job": job, "pid": os.getpid(), "host": os.uname().nodename, "since": now_iso()}
        try:
            with holder_lock(self.root / ".writer.lock", holder, wait=wait):
                yield
        except LockBusy as e:
            h = e.holder
            who = (f"{h.get('job', 'a job')} (pid {h.get('pid', '?')} on {h.get('host', '?')}, "
                   f"since {h.get('since', '?')})")
            raise CorpusBusyError(f"{self.root}: corpus is being written by {who}; wait for it to finish or "
                                  "rerun with --wait to queue behind it") from None

    # -- reading --------------------------------------------------------------------------
    def part_files(self) -> list[Path]:
        """The manifest's Parquet files: the base (if compacted) and the parts written since."""
        return self._log.parts()

    # -- the streaming API: columns and batches, never the whole corpus as Python objects ------
    def scan(self, columns: Sequence[str] | None = None, *, split: str | None = None,
             source_kind: str | None = None, ids: Iterable[str] | None = None,
             include_deleted: bool = False) -> pa.Table:
        """The latest revision of every clip as a columnar table, sorted by id.

        Args:
            columns: the manifest columns to read (``id`` is always included); None: all of them.
            split, source_kind: keep only clips of this split / source kind (pushed down to the files).
            ids: keep only these clip ids (read through the id index: only the parts holding them).
            include_deleted: keep tombstones (``deleted`` rows) too.
        """
        want = self._columns(columns)
        if ids is not None:
            return filter_table(self._lookup_table(ids, want, include_deleted), split=split, source_kind=source_kind,
                                include_deleted=True).select(want)
        tables = [t.select(want) for t in self._log.stream(want, split=split, source_kind=source_kind,
                                                             include_deleted=include_deleted)]
        return pa.concat_tables(tables) if tables else _empty(want)

    @staticmethod
    def _columns(columns: Sequence[str] | None) -> list[str]:
        want = list(dict.fromkeys(["id", *(MANIFEST_SCHEMA.names if columns is None else columns)]))
        unknown = [c for c in want if c not in MANIFEST_SCHEMA.names]
        if unknown:
            raise ManifestError(f"unknown manifest column(s) {unknown}; valid: {', '.join(MANIFEST_SCHEMA.names)}")
        return want

    def iter_records(self, batch_size: int = 1024, *, split: str | None = None, source_kind: str | None = None,
                     columns: Sequence[str] | None = None) -> Iterator[list[ClipRecord]]:
        """Current clip records in batches of at most ``batch_size``, ordered by id; memory bounded by
        the batch (and the parts written since the last compaction), not by the corpus.

        ``columns`` limits the fields read (the others are left empty in the records)."""
        if batch_size < 1:
            raise CorpusError(f"batch_size must be >= 1, got {batch_size}")
        want = self._columns(columns)
        pending: list[pa.Table] = []
        rows = 0
        for t in self._log.stream(want, split=split, source_kind=source_kind, batch_rows=max(batch_size, 1024)):
            pending.append(t.select(want))
            rows += t.num_rows
            while rows >= batch_size:
                buf = pa.concat_tables(pending)
                yield records_from_table(buf.slice(0, batch_size))
                rest = buf.slice(batch_size)
                pending, rows = [rest], rest.num_rows
        if rows:
            yield records_from_table(pa.concat_tables(pending))

    def iter_tables(self, columns: Sequence[str] | None = None, batch_rows: int = 8192, *, split: str | None = None,
                    source_kind: str | None = None) -> Iterator[pa.Table]:
        """The current state as columnar batches of about ``batch_rows`` rows, in id order (what
        :meth:`scan` concatenates): for stages that work on columns without building records."""
        want = self._columns(columns)
        for t in self._log.stream(want, split=split, source_kind=source_kind, batch_rows=batch_rows):
            yield t.select(want)

    def _lookup_table(self, ids: Iterable[str], want: Sequence[str], include_deleted: bool = False) -> pa.Table:
        """The latest revisions of ``ids`` read from the parts the id index says hold them."""
        wanted = list(dict.fromkeys(ids))
        cols = list(dict.fromkeys([*want, "rev", "deleted"]))
        for attempt in range(3):  # a part merged away between the index query and the read: ask again
            where: dict[str | None, list[str]] = {}
            with self._index.connect() as con:
                for s in range(0, len(wanted), 900):
                    q = wanted[s:s + 900]
                    for cid, part in con.execute(f"SELECT id, part FROM clips WHERE id IN ({','.join('?' * len(q))})"
                                                 + ("" if include_deleted else " AND deleted = 0"), q):
                        where.setdefault(part, []).append(cid)
            base = self._log.base()
            try:
                tables = [read_part(base if part is None else self.manifest_dir / part, cols,  # type: ignore[arg-type]
                                    pc.field("id").isin(pa.array(got, pa.string())))
                          for part, got in where.items() if part is not None or base is not None]
                break
            except FileNotFoundError:
                if attempt == 2:
                    raise
        if not tables:
            return _empty(want)
        t = filter_table(latest_revisions(pa.concat_tables(tables)), include_deleted=include_deleted)
        return t.select(list(want))

    def lookup(self, ids: Iterable[str]) -> dict[str, ClipRecord]:
        """The live records of ``ids`` (ids not in the corpus are left out), through the id index."""
        want = list(dict.fromkeys(ids))
        if not want:
            return {}
        return {r.id: r for r in records_from_table(self._lookup_table(want, MANIFEST_SCHEMA.names))}

    def _index_query(self, sql: str, keys: Sequence[str] = (), params: Sequence[Any] = ()) -> list[tuple]:
        """Run ``sql`` on the id index; ``{keys}`` in it becomes a placeholder list, run per chunk of keys."""
        with self._index.connect() as con:
            if "{keys}" not in sql:
                return con.execute(sql, list(params)).fetchall()
            out: list[tuple] = []
            for s in range(0, len(keys), 900):
                q = list(keys[s:s + 900])
                out += con.execute(sql.format(keys=",".join("?" * len(q))), [*params, *q]).fetchall()
            return out

    def present(self, *, ids: Iterable[str] | None = None, sha256: Iterable[str] | None = None,
                spec: Iterable[str] | None = None) -> set[str]:
        """Which of the given keys a live clip holds: clip ids, clip-file sha256s, or spec/source hashes
        (``source_sha256``: a synthetic clip's scene-spec hash, a licensed clip's source-file hash).
        Answered by the id index: O(keys), whatever the corpus's size."""
        out: set[str] = set()
        for column, keys in (("id", ids), ("sha256", sha256), ("source_sha256", spec)):
            if keys is not None:
                got = self._index_query(f"SELECT DISTINCT {column} FROM clips WHERE deleted = 0 "
                                        f"AND {column} IN ({{keys}})", sorted(set(keys)))
                out |= {r[0] for r in got}
        return out

    def spec_of(self, *, ids: Iterable[str] = (), spec: Iterable[str] = ()) -> dict[str, str]:
        """``{clip id: source_sha256}`` of the live clips whose id is in ``ids`` or whose spec/source hash
        is in ``spec`` (render's resume asks this of the scenes it plans), through the id index."""
        out: dict[str, str] = {}
        for column, keys in (("id", ids), ("source_sha256", spec)):
            keys = sorted(set(keys))
            if keys:
                out.update(self._index_query(f"SELECT id, source_sha256 FROM clips WHERE deleted = 0 "
                                             f"AND {column} IN ({{keys}})", keys))
        return out

    def lacking_caption(self, kind: str, batch_size: int = 1024) -> Iterator[list[str]]:
        """Ids of live clips with no caption of ``kind``, in batches of at most ``batch_size``, by id."""
        if batch_size < 1:
            raise CorpusError(f"batch_size must be >= 1, got {batch_size}")
        with self._index.connect() as con:
            cur = con.execute("SELECT id FROM clips WHERE deleted = 0 AND NOT EXISTS "
                              "(SELECT 1 FROM captions c WHERE c.kind = ? AND c.id = clips.id) ORDER BY id", (kind,))
            while batch := cur.fetchmany(batch_size):
                yield [r[0] for r in batch]

    def derived_from(self, source: str) -> list[str]:
        """Ids of live clips derived from ``source``: its sha256 (``source_sha256``), its URL as stored
        (``source_url``) or a parent clip id (``parent_id``); sorted. Answered by the id index."""
        got = self._index_query("SELECT id FROM clips WHERE deleted = 0 AND (source_sha256 = ? OR source_url = ? "
                                "OR parent_id = ?) ORDER BY id", params=(source, source, source))
        return [r[0] for r in got]

    def count(self, split: str | None = None, source_kind: str | None = None) -> int:
        """Number of live clips (of ``split`` / ``source_kind`` if given), from the id index."""
        sql, params = "SELECT count(*) FROM clips WHERE deleted = 0", []
        for col, val in (("split", split), ("source_kind", source_kind)):
            if val is not None:
                sql += f" AND {col} = ?"
                params.append(val)
        return int(self._index_query(sql, params=params)[0][0])

    def stamp(self) -> str:
        """A cheap token that changes whenever the manifest changes (caches key on it): the names,
        sizes and times of the manifest's files (a listing of O(log N) files)."""
        h = hashlib.sha1()
        for p in [self.snapshot_path, *self.part_files()]:
            try:
                st = p.stat()
            except FileNotFoundError:
                continue
            h.update(f"{p.name}:{st.st_size}:{st.st_mtime_ns}:{st.st_ino};".encode())
        return h.hexdigest()[:16]

    # -- whole-corpus reads (kept for small corpora and outside scripts) --------------------
    def records(self, include_deleted: bool = False, split: str | None = None,
                source_kind: str | None = None) -> list[ClipRecord]:
        """Current clip records (latest revision per id), ordered by id. Materialises the whole
        corpus as Python objects: stages use :meth:`iter_records`, :meth:`scan` or :meth:`lookup`."""
        out: list[ClipRecord] = []
        for t in self._log.stream(MANIFEST_SCHEMA.names, split=split, source_kind=source_kind,
                                  include_deleted=include_deleted):
            out += records_from_table(t)
        return out

    def ids(self, include_deleted: bool = False) -> set[str]:
        """Every clip id (a Python set of the whole corpus: prefer :meth:`present` or :meth:`scan`)."""
        return {r[0] for r in self._index_query("SELECT id FROM clips" + ("" if include_deleted else
                                                                          " WHERE deleted = 0"))}

    def get(self, clip_id: str) -> ClipRecord:
        rec = self.lookup([clip_id]).get(clip_id)
        if rec is None:
            raise KeyError(f"clip {clip_id!r} is not in corpus {self.root}")
        return rec

    def __len__(self) -> int:
        return self.count()

    def to_pandas(self):
        """Current records as a DataFrame (captions as lists of dicts, quality as dicts)."""
        import pandas as pd

        rows = []
        for batch in self.iter_records(4096):
            for r in batch:
                d = dataclasses.asdict(r)
                d["captions"] = [dataclasses.asdict(c) for c in r.captions]
                rows.append(d)
        cols = [f.name for f in dataclasses.fields(ClipRecord)]
        return pd.DataFrame(rows, columns=cols)

    def read_clip(self, clip_id: str, **kwargs):
        """Decode a clip to uint8 ``(T, H, W, 3)`` (kwargs as :func:`skyloom.video.read_video`)."""
        from skyloom.video import read_video

        return read_video(self.abspath(self.get(clip_id)), **kwargs)

    def read_ground_truth(self, clip_id: str) -> dict[str, Any]:
        p = self.gt_path(clip_id)
        if not p.exists():
            raise KeyError(f"clip {clip_id!r} has no ground truth ({p})")
        return json.loads(p.read_text())

    # -- writing (every step under the corpus lock) ----------------------------------------
    def _write_part(self, records: Sequence[ClipRecord]) -> Path:
        """Write one part (O(batch)), index it, then merge or compact if the log's shape asks for it."""
        table = pa.Table.from_pylist([r.to_row() for r in records], schema=MANIFEST_SCHEMA)
        rev = records[0].rev if records else self._next_rev()
        dest = self.manifest_dir / part_name("part", rev)
        with atomic_path(dest, suffix=".parquet") as tmp:
            pq.write_table(table, tmp, compression="zstd")
        crash_point("manifest:part")
        with self._index.connect() as con:  # connecting indexes the new part (and any a crash left)
            self._maintain(con)
        return dest

    def _parts_shape(self, con) -> dict[str, tuple[int, int]]:
        return {n: (r, b) for n, r, b in con.execute("SELECT name, rows, base FROM parts")}

    def _maintain(self, con) -> None:
        """Merge parts of one size class; compact once the parts hold a large share of the base's rows;
        keep ``manifest.parquet`` current after every write while the corpus is small."""
        while names := merge_plan(self._parts_shape(con)):
            paths = [self.manifest_dir / n for n in names]
            merged = latest_revisions(pa.concat_tables([read_part(p) for p in paths]))  # tombstones kept
            dest = self.manifest_dir / part_name("part", max(merged.column("rev").to_pylist()))
            write_table_file(dest, [merged])
            self._index.replaced(con, paths, dest, merged.num_rows, base=False)
            for p in paths:
                p.unlink(missing_ok=True)
        if compaction_due(self._parts_shape(con)):
            self._compact_locked()
        elif self.snapshot_kept_current():
            self._write_snapshot()

    def snapshot_kept_current(self) -> bool:
        """Whether every write rewrites ``manifest.parquet``: while the base (the last compaction) and the
        corpus hold at most :data:`SNAPSHOT_EAGER_ROWS` clips (the base's size first: no count of a large
        corpus on every write)."""
        base = self._index_query("SELECT coalesce(sum(rows), 0) FROM parts WHERE base = 1")[0][0]
        return base <= SNAPSHOT_EAGER_ROWS and self.count() <= SNAPSHOT_EAGER_ROWS

    def _write_snapshot(self) -> Path:
        """Rewrite ``manifest.parquet`` (live rows, sorted by id) from the log, streaming; under the lock."""
        write_table_file(self.snapshot_path, self._log.stream(MANIFEST_SCHEMA.names))
        return self.snapshot_path

    def compacted(self) -> bool:
        """Whether the manifest is one base and nothing since (``manifest.parquet`` is then that base)."""
        parts = self.part_files()
        return len(parts) == 1 and parts[0].name.startswith("base-")

    def refresh_snapshot(self) -> Path:
        """Make ``manifest.parquet`` hold the current state now (streaming; the base itself when compacted)."""
        with self._lock():
            base = self._log.base()
            if self.compacted() and base is not None:
                self._link_snapshot(base)
                return self.snapshot_path
            return self._write_snapshot()

    def captioned(self) -> int:
        """Number of live clips with at least one caption (from the id index)."""
        return int(self._index_query("SELECT count(DISTINCT id) FROM captions")[0][0])

    def _next_rev(self) -> int:
        # Strictly increasing under the lock, even if the clock steps back.
        rev = time.time_ns()
        last = getattr(self, "_last_rev", 0)
        rev = max(rev, last + 1)
        self._last_rev = rev
        return rev

    def append(self, records: Iterable[ClipRecord], validate_files: bool = False) -> int:
        """Append new clips as one new part file; ids already present are skipped.

        Returns the number of rows written. O(batch): the id index says which ids exist. Concurrent
        appenders (threads, processes, Ray tasks on one host) serialise on a lock file, so nothing is
        lost or duplicated.
        """
        recs = list(records)
        if not recs:
            return 0
        seen: set[str] = set()
        for r in recs:
            validate_record(r)
            if r.id in seen:
                raise ManifestError(f"duplicate clip id {r.id!r} in one append")
            seen.add(r.id)
            if validate_files and not (self.root / r.path).exists():
                raise ManifestError(f"clip {r.id!r}: field 'path' points to missing file {r.path}")
        with self._lock():
            existing = self.present(ids=seen)
            rev = self._next_rev()
            now = now_iso()
            fresh = [dataclasses.replace(r, rev=rev, deleted=False, created_at=r.created_at or now)
                     for r in recs if r.id not in existing]
            if fresh:
                self._write_part(fresh)
            return len(fresh)

    def update(self, records: Iterable[ClipRecord]) -> int:
        """Write new revisions of existing clips (e.g. new split or metadata)."""
        recs = list(records)
        for r in recs:
            validate_record(r)
        with self._lock():
            existing = self.present(ids=[r.id for r in recs])
            missing = [r.id for r in recs if r.id not in existing]
            if missing:
                raise KeyError(f"cannot update clips not in corpus: {missing[:5]}")
            rev = self._next_rev()
            if recs:
                self._write_part([dataclasses.replace(r, rev=rev) for r in recs])
            return len(recs)

    def add_captions(self, captions: dict[str, Sequence[Caption]]) -> int:
        """Add captions to clips; a caption with the same (captioner, kind) is replaced."""
        return self._modify(captions, _merge_captions)

    def set_quality(self, scores: dict[str, dict[str, float]]) -> int:
        """Merge quality scores (name -> value) into clips."""
        return self._modify(scores, lambda rec, q: dataclasses.replace(rec, quality={**rec.quality, **q}))

    def _modify(self, changes: dict[str, Any], fn) -> int:
        if not changes:
            return 0
        with self._lock():
            known = self._index_query("SELECT id FROM clips WHERE id IN ({keys})", sorted(changes))
            missing = sorted(set(changes) - {r[0] for r in known})
            if missing:
                raise KeyError(f"clip {missing[0]!r} is not in corpus {self.root}")
            live = self.lookup(changes)  # deleted (e.g. taken down) while a job worked on it: nothing to add to
            out = [fn(live[cid], change) for cid, change in changes.items() if cid in live]
            if not out:
                return 0
            rev = self._next_rev()
            self._write_part([dataclasses.replace(r, rev=rev) for r in out])
            return len(out)

    def delete(self, clip_ids: Iterable[str], reason: str, remove_files: bool = True,
               rewrite_shards: bool = True) -> list[str]:
        """Tombstone clips (and remove their files and, with ``rewrite_shards``, their entries in
        every WebDataset export); returns the ids removed."""
        ids = list(dict.fromkeys(clip_ids))
        with self._lock():
            live = self.lookup(ids)
            gone = [live[i] for i in ids if i in live]
            if not gone:
                return []
            rev = self._next_rev()
            self._write_part([dataclasses.replace(r, rev=rev, deleted=True, meta={**r.meta, "deleted_reason": reason})
                              for r in gone])
            if remove_files:
                for r in gone:
                    (self.root / r.path).unlink(missing_ok=True)
                    if r.gt_path:
                        (self.root / r.gt_path).unlink(missing_ok=True)
                    for extra in self.gt_path(r.id, ".npz"), self.gt_path(r.id):
                        extra.unlink(missing_ok=True)
            if rewrite_shards:
                self._remove_from_shards({r.id for r in gone})
            return [r.id for r in gone]

    def log_holds(self, ids: Iterable[str], prefixes: Sequence[str] = ()) -> bool:
        """Whether any manifest file still holds a revision (tombstones included) of one of ``ids`` or
        of an id starting with one of ``prefixes`` (a compaction then purges them)."""
        if self._index_query("SELECT 1 FROM clips WHERE id IN ({keys}) LIMIT 1", sorted(set(ids))):
            return True
        return any(self._index_query("SELECT 1 FROM clips WHERE id >= ? AND id < ? LIMIT 1",
                                     params=(p, p + "\U0010ffff")) for p in prefixes)

    def compact(self) -> Path | None:
        """Fold the base and every part into a new base (live rows only: tombstoned clips leave no
        trace) and make ``manifest.parquet`` that base; streaming, atomic, safe beside readers."""
        with self._lock():
            return self._compact_locked(force=True)

    def _compact_locked(self, force: bool = False) -> Path | None:
        log = self._log
        base, tail = log.base(), log.tail()
        if not tail and base is not None and not force:
            return base
        if not tail and base is not None:
            self._link_snapshot(base)
            return base
        with self._index.connect() as con:  # the index lists every part before the fold ...
            dest = self.manifest_dir / part_name("base", self._next_rev())
            rows = write_table_file(dest, log.stream(MANIFEST_SCHEMA.names))
            crash_point("manifest:compact")  # (a crash here: the next reader sees an unlisted base and rebuilds)
            self._index.replaced(con, [p for p in [base, *tail] if p is not None], dest, rows, base=True)
        for p in [base, *tail]:
            if p is not None:
                p.unlink(missing_ok=True)
        self._link_snapshot(dest)
        return dest

    def _link_snapshot(self, base: Path) -> None:
        """``manifest.parquet`` becomes the base (a hard link: no copy), atomically."""
        tmp = self.root / f".{SNAPSHOT}.{uuid.uuid4().hex[:8]}"
        try:
            os.link(base, tmp)
        except OSError:  # no hard links on this filesystem: a copy
            import shutil

            shutil.copyfile(base, tmp)
        os.replace(tmp, self.snapshot_path)

    def write_ground_truth(self, clip_id: str, gt: dict[str, Any]) -> str:
        """Write ``gt/<id>.json`` atomically; returns its corpus-relative path."""
        p = self.gt_path(clip_id)
        atomic_write_json(p, gt, indent=None)
        return str(p.relative_to(self.root))

    # -- integrity ----------------------------------------------------------------------------
    def orphan_files(self) -> list[Path]:
        """Files under ``clips/`` and ``gt/`` that no live manifest row owns."""
        files: dict[str, Path] = {}
        for sub in ("clips", "gt"):
            d = self.root / sub
            if d.is_dir():
                files.update((str(p.relative_to(self.root)), p) for p in d.iterdir()
                             if p.is_file() and not p.name.startswith("."))
        if not files:
            return []
        owned: set[str] = set()  # at most the files on disk: the rows are streamed, two columns at a time
        for t in self.iter_tables(["path", "gt_path"], 65_536):
            owned.update(x for x in t.column("path").to_pylist() if x in files)
            owned.update(x for x in t.column("gt_path").to_pylist() if x and x in files)
            owned.update(g for cid in t.column("id").to_pylist() for s in (".json", ".npz")
                         if (g := f"gt/{cid}{s}") in files)
        return [files[k] for k in sorted(files, key=lambda k: files[k]) if k not in owned]


def _merge_captions(rec: ClipRecord, new: Sequence[Caption]) -> ClipRecord:
    keys = {(c.captioner, c.kind) for c in new}
    kept = [c for c in rec.captions if (c.captioner, c.kind) not in keys]
    stamped = [c if c.created_at else dataclasses.replace(c, created_at=now_iso()) for c in new]
    return dataclasses.replace(rec, captions=tuple(kept + stamped))


def _empty(columns: Sequence[str]) -> pa.Table:
    return pa.schema([MANIFEST_SCHEMA.field(c) for c in columns]).empty_table()


def is_corpus(path: str | os.PathLike) -> bool:
    return (Path(path) / "corpus.json").exists()


SourceKind = Literal["synthetic", "licensed"]
