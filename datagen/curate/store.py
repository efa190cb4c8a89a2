"""The curation files beside the manifest: one Parquet table each, one row per clip, joined on ``id``.

============================  =============================================================
``annotations.parquet``        one column per annotation value, plus ``<annotator>_version``
                               (annotator version and the tool that produced it) per annotator
``embeddings.parquet``         ``id``, ``sha256``, ``embedder``, ``embedder_version``, ``vector`` (list<float32>)
``dedup.parquet``              ``id``, ``group``, ``kept`` (the group's representative), ``duplicate``,
                               ``similarity``, ``distance``, ``rule``, ``version``: every clip in a group
``semdedup.parquet``           ``id``, ``cluster``, ``semantic_duplicate``, ``kept``, ``similarity``, ``eps``:
                               semantic dedup (SemDeDup) of the embeddings
``fingerprints.parquet``       the near-duplicate fingerprints (a cache; recomputed when a clip's
                               sha256 or the fingerprint settings change)
============================  =============================================================

Every table has an ``id`` and a ``sha256`` column (the clip file's hash when the row was made; a
row whose clip changed is stale and recomputed). Writers go through :class:`SideTable`, which
rewrites the file atomically under the corpus's curation lock, so readers (pandas, DuckDB,
pyarrow) always see a whole file. A takedown drops the source's rows from every table
(:func:`drop_clips`); ``corpus validate`` reports rows whose clip is gone (:func:`check_side_tables`).
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from skyloom.fsutil import atomic_path, file_lock

ANNOTATIONS = "annotations.parquet"
EMBEDDINGS = "embeddings.parquet"
DEDUP = "dedup.parquet"
FINGERPRINTS = "fingerprints.parquet"
SEMDEDUP = "semdedup.parquet"
TABLES = (ANNOTATIONS, EMBEDDINGS, DEDUP, FINGERPRINTS, SEMDEDUP)
LOCK = ".curation.lock"


class SideTable:
    """One curation table of a corpus (``CORPUS/<name>``): read, upsert rows by id, drop ids."""

    def __init__(self, root: str | Path, name: str) -> None:
        if name not in TABLES:
            raise ValueError(f"unknown curation table {name!r}; valid: {', '.join(TABLES)}")
        self.root = Path(root)
        self.path = self.root / name

    def lock(self):
        return file_lock(self.root / LOCK)

    def exists(self) -> bool:
        return self.path.exists()

    def read(self) -> pa.Table | None:
        """The whole table (None if it was never written)."""
        return pq.read_table(self.path) if self.path.exists() else None

    def rows(self) -> dict[str, dict]:
        """id -> row dict."""
        t = self.read()
        return {} if t is None else {r["id"]: r for r in t.to_pylist()}

    def _write(self, table: pa.Table) -> None:
        with atomic_path(self.path, suffix=".parquet") as tmp:
            pq.write_table(table, tmp, compression="zstd")

    def upsert(self, table: pa.Table, replace_all: bool = False) -> None:
        """Replace the rows of ``table``'s ids (or, with ``replace_all``, the whole table); new columns
        are added (null in older rows), columns absent from ``table`` keep their values in other rows."""
        with self.lock():
            old = None if replace_all else self.read()
            if old is not None and old.num_rows:
                new_ids = pa.array(table.column("id").to_pylist(), pa.string())
                import pyarrow.compute as pc

                old = old.filter(pc.invert(pc.is_in(old.column("id"), value_set=new_ids)))
                table = pa.concat_tables([old, table], promote_options="permissive")
            self._write(table.sort_by("id"))

    def drop(self, ids: Iterable[str]) -> int:
        """Remove the rows of ``ids``; returns how many were removed."""
        import pyarrow.compute as pc

        gone = pa.array(sorted(set(ids)), pa.string())
        with self.lock():
            t = self.read()
            if t is None or not len(gone):
                return 0
            keep = t.filter(pc.invert(pc.is_in(t.column("id"), value_set=gone)))
            if keep.num_rows != t.num_rows:
                self._write(keep)
            return t.num_rows - keep.num_rows


def drop_clips(root: str | Path, ids: Iterable[str]) -> dict[str, int]:
    """Drop ``ids`` from every curation table of the corpus at ``root``; returns rows removed per table."""
    ids = list(ids)
    return {name: n for name in TABLES if (n := SideTable(root, name).drop(ids))}


def check_side_tables(root: str | Path, live: dict[str, str]) -> list[tuple[str, str, str]]:
    """Problems of the curation tables against ``live`` (id -> sha256 of live clips):
    ``(kind, item, detail)`` for each row whose clip is not live, or whose sha256 is not the clip's."""
    out = []
    for name in TABLES:
        t = SideTable(root, name).read()
        if t is None:
            continue
        shas = t.column("sha256").to_pylist() if "sha256" in t.column_names else [None] * t.num_rows
        for cid, sha in zip(t.column("id").to_pylist(), shas, strict=True):
            if cid not in live:
                out.append(("curation row without clip", f"{name}:{cid}",
                            f"{name} has a row for clip {cid!r}, which is not in the manifest"))
            elif sha and sha != live[cid] and name != FINGERPRINTS:
                out.append(("stale curation row", f"{name}:{cid}",
                            f"{name} row of {cid!r} was made from another file (sha256 {sha[:12]}); rerun the command"))
    return out
