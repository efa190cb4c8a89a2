"""Where the manifest lives on disk: an append-only log of Parquet parts and the id index beside it.

Layout inside ``CORPUS/manifest/`` (format 3)::

    base-<rev>-<uid>.parquet   the last compaction: one row per live clip, sorted by id, row groups
                               of :data:`ROW_GROUP` rows with statistics (at most one; none before)
    part-<rev>-<uid>.parquet   revisions written since: one file per append, update or deletion
    index.sqlite               the id index (derived: rebuilt from the parts whenever it disagrees)

An append writes one part and indexes its rows: O(batch), whatever the corpus's size. Parts of one
size class are merged eight at a time (tombstones kept: a size-tiered log, as LSM trees do), so a
reader opens O(log N) files; a *compaction* folds base and parts into a new base once the parts hold
:data:`COMPACT_FRACTION` of the base's rows (or on demand), streaming row groups, never the whole
corpus in memory. The current state is "the highest ``rev`` per ``id``, tombstones dropped": the
base streamed in id order, merged with the (small) latest-per-id table of the parts.

The index (SQLite, one row per clip id: rev, deleted, the part holding it (NULL: the base), split, source kind,
sha256, source sha256, source URL, parent id; and one row per (caption kind, id)) answers "is this
id / sha256 / spec present", "which clips lack a caption of kind K", "which clips derive from
source S" and counts without reading the parts. It is written after the part under the corpus
lock; a crash in between leaves a part the index does not list, which the next reader indexes
(parts are idempotent to re-index: a row only replaces a lower ``rev``).
"""

from __future__ import annotations

import contextlib
import math
import os
import sqlite3
import time
import uuid
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as ds
import pyarrow.parquet as pq

from skyloom.fsutil import atomic_path
from skyloom.manifest import MANIFEST_SCHEMA, ManifestError, filter_table, latest_revisions, validate_part_schema

INDEX = "index.sqlite"
INDEX_VERSION = 1  # PRAGMA user_version of the index's layout; another one is rebuilt
ROW_GROUP = 16_384  # rows per row group of a base: the unit an id lookup reads
BATCH = 8_192  # rows per streamed batch
MERGE_FANOUT = 8  # parts of one size class merged together (size class = floor(log8(rows)))
COMPACT_FRACTION = 0.125  # parts holding this share of the base's rows trigger a compaction ...
COMPACT_MIN_ROWS = 16_384  # ... once they hold at least this many rows (small corpora keep their parts)
INDEX_COLUMNS = ("id", "rev", "deleted", "split", "source_kind", "sha256", "source_sha256", "source_url", "parent_id")


def part_name(kind: str, rev: int) -> str:
    return f"{kind}-{rev:020d}-{uuid.uuid4().hex[:8]}.parquet"


def read_part(path: Path, columns: Sequence[str] | None = None, filter_expr=None) -> pa.Table:
    """One part's rows (only ``columns``), schema-checked: a bad part raises ManifestError naming it."""
    try:
        schema = pq.read_schema(path)
    except Exception as e:  # noqa: BLE001 - pyarrow raises many types; re-raised naming the file
        raise ManifestError(f"{path}: unreadable Parquet file ({type(e).__name__}: {e})") from None
    validate_part_schema(schema, str(path))
    cols = list(columns) if columns is not None else MANIFEST_SCHEMA.names
    try:
        t = ds.dataset(path, format="parquet").to_table(columns=cols, filter=filter_expr, use_threads=False)
    except (pa.ArrowInvalid, OSError) as e:
        raise ManifestError(f"{path}: unreadable Parquet file ({type(e).__name__}: {e})") from None
    return t.cast(pa.schema([MANIFEST_SCHEMA.field(c) for c in cols]))


