"""Merging results stores: every row of several stores in one, as ``--runs`` commands and the dashboard need.

A later store's row replaces an earlier one's with the same key (an upsert), as
:meth:`skyloom.eval.results.store.ResultsStore.copy_into` has always done. Two ways, one result:

- SQLite into SQLite: ``ATTACH`` the source file to the destination's connection and, per table,
  ``INSERT INTO main.t (cols) SELECT cols FROM src.t WHERE true ON CONFLICT (key) DO UPDATE``: the rows
  never pass through Python. Columns a source lacks (a schema-1 store has no ``kind``/``meta_json``) are
  left NULL, as reading such a store does.
- Any other pair (PostgreSQL on either side): the source's rows are read in batches of
  :data:`BATCH` and written with one compiled upsert per batch (``executemany``), not one statement per
  200 rows compiled each time.

Example:
    >>> import tempfile, os
    >>> from skyloom.eval.results.store import ResultsStore
    >>> d = tempfile.mkdtemp()
    >>> a = ResultsStore(os.path.join(d, "a.sqlite")); a.begin_eval("e1", suite="smoke")
    >>> b = ResultsStore(os.path.join(d, "b.sqlite")); b.begin_eval("e2", suite="smoke")
    >>> m = ResultsStore(os.path.join(d, "m.sqlite")); merge_into(m, [a, b])
    >>> [e["eval_id"] for e in m.evals()]
    ['e1', 'e2']
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from skyloom.eval.results.store import TABLES, ResultsStore, sqlite_file

logger = logging.getLogger(__name__)

BATCH = 5000  # rows per executemany of the portable path


def merge_into(dest: ResultsStore, sources: Iterable[ResultsStore]) -> None:
    """Upsert every row of each of ``sources`` (in order: later ones win) into ``dest``."""
    for src in sources:
        if _attachable(dest, src):
            _attach_merge(dest, src)
        else:
            _bulk_merge(dest, src)


def _attachable(dest: ResultsStore, src: ResultsStore) -> bool:
    return dest.engine.dialect.name == "sqlite" and sqlite_file(src.url) is not None and (
        sqlite_file(dest.url) != sqlite_file(src.url))


def _attach_merge(dest: ResultsStore, src: ResultsStore) -> None:
    """``ATTACH`` + ``INSERT ... SELECT ... ON CONFLICT DO UPDATE``, one transaction on the destination."""
    path = str(sqlite_file(src.url))
    raw = dest.engine.raw_connection()
    try:
        cur = raw.cursor()
        cur.execute("ATTACH DATABASE ? AS skyloom_src", (path,))  # outside a transaction, as SQLite requires
        try:
            cur.execute("BEGIN IMMEDIATE")
            try:
                for name, table in TABLES.items():
                    have = {r[1] for r in cur.execute(f"PRAGMA skyloom_src.table_info({name})")}
                    if not have:
                        continue  # not a table of this source (an empty or foreign database)
                    cols = [c.name for c in table.columns]
                    keys = [c.name for c in table.primary_key.columns]
                    select = ", ".join(c if c in have else "NULL" for c in cols)
                    update = ", ".join(f"{c} = excluded.{c}" for c in cols if c not in keys)
                    cur.execute(f"INSERT INTO main.{name} ({', '.join(cols)}) SELECT {select} "
                                f"FROM skyloom_src.{name} WHERE true ON CONFLICT ({', '.join(keys)}) DO UPDATE SET "
                                f"{update}")
                cur.execute("COMMIT")
            except BaseException:
                cur.execute("ROLLBACK")
                raise
        finally:
            cur.execute("DETACH DATABASE skyloom_src")
            cur.close()
    finally:
        raw.close()


def _bulk_merge(dest: ResultsStore, src: ResultsStore) -> None:
    """The portable path: the source's rows in batches, one compiled upsert per batch, one transaction."""

    def write(conn: Connection) -> None:
        with src.engine.connect() as read:
            for table in TABLES.values():
                result = read.execution_options(yield_per=BATCH).execute(sa.select(table))
                for batch in result.partitions(BATCH):
                    _upsert_many(dest, conn, table, [dict(r._mapping) for r in batch])

    dest._write(write)


def _upsert_many(dest: ResultsStore, conn: Connection, table: sa.Table, rows: Sequence[Mapping[str, Any]]) -> None:
    if not rows:
        return
    dialect = conn.dialect.name
    if dialect not in ("sqlite", "postgresql"):
        dest._upsert(conn, table, rows)  # delete-then-insert on other databases
        return
    from sqlalchemy.dialects import postgresql, sqlite

    insert: Any = sqlite.insert if dialect == "sqlite" else postgresql.insert
    keys = [c.name for c in table.primary_key.columns]
    stmt = insert(table)
    update = {c.name: stmt.excluded[c.name] for c in table.columns if c.name not in keys}
    conn.execute(stmt.on_conflict_do_update(index_elements=keys, set_=update), list(rows))


__all__ = ["BATCH", "merge_into"]