class ManifestLog:
    """The parts of one manifest folder and the current state they describe (read side)."""

    def __init__(self, folder: Path) -> None:
        self.folder = Path(folder)

    def parts(self) -> list[Path]:
        if not self.folder.is_dir():
            return []
        return sorted(p for p in self.folder.glob("*.parquet") if not p.name.startswith("."))

    def base(self) -> Path | None:
        bases = [p for p in self.parts() if p.name.startswith("base-")]
        return bases[-1] if bases else None

    def tail(self) -> list[Path]:
        """Every part but the newest base (an older base a crashed compaction left counts as a part)."""
        base = self.base()
        return [p for p in self.parts() if p != base]

    def tail_latest(self, columns: Sequence[str], tail: Sequence[Path] | None = None) -> pa.Table:
        """The highest revision per id among the parts (tombstones kept), sorted by id."""
        cols = list(dict.fromkeys(["id", "rev", "deleted", *columns]))
        tables = [read_part(p, cols) for p in (self.tail() if tail is None else tail)]
        if not tables:
            return pa.schema([MANIFEST_SCHEMA.field(c) for c in cols]).empty_table()
        return latest_revisions(pa.concat_tables(tables))

    def stream(self, columns: Sequence[str], *, split: str | None = None, source_kind: str | None = None,
               ids: Iterable[str] | None = None, include_deleted: bool = False,
               batch_rows: int = BATCH) -> Iterator[pa.Table]:
        """The current state in id order, as tables of about ``batch_rows`` rows with ``columns``
        (plus id, rev and deleted): the base's batches merged with the parts' latest rows."""
        cols = list(dict.fromkeys(["id", "rev", "deleted", *columns,
                                   *(["split"] if split else []), *(["source_kind"] if source_kind else [])]))
        id_list = None if ids is None else pa.array(sorted(set(ids)), pa.string())
        tail = self.tail_latest(cols)
        tail_ids = tail.column("id")
        tail = filter_table(tail, split=split, source_kind=source_kind, ids=id_list, include_deleted=include_deleted)
        tail_id_list = tail.column("id").to_pylist()
        done = 0  # tail rows emitted so far (the tail is sorted by id)
        base = self.base()
        if base is not None:
            validate_part_schema(pq.read_schema(base), str(base))
            expr = None
            if split is not None:
                expr = pc.field("split") == split
            if source_kind is not None:
                e = pc.field("source_kind") == source_kind
                expr = e if expr is None else expr & e
            if id_list is not None:
                e = pc.field("id").isin(id_list)
                expr = e if expr is None else expr & e
            scanner = ds.dataset(base, format="parquet").scanner(columns=cols, filter=expr, batch_size=batch_rows,
                                                                  use_threads=False, batch_readahead=1,
                                                                  fragment_readahead=1)
            for batch in scanner.to_batches():
                if not batch.num_rows:
                    continue
                bt = pa.Table.from_batches([batch]).cast(pa.schema([MANIFEST_SCHEMA.field(c) for c in cols]))
                if len(tail_ids):
                    bt = bt.filter(pc.invert(pc.is_in(bt.column("id"), value_set=tail_ids)))
                if not include_deleted:
                    bt = filter_table(bt)
                stop = _bisect_right(tail_id_list, batch.column(0)[-1].as_py(), done)
                out = pa.concat_tables([bt, tail.slice(done, stop - done)]).sort_by("id") if stop > done else bt
                done = stop
                if out.num_rows:
                    yield out
        if done < tail.num_rows:
            rest = tail.slice(done)
            for s in range(0, rest.num_rows, batch_rows):
                yield rest.slice(s, batch_rows)


def _bisect_right(sorted_ids: list[str], key: str, lo: int) -> int:
    import bisect

    return bisect.bisect_right(sorted_ids, key, lo)


def write_table_file(dest: Path, tables: Iterable[pa.Table]) -> int:
    """Write ``tables`` (manifest schema) to one Parquet file atomically, streaming; returns rows written."""
    rows = 0
    with atomic_path(dest, suffix=".parquet") as tmp:
        with pq.ParquetWriter(tmp, MANIFEST_SCHEMA, compression="zstd") as w:
            for t in tables:
                if t.num_rows:
                    w.write_table(t.select(MANIFEST_SCHEMA.names).cast(MANIFEST_SCHEMA), row_group_size=ROW_GROUP)
                    rows += t.num_rows
        if not rows:  # an empty file still carries the schema (and its version)
            pq.write_table(MANIFEST_SCHEMA.empty_table(), tmp, compression="zstd")
    return rows


# -- the index -------------------------------------------------------------------------------

_DDL = """
CREATE TABLE IF NOT EXISTS clips(id TEXT PRIMARY KEY, rev INTEGER NOT NULL, deleted INTEGER NOT NULL,
    part TEXT, split TEXT, source_kind TEXT, sha256 TEXT, source_sha256 TEXT, source_url TEXT,
    parent_id TEXT) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS clips_sha256 ON clips(sha256);
CREATE INDEX IF NOT EXISTS clips_source_sha256 ON clips(source_sha256);
CREATE INDEX IF NOT EXISTS clips_source_url ON clips(source_url);
CREATE INDEX IF NOT EXISTS clips_parent ON clips(parent_id);
CREATE TABLE IF NOT EXISTS captions(kind TEXT NOT NULL, id TEXT NOT NULL, PRIMARY KEY(kind, id)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS parts(name TEXT PRIMARY KEY, rows INTEGER NOT NULL, base INTEGER NOT NULL);
"""


class ManifestIndex:
    """The SQLite id index of one manifest folder; see the module docstring."""

    def __init__(self, log: ManifestLog, writable: bool) -> None:
        self.log = log
        self.path = log.folder / INDEX
        self.writable = writable
        self._mem: sqlite3.Connection | None = None

    @contextlib.contextmanager
    def connect(self) -> Iterator[sqlite3.Connection]:
        """A connection to an index that lists exactly the log's parts (caught up or rebuilt first).

        A read-only corpus, or one whose index cannot be written, gets an in-memory index."""
        if self._mem is not None:
            self._sync(self._mem)
            yield self._mem
            return
        if not self.writable or not os.access(self.log.folder, os.W_OK):
            self._mem = sqlite3.connect(":memory:", check_same_thread=False)
            self._mem.executescript(_DDL)
            self._sync(self._mem)
            yield self._mem
            return
        con = sqlite3.connect(self.path, timeout=60, isolation_level=None)
        try:
            if con.execute("PRAGMA user_version").fetchone()[0] != INDEX_VERSION:  # new, or of another layout
                with _txn(con):
                    if con.execute("PRAGMA user_version").fetchone()[0] != INDEX_VERSION:  # not done meanwhile
                        for table in ("clips", "captions", "parts"):
                            con.execute(f"DROP TABLE IF EXISTS {table}")
                        for stmt in _DDL.split(";"):
                            if stmt.strip():
                                con.execute(stmt)
                        con.execute(f"PRAGMA user_version = {INDEX_VERSION}")
            self._sync(con)
            yield con
        finally:
            con.close()

    def _sync(self, con: sqlite3.Connection) -> None:
        """Index parts the index does not list; rebuild when it lists one that is gone or the base differs."""
        listed = dict(con.execute("SELECT name, base FROM parts").fetchall())
        parts = self.log.parts()
        names = {p.name for p in parts}
        base = self.log.base()
        listed_base = [n for n, b in listed.items() if b]
        gone = sorted(set(listed) - names)
        if gone and not any(b for n, b in listed.items() if n in gone) and not con.execute(
                f"SELECT 1 FROM clips WHERE part IN ({','.join('?' * len(gone))}) LIMIT 1", gone).fetchone():
            # parts a merge folded away, re-listed by a reader between the merge's index update and its unlink
            with _txn(con):
                con.executemany("DELETE FROM parts WHERE name = ?", [(n,) for n in gone])
            listed = {n: b for n, b in listed.items() if n not in gone}
            gone = []
        if gone or (listed_base and (base is None or listed_base != [base.name])) \
                or (base is not None and base.name not in listed):
            self.rebuild(con)
            return
        for p in parts:
            if p.name not in listed:
                self.add_part(con, p, read_part(p, [*INDEX_COLUMNS, "captions"]))

    def rebuild(self, con: sqlite3.Connection) -> None:
        """Index every part from scratch (the base first, then the parts in name order), in one transaction."""
        base = self.log.base()
        with _txn(con):
            con.execute("DELETE FROM clips")
            con.execute("DELETE FROM captions")
            con.execute("DELETE FROM parts")
            for p in [*([base] if base else []), *self.log.tail()]:
                self.add_part(con, p, read_part(p, [*INDEX_COLUMNS, "captions"]), base=p == base)

    def add_part(self, con: sqlite3.Connection, part: Path, table: pa.Table, base: bool = False) -> None:
        """Index one part's rows (a row replaces the indexed one only when its ``rev`` is higher)."""
        with _txn(con):
            for s in range(0, max(table.num_rows, 1), 50_000):  # rows of the base point at no part (NULL)
                self._upsert(con, None if base else part.name, table.slice(s, 50_000))
            con.execute("INSERT OR REPLACE INTO parts VALUES (?, ?, ?)", (part.name, table.num_rows, int(base)))

    @staticmethod
    def _upsert(con: sqlite3.Connection, part: str | None, t: pa.Table) -> None:
        if not t.num_rows:
            return
        t = latest_revisions(t)
        cols = {c: t.column(c).to_pylist() for c in INDEX_COLUMNS}
        ids = cols["id"]
        have: dict[str, int] = {}
        for s in range(0, len(ids), 900):
            q = ids[s:s + 900]
            have.update(con.execute(f"SELECT id, rev FROM clips WHERE id IN ({','.join('?' * len(q))})", q))
        win = [i for i, cid in enumerate(ids) if cols["rev"][i] > have.get(cid, -1)]
        if not win:
            return
        rows = [(ids[i], cols["rev"][i], int(cols["deleted"][i]), part, cols["split"][i], cols["source_kind"][i],
                 cols["sha256"][i], cols["source_sha256"][i], cols["source_url"][i], cols["parent_id"][i])
                for i in win]
        con.executemany("INSERT OR REPLACE INTO clips VALUES (?,?,?,?,?,?,?,?,?,?)", rows)
        won = [ids[i] for i in win]
        con.executemany("DELETE FROM captions WHERE id = ?", [(cid,) for cid in won if cid in have])
        caps = t.column("captions").to_pylist()
        con.executemany("INSERT OR IGNORE INTO captions VALUES (?, ?)",
                        [(c["kind"], ids[i]) for i in win for c in (caps[i] or ()) if not cols["deleted"][i]])

    def replaced(self, con: sqlite3.Connection, old: Sequence[Path], new: Path, rows: int, base: bool) -> None:
        """Parts ``old`` were folded into ``new``: point their clips at it (a base drops tombstones)."""
        names = [p.name for p in old]
        with _txn(con):
            if base:
                con.execute("DELETE FROM captions WHERE id IN (SELECT id FROM clips WHERE deleted = 1)")
                con.execute("DELETE FROM clips WHERE deleted = 1")
                con.execute("UPDATE clips SET part = NULL WHERE part IS NOT NULL")  # O(rows of the parts) writes
                con.execute("DELETE FROM parts")
            else:
                for s in range(0, len(names), 900):
                    q = names[s:s + 900]
                    con.execute(f"UPDATE clips SET part = ? WHERE part IN ({','.join('?' * len(q))})", [new.name, *q])
                    con.execute(f"DELETE FROM parts WHERE name IN ({','.join('?' * len(q))})", q)
            con.execute("INSERT OR REPLACE INTO parts VALUES (?, ?, ?)", (new.name, rows, int(base)))


@contextlib.contextmanager
def _txn(con: sqlite3.Connection) -> Iterator[None]:
    if con.in_transaction:
        yield
        return
    con.execute("BEGIN IMMEDIATE")
    try:
        yield
    except BaseException:
        con.execute("ROLLBACK")
        raise
    con.execute("COMMIT")


def size_class(rows: int) -> int:
    return int(math.log(max(rows, 1), MERGE_FANOUT))


def merge_plan(parts: dict[str, tuple[int, int]]) -> list[str]:
    """Names of :data:`MERGE_FANOUT` tail parts of one size class to merge (empty: none due).
    ``parts``: name -> (rows, base)."""
    by_class: dict[int, list[str]] = {}
    for name, (rows, base) in sorted(parts.items()):
        if not base:
            by_class.setdefault(size_class(rows), []).append(name)
    for _, names in sorted(by_class.items()):
        if len(names) >= MERGE_FANOUT:
            return names[:MERGE_FANOUT]
    return []


def compaction_due(parts: dict[str, tuple[int, int]]) -> bool:
    base_rows = sum(r for r, b in parts.values() if b)
    tail_rows = sum(r for r, b in parts.values() if not b)
    return tail_rows >= max(COMPACT_MIN_ROWS, COMPACT_FRACTION * base_rows)


def now_rev() -> int:
    return time.time_ns()
