"""The results store: every evaluation's scores, per-item values and failures, in one database.

SQLite by default (``RUN/results.sqlite``: WAL journal, a busy timeout, ``BEGIN IMMEDIATE``
write transactions, so several processes writing at once lose nothing), or any SQLAlchemy URL
(``postgresql+psycopg://host/db``) for a team's shared leaderboard. Written with SQLAlchemy Core
only; the tables are the contract in ``docs/architecture.md`` ("Results store"):

- ``evals(eval_id PK, suite, suite_version, checkpoint, checkpoint_name, run_name, step,
  created_at, git_hash, config_json, status, kind, meta_json)``; ``kind`` is ``model`` (a
  checkpoint or pipeline skyloom generated with), ``submission`` (a folder of videos made
  elsewhere) or ``calibration`` (a reference row made from the suite's data); ``meta_json`` holds
  a submission's metadata (who, model, date, settings) and what was done to its videos
- ``scores(eval_id, metric, value, stderr, ci_low, ci_high, n, higher_is_better, metric_version,
  extractor, weights, details_json)``, key (eval_id, metric)
- ``items(eval_id, item_id, metric, value, video_path, prompt, seed, category)``, key
  (eval_id, item_id, metric); ``video_path`` is relative to the store's folder when the video lies
  inside it (``eval/<suite>/<eval_id>/videos/<item>.mp4`` in a run's store), else absolute
- ``failures(eval_id, item_id, stage, reason, created_at)``, key (eval_id, item_id, stage)

Every write is one transaction and an upsert on the table's key, so a resumed evaluation
rewrites the rows it recomputes instead of duplicating them.

Schema versions: 1 (no ``kind``/``meta_json``), 2. Opening a version-1 store adds the two columns
(``ALTER TABLE``; old rows read as ``kind = model``) and records version 2, so every store written
before stays readable.

Example:
    >>> import tempfile, os
    >>> store = ResultsStore(os.path.join(tempfile.mkdtemp(), "results.sqlite"))
    >>> store.begin_eval("e1", suite="smoke", checkpoint="/runs/a/checkpoints/step-00000000")
    >>> store.put_scores("e1", [{"metric": "clipsim", "value": 0.31, "n": 4, "higher_is_better": True}])
    1
    >>> [(s["eval_id"], s["metric"], s["value"]) for s in store.scores(suite="smoke")]
    [('e1', 'clipsim', 0.31)]
"""

from __future__ import annotations

import json
import logging
import math
import os
import random
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from skyloom.errors import UserError, require_extra
from skyloom.fsutil import now_iso
from skyloom.rundir import RESULTS_DB, RESULTS_DB_ENV, locate_store

logger = logging.getLogger(__name__)

T = TypeVar("T")

STORE_SCHEMA_VERSION = 2
EVAL_KINDS = ("model", "submission", "calibration")
DB_FILENAME = RESULTS_DB
EVAL_STATUSES = ("running", "complete", "partial", "failed")
BUSY_TIMEOUT_MS = 60_000
_WRITE_RETRIES = 8

# A PostgreSQL server sorts and compares text by its database's collation (often en_US: "b" < "B" < "p10" <
# "p1-s0"), SQLite bytewise. Every text column is declared with PostgreSQL's bytewise "C" collation, so a
# board, a tie order or a "latest" row is the same on both.
_PG_C = "C"


def _key(length: int) -> sa.types.TypeEngine:
    """A key column: at most ``length`` characters (checked on every write, so both databases agree)."""
    return sa.String(length).with_variant(sa.String(length, collation=_PG_C), "postgresql")


def _text() -> sa.types.TypeEngine:
    """A text column of any length (PostgreSQL enforces a VARCHAR's length, SQLite does not: no length here)."""
    return sa.Text().with_variant(sa.Text(collation=_PG_C), "postgresql")


# Lengths of the key columns (StoreError above them, on every database).
KEY_LENGTHS = {"eval_id": 128, "metric": 128, "item_id": 256, "stage": 64}

metadata = sa.MetaData()

evals_table = sa.Table(
    "evals", metadata,
    sa.Column("eval_id", _key(128), primary_key=True),
    sa.Column("suite", _text(), nullable=False, index=True),
    sa.Column("suite_version", _text()),
    sa.Column("checkpoint", _text()),
    sa.Column("checkpoint_name", _text()),
    sa.Column("run_name", _text()),
    sa.Column("step", sa.BigInteger),
    sa.Column("created_at", _text()),  # ISO 8601 UTC (skyloom.fsutil.now_iso): sorts as text on both databases
    sa.Column("git_hash", _text()),
    sa.Column("config_json", _text()),
    sa.Column("status", _text()),
    sa.Column("kind", _text()),  # schema 2
    sa.Column("meta_json", _text()),  # schema 2
)
# Columns added after schema 1: _migrate adds them to older stores.
_ADDED_COLUMNS = {"evals": ("kind", "meta_json")}

scores_table = sa.Table(
    "scores", metadata,
    sa.Column("eval_id", _key(128), primary_key=True),
    sa.Column("metric", _key(128), primary_key=True),
    sa.Column("value", sa.Float),
    sa.Column("stderr", sa.Float),
    sa.Column("ci_low", sa.Float),
    sa.Column("ci_high", sa.Float),
    sa.Column("n", sa.Integer),
    sa.Column("higher_is_better", sa.Boolean),
    sa.Column("metric_version", _text()),
    sa.Column("extractor", _text()),
    sa.Column("weights", _text()),
    sa.Column("details_json", _text()),
)

items_table = sa.Table(
    "items", metadata,
    sa.Column("eval_id", _key(128), primary_key=True),
    sa.Column("item_id", _key(256), primary_key=True),
    sa.Column("metric", _key(128), primary_key=True),
    sa.Column("value", sa.Float),
    sa.Column("video_path", _text()),
    sa.Column("prompt", _text()),
    sa.Column("seed", sa.BigInteger),  # seeds may be 64-bit; PostgreSQL's INTEGER is 32
    sa.Column("category", _text()),
)

failures_table = sa.Table(
    "failures", metadata,
    sa.Column("eval_id", _key(128), primary_key=True),
    sa.Column("item_id", _key(256), primary_key=True),
    sa.Column("stage", _key(64), primary_key=True),
    sa.Column("reason", _text()),
    sa.Column("created_at", _text()),
)

meta_table = sa.Table(
    "skyloom_meta", metadata,
    sa.Column("key", _key(64), primary_key=True),
    sa.Column("value", _text()),
)

TABLES = {"evals": evals_table, "scores": scores_table, "items": items_table, "failures": failures_table}
SCORE_FIELDS = tuple(c.name for c in scores_table.columns if c.name != "eval_id")
ITEM_FIELDS = tuple(c.name for c in items_table.columns if c.name != "eval_id")


class StoreError(UserError, ValueError):
    """A results-store URL or row that cannot be used."""


def resolve_url(target: str | os.PathLike) -> str:
    """Turn a store target into an SQLAlchemy URL.

    Args:
        target: an SQLAlchemy URL (``sqlite:///x.sqlite``, ``postgresql+psycopg://...``), a run
            directory (-> ``RUN/results.sqlite``), a directory, or a ``.sqlite``/``.db`` file path.
    """
    s = str(target)
    if "://" in s:
        return s
    p = Path(s)
    if p.is_dir() or (not p.suffix and not p.exists()):
        p = p / DB_FILENAME
    return f"sqlite:///{p.resolve()}"


# PostgreSQL errors after which the whole transaction can simply run again: serialization failure,
# deadlock detected, lock not available (SQLSTATE codes).
_PG_RETRY_CODES = {"40001", "40P01", "55P03"}
# A constant key for pg_advisory_xact_lock: creating or migrating the schema, one process at a time.
_PG_SCHEMA_LOCK = 0x736B796C6F6F6D


def _is_locked_error(e: BaseException) -> bool:
    """A write that failed only because another writer held the database (SQLite) or a row (PostgreSQL)."""
    orig = getattr(e, "orig", e)
    if getattr(orig, "sqlstate", None) in _PG_RETRY_CODES:  # psycopg 3
        return True
    text = str(orig).lower()
    return "database is locked" in text or "database table is locked" in text or "busy" in text


def public_config(config: dict[str, Any]) -> dict[str, Any]:
    """A configuration as stored beside results and in ``config_json``: its ``db`` URL without the password."""
    db = config.get("db")
    return {**config, "db": safe_url(db)} if isinstance(db, str) else config


def safe_url(url: str) -> str:
    """A store URL for messages and pages: the password, if the URL holds one, masked as ``***``."""
    if "://" not in url or "@" not in url:
        return url
    try:
        return sa.engine.make_url(url).render_as_string(hide_password=True)
    except sa.exc.ArgumentError:
        return url


class ResultsStore:
    """Reader/writer of the results tables (see the module docstring).

    Args:
        url: SQLAlchemy URL, run directory, directory or SQLite file path.
        echo: log every SQL statement (debugging).
    """

    def __init__(self, url: str | os.PathLike, echo: bool = False) -> None:
        self.url = resolve_url(url)
        self.label = safe_url(self.url)  # for messages: no password
        try:
            self.engine: Engine = _make_engine(self.url, echo=echo)
            self._create_schema()
        except sa.exc.DatabaseError as e:  # a file that is not SQLite, a server that refuses: the user's input
            if isinstance(e, sa.exc.OperationalError) and _is_locked_error(e):
                raise
            reason = " ".join(str(getattr(e, "orig", e)).split())
            raise StoreError(f"results store {safe_url(str(url))}: cannot be opened as a database ({reason}); "
                             "give a results.sqlite, "
                             "a run folder or an SQLAlchemy URL") from None

    # -- plumbing -------------------------------------------------------------------------
    def _create_schema(self) -> None:
        def create(conn: Connection) -> None:
            if conn.dialect.name == "postgresql":
                # DDL is transactional there, but two processes creating the same tables at once both find
                # them absent and one fails: take turns (the lock ends with the transaction).
                conn.execute(sa.text("SELECT pg_advisory_xact_lock(:k)"), {"k": _PG_SCHEMA_LOCK})
            metadata.create_all(conn, checkfirst=True)
            row = conn.execute(sa.select(meta_table.c.value).where(meta_table.c.key == "schema_version")).first()
            if row is not None and int(row[0]) > STORE_SCHEMA_VERSION:
                raise StoreError(f"{self.label}: results store schema version {row[0]} is newer than this "
                                 f"skyloom understands ({STORE_SCHEMA_VERSION}); upgrade skyloom")
            _migrate(conn)
            if row is None:
                conn.execute(meta_table.insert().values(key="schema_version", value=str(STORE_SCHEMA_VERSION)))
            elif int(row[0]) < STORE_SCHEMA_VERSION:
                logger.info("%s: results store schema %s -> %d", self.label, row[0], STORE_SCHEMA_VERSION)
                conn.execute(meta_table.update().where(meta_table.c.key == "schema_version")
                             .values(value=str(STORE_SCHEMA_VERSION)))

        try:
            self._write(create)
        except sa.exc.IntegrityError:  # another process created the schema at the same moment
            pass

    @contextmanager
    def _write_conn(self) -> Iterator[Connection]:
        with self.engine.connect() as conn:
            conn = conn.execution_options(skyloom_immediate=True)
            with conn.begin():
                yield conn

    def _write(self, fn: Callable[[Connection], T]) -> T:
        """Run ``fn(conn)`` in one write transaction, retrying if the database is busy."""
        delay = 0.05
        for attempt in range(_WRITE_RETRIES):
            try:
                with self._write_conn() as conn:
                    return fn(conn)
            except sa.exc.ProgrammingError as e:
                if getattr(e.orig, "sqlstate", None) != "42501":  # insufficient_privilege: the user's setup
                    raise
                reason = " ".join(str(e.orig).split())
                raise StoreError(f"results store {self.label}: {reason}; this database role may read the store "
                                 "but not write to it (docs/results-store.md)") from None
            except sa.exc.OperationalError as e:
                if not _is_locked_error(e) or attempt == _WRITE_RETRIES - 1:
                    raise
                logger.debug("results store busy (%s); retry %d", e, attempt + 1)
                time.sleep(delay * (1 + random.random()))
                delay = min(delay * 2, 2.0)
        raise AssertionError("unreachable")

    def _read(self, stmt: sa.Executable) -> list[dict[str, Any]]:
        with self.engine.connect() as conn:
            return [dict(r._mapping) for r in conn.execute(stmt)]

    def _upsert(self, conn: Connection, table: sa.Table, rows: Sequence[Mapping[str, Any]],
                keep: Sequence[str] = ()) -> None:
        """Insert ``rows``, replacing those with the same key; columns in ``keep`` keep an existing row's value.

        A key given twice counts once (the last row wins: PostgreSQL refuses one statement that updates a
        row twice), and rows go in key order, so two writers upserting overlapping keys lock them in the
        same order and cannot deadlock.
        """
        if not rows:
            return
        keys = [c.name for c in table.primary_key.columns]
        cols = [c.name for c in table.columns]
        by_key: dict[tuple, dict[str, Any]] = {}
        for r in rows:
            row = {c: r.get(c) for c in cols}
            for k in keys:
                _check_key(row[k], k, table.name)
            by_key[tuple(row[k] for k in keys)] = row
        ordered = [by_key[k] for k in sorted(by_key)]
        dialect = conn.dialect.name
        if dialect in ("sqlite", "postgresql"):
            from sqlalchemy.dialects import postgresql, sqlite

            insert: Any = sqlite.insert if dialect == "sqlite" else postgresql.insert  # both have on_conflict_*
            stmt = insert(table)
            update = {c: stmt.excluded[c] for c in cols if c not in keys and c not in keep}
            # One statement with bound parameters, run for every row (executemany; psycopg pipelines it): compiled
            # once and cached, where a multi-row VALUES list was compiled anew for every batch.
            conn.execute(stmt.on_conflict_do_update(index_elements=keys, set_=update) if update
                         else stmt.on_conflict_do_nothing(index_elements=keys), ordered)
            return
        # Any other database: delete the keys, then insert, in the same transaction.
        for r in ordered:
            cond = sa.and_(*[table.c[k] == r[k] for k in keys])
            if keep:
                old = conn.execute(sa.select(*[table.c[c] for c in keep]).where(cond)).first()
                if old is not None:
                    r.update(old._mapping)
            conn.execute(table.delete().where(cond))
        conn.execute(table.insert(), ordered)

    # -- writes ---------------------------------------------------------------------------
    def begin_eval(self, eval_id: str, *, suite: str, checkpoint: str | None = None,
                   checkpoint_name: str | None = None, run_name: str | None = None, step: int | None = None,
                   suite_version: str | None = None, git_hash: str | None = None,
                   config: Mapping[str, Any] | None = None, status: str = "running",
                   created_at: str | None = None, kind: str = "model", meta: Mapping[str, Any] | None = None) -> None:
        """Create (or, when resuming, update) the ``evals`` row of one evaluation.

        Scores, items and failures already stored for ``eval_id`` are kept.

        Args:
            kind: ``model``, ``submission`` or ``calibration`` (see the module docstring).
            meta: a submission's or calibration row's metadata (stored as ``meta_json``).
        """
        _check_id(eval_id, "eval_id")
        if status not in EVAL_STATUSES:
            raise StoreError(f"eval {eval_id}: status {status!r} is not one of {', '.join(EVAL_STATUSES)}")
        if kind not in EVAL_KINDS:
            raise StoreError(f"eval {eval_id}: kind {kind!r} is not one of {', '.join(EVAL_KINDS)}")

        row = {"eval_id": eval_id, "suite": suite,
               "suite_version": None if suite_version is None else str(suite_version),
               "checkpoint": checkpoint, "checkpoint_name": checkpoint_name, "run_name": run_name,
               "step": None if step is None else int(step), "created_at": created_at or now_iso(),
               "git_hash": git_hash, "config_json": json.dumps(config or {}, sort_keys=True, default=str),
               "status": status, "kind": kind, "meta_json": json.dumps(meta or {}, sort_keys=True, default=str)}
        # A resumed evaluation keeps its first creation time unless one is given (in the same statement, so
        # two processes resuming at once cannot both see "new").
        self._write(lambda conn: self._upsert(conn, evals_table, [row], keep=() if created_at else ("created_at",)))

    def set_status(self, eval_id: str, status: str) -> None:
        """Mark an evaluation ``running``, ``complete``, ``partial`` (some items failed) or ``failed``."""
        if status not in EVAL_STATUSES:
            raise StoreError(f"eval {eval_id}: status {status!r} is not one of {', '.join(EVAL_STATUSES)}")
        n = self._write(lambda conn: conn.execute(
            evals_table.update().where(evals_table.c.eval_id == eval_id).values(status=status)).rowcount)
        if not n:
            raise StoreError(f"no evaluation {eval_id!r} in {self.label}")

    def put_scores(self, eval_id: str, scores: Iterable[Mapping[str, Any]]) -> int:
        """Upsert aggregate scores: dicts with ``metric``, ``value`` and any of :data:`SCORE_FIELDS`.

        A ``details`` dict (anything else worth keeping: scale, preprocessing, ...) is stored as
        ``details_json``.
        """
        rows = []
        for s in scores:
            unknown = set(s) - set(SCORE_FIELDS) - {"details", "eval_id"}
            if unknown:
                raise StoreError(f"score for eval {eval_id}: unknown field(s) {sorted(unknown)}; "
                                 f"valid: {', '.join(SCORE_FIELDS)}, details")
            if not s.get("metric"):
                raise StoreError(f"score for eval {eval_id}: missing 'metric'")
            row = {k: s.get(k) for k in SCORE_FIELDS}
            if "details" in s:
                row["details_json"] = json.dumps(s["details"], sort_keys=True, default=str)
            for k in ("value", "stderr", "ci_low", "ci_high"):
                row[k] = _float_or_none(row[k])
            row["higher_is_better"] = None if row["higher_is_better"] is None else bool(row["higher_is_better"])
            row["n"] = None if row["n"] is None else int(row["n"])
            row["eval_id"] = eval_id
            rows.append(row)
        self._write(lambda conn: self._upsert(conn, scores_table, rows))
        return len(rows)

    def put_items(self, eval_id: str, items: Iterable[Mapping[str, Any]]) -> int:
        """Upsert per-item values: dicts with ``item_id``, ``metric``, ``value`` and optionally
        ``video_path``, ``prompt``, ``seed``, ``category``."""
        rows = []
        for it in items:
            if not it.get("item_id") or not it.get("metric"):
                raise StoreError(f"item for eval {eval_id}: needs 'item_id' and 'metric', got {dict(it)}")
            row = {k: it.get(k) for k in ITEM_FIELDS}
            row["value"] = _float_or_none(row["value"])
            row["seed"] = None if row["seed"] is None else int(row["seed"])
            row["video_path"] = self._relative_video(row["video_path"])
            row["eval_id"] = eval_id
            rows.append(row)
        self._write(lambda conn: self._upsert(conn, items_table, rows))
        return len(rows)

    @property
    def folder(self) -> Path | None:
        """The folder of a SQLite store's file (what its relative video paths are relative to); None otherwise."""
        f = sqlite_file(self.url)
        return f.parent if f is not None else None

    def _relative_video(self, path: str | os.PathLike | None) -> str | None:
        """A video path as stored: relative to the store's folder when the video lies inside it (so a moved
        or copied folder keeps its videos), else absolute; a relative path is taken as relative already."""
        if path is None:
            return None
        p, root = Path(path), self.folder
        if not p.is_absolute() or root is None:
            return p.as_posix() if not p.is_absolute() else str(p)
        for cand in (p, p.resolve()):
            if cand.is_relative_to(root):
                return cand.relative_to(root).as_posix()
        return str(p)

    def video_file(self, stored: str | None) -> Path | None:
        """Where a stored ``video_path`` is now: a relative one from the store's folder, an absolute one as is."""
        if not stored:
            return None
        p = Path(stored)
        return p if p.is_absolute() or self.folder is None else self.folder / p

    def add_failure(self, eval_id: str, item_id: str, stage: str, reason: str) -> None:
        """Record that ``item_id`` failed at ``stage`` (load, generate, decode, score, ...)."""
        row = {"eval_id": eval_id, "item_id": item_id, "stage": stage, "reason": str(reason)[:4000],
               "created_at": now_iso()}
        self._write(lambda conn: self._upsert(conn, failures_table, [row]))

    def clear_failures(self, eval_id: str, item_id: str | None = None, stages: Iterable[str] | None = None) -> None:
        """Forget failures of an evaluation (or one item, or some stages) before retrying it."""
        cond = failures_table.c.eval_id == eval_id
        if item_id is not None:
            cond = sa.and_(cond, failures_table.c.item_id == item_id)
        if stages is not None:
            cond = sa.and_(cond, failures_table.c.stage.in_(list(stages)))
        self._write(lambda conn: conn.execute(failures_table.delete().where(cond)))

    # -- reads ----------------------------------------------------------------------------
    def evals(self, suite: str | None = None, status: str | None = None) -> list[dict[str, Any]]:
        """``evals`` rows (oldest first), optionally of one suite and/or status; ``config`` is decoded."""
        stmt = sa.select(evals_table).order_by(evals_table.c.created_at, evals_table.c.eval_id)
        if suite is not None:
            stmt = stmt.where(evals_table.c.suite == suite)
        if status is not None:
            stmt = stmt.where(evals_table.c.status == status)
        return [_decode_eval(r) for r in self._read(stmt)]

    def get_eval(self, eval_id: str) -> dict[str, Any]:
        """One ``evals`` row; :class:`StoreError` listing a few known ids if absent."""
        rows = self._read(sa.select(evals_table).where(evals_table.c.eval_id == eval_id))
        if not rows:
            known = [r["eval_id"] for r in self._read(sa.select(evals_table.c.eval_id).limit(20))]
            raise StoreError(f"no evaluation {eval_id!r} in {self.label}; known: {', '.join(known) or '(none)'}")
        return _decode_eval(rows[0])

    def scores(self, suite: str | None = None, eval_ids: Iterable[str] | None = None,
               metric: str | None = None) -> list[dict[str, Any]]:
        """``scores`` rows (``details`` decoded), optionally of one suite / some evaluations / one metric."""
        stmt = sa.select(scores_table).order_by(scores_table.c.eval_id, scores_table.c.metric)
        if suite is not None:
            stmt = stmt.where(scores_table.c.eval_id.in_(
                sa.select(evals_table.c.eval_id).where(evals_table.c.suite == suite)))
        if eval_ids is not None:
            stmt = stmt.where(scores_table.c.eval_id.in_(list(eval_ids)))
        if metric is not None:
            stmt = stmt.where(scores_table.c.metric == metric)
        rows = self._read(stmt)
        for r in rows:
            r["details"] = json.loads(r["details_json"]) if r.get("details_json") else {}
        return rows

    def items(self, eval_id: str, metric: str | None = None) -> list[dict[str, Any]]:
        """Per-item rows of one evaluation (sorted by metric, item id)."""
        stmt = (sa.select(items_table).where(items_table.c.eval_id == eval_id)
                .order_by(items_table.c.metric, items_table.c.item_id))
        if metric is not None:
            stmt = stmt.where(items_table.c.metric == metric)
        return self._read(stmt)

    def item_ids(self, eval_id: str, metric: str) -> set[str]:
        """Ids of the items of ``eval_id`` that already have a value for ``metric`` (for resuming)."""
        stmt = sa.select(items_table.c.item_id).where(
            sa.and_(items_table.c.eval_id == eval_id, items_table.c.metric == metric))
        return {r["item_id"] for r in self._read(stmt)}

    def failures(self, eval_id: str | None = None) -> list[dict[str, Any]]:
        """``failures`` rows, optionally of one evaluation."""
        stmt = sa.select(failures_table).order_by(failures_table.c.created_at, failures_table.c.item_id)
        if eval_id is not None:
            stmt = stmt.where(failures_table.c.eval_id == eval_id)
        return self._read(stmt)

    def resolve_eval(self, ref: str, suite: str | None = None) -> str:
        """An eval id from an eval id, a checkpoint path or run directory, or a checkpoint name
        (``run/step-00000100``); the latest matching evaluation (of ``suite`` if given).

        Raises:
            StoreError: nothing matches, or the match spans several suites and none was given.
        """
        rows = self.evals(suite=suite)
        exact = [r for r in rows if r["eval_id"] == ref]
        if exact:
            return exact[-1]["eval_id"]
        cands, names = {ref}, {ref}
        p = Path(ref)
        if p.exists():
            from skyloom.rundir import resolve_checkpoint, run_of_checkpoint

            try:
                ck = resolve_checkpoint(p).resolve()
            except ValueError:
                ck = p.resolve()
            cands.add(str(ck))
            run = run_of_checkpoint(ck)
            if run is not None:  # a moved or copied run: its stored absolute path is the old one
                names.add(f"{run.name}/{ck.name}")
        match = [r for r in rows if r["checkpoint"] in cands or r["checkpoint_name"] in names
                 or (r["checkpoint_name"] or "").endswith("/" + ref)]
        if not match:
            known = sorted({r["checkpoint_name"] or r["eval_id"] for r in rows})[:20]
            raise StoreError(f"no evaluation matches {ref!r}{' in suite ' + repr(suite) if suite else ''}; "
                             f"known checkpoints: {', '.join(known) or '(none)'}")
        suites = sorted({r["suite"] for r in match})
        if len(suites) > 1:
            raise StoreError(f"{ref!r} was evaluated on several suites ({', '.join(suites)}); pass --suite")
        return match[-1]["eval_id"]

    def copy_into(self, other: ResultsStore) -> None:
        """Upsert every row of this store into ``other`` (merging several runs' stores): ``ATTACH`` and
        ``INSERT ... SELECT`` between SQLite files, batched upserts otherwise (:mod:`skyloom.eval.results.merge`)."""
        from skyloom.eval.results.merge import merge_into

        merge_into(other, [self])

    @classmethod
    def merged(cls, targets: Iterable[str | os.PathLike]) -> ResultsStore:
        """An in-memory store holding the rows of every store in ``targets`` (read-only use)."""
        merged = cls("sqlite://")
        for t in targets:
            src = cls(t)
            try:
                src.copy_into(merged)
            finally:
                src.close()
        return merged

    def stamp(self) -> tuple:
        """A cheap fingerprint that changes when the store's rows change (for caches and live refresh).

        SQLite: size and modification time of the file and its WAL. PostgreSQL: what the boards read changes
        it at once (per status, the count and newest ``created_at`` of the evaluations; the count and sum of
        the scores: two aggregates over the small tables), and any other write within seconds: the rows
        inserted, updated and deleted in the store's tables, from the server's statistics
        (``pg_stat_user_tables``), which a writer reports when it goes idle after its transaction, about 1 s
        (at most about 10 s) later. Another database: the number of rows of each table.
        """
        f = sqlite_file(self.url)
        if f is not None:
            out: list[Any] = []
            for p in (f, Path(f"{f}-wal")):
                try:
                    st = p.stat()
                    out += [st.st_mtime_ns, st.st_size]
                except OSError:
                    out += [None, None]
            return tuple(out)
        with self.engine.connect() as conn:
            if conn.dialect.name == "postgresql":
                row = conn.execute(sa.text(
                    "SELECT coalesce(sum(n_tup_ins + n_tup_upd + n_tup_del), 0), count(*) FROM pg_stat_user_tables "
                    "WHERE schemaname = current_schema() AND relname IN ('evals', 'scores', 'items', 'failures')")
                ).one()
                e, sc = evals_table, scores_table
                evals = conn.execute(sa.select(e.c.status, sa.func.count(), sa.func.max(e.c.created_at))
                                     .group_by(e.c.status).order_by(e.c.status)).all()
                scores = conn.execute(sa.select(sa.func.count(), sa.func.sum(sc.c.value))).one()
                return (int(row[0]), int(row[1]), tuple(tuple(r) for r in evals), tuple(scores))
            return tuple(conn.execute(sa.select(sa.func.count()).select_from(t)).scalar_one() for t in TABLES.values())

    def close(self) -> None:
        self.engine.dispose()

    def __enter__(self) -> ResultsStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"ResultsStore({self.label!r})"


def _decode_eval(r: dict[str, Any]) -> dict[str, Any]:
    """An ``evals`` row with ``config`` and ``meta`` decoded; rows from schema 1 read as ``kind = model``."""
    r["config"] = json.loads(r["config_json"]) if r.get("config_json") else {}
    r["meta"] = json.loads(r["meta_json"]) if r.get("meta_json") else {}
    r["kind"] = r.get("kind") or "model"
    return r


def _migrate(conn: Connection) -> None:
    """Add the columns of later schema versions to the tables of an older store (idempotent)."""
    insp = sa.inspect(conn)
    for table, cols in _ADDED_COLUMNS.items():
        have = {c["name"] for c in insp.get_columns(table)}
        for name in cols:
            if name not in have:
                sql_type = metadata.tables[table].c[name].type.compile(dialect=conn.dialect)
                conn.exec_driver_sql(f"ALTER TABLE {table} ADD COLUMN {name} {sql_type}")


def _make_engine(url: str, echo: bool = False) -> Engine:
    try:
        parsed = sa.engine.make_url(url)
    except sa.exc.ArgumentError as e:
        raise StoreError(f"results store URL {safe_url(url)!r} is not a valid SQLAlchemy URL ({e})") from None
    if parsed.get_backend_name() != "sqlite":
        if parsed.drivername == "postgresql":  # no driver named: psycopg 3 (skyloom[postgres]), not psycopg2
            parsed = parsed.set(drivername="postgresql+psycopg")
        if parsed.drivername == "postgresql+psycopg":
            require_extra("psycopg", "postgres", what="a PostgreSQL results store")
        try:
            return sa.create_engine(parsed, echo=echo, pool_pre_ping=True, future=True)
        except (sa.exc.NoSuchModuleError, ImportError) as e:  # an unknown dialect or its driver not installed
            raise StoreError(f"results store URL {safe_url(url)!r}: cannot use this database ({e}); give a "
                             "results.sqlite, a run folder or an installed SQLAlchemy dialect") from None
    db = parsed.database
    if db and db != ":memory:":
        Path(db).parent.mkdir(parents=True, exist_ok=True)
    engine = sa.create_engine(url, echo=echo, future=True,
                              connect_args={"timeout": BUSY_TIMEOUT_MS / 1000, "check_same_thread": False})

    @sa.event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        # Let SQLAlchemy (not the sqlite3 module) emit BEGIN, so writers can take the write
        # lock up front (BEGIN IMMEDIATE) instead of failing on a read->write lock upgrade.
        dbapi_conn.isolation_level = None
        cur = dbapi_conn.cursor()
        cur.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
        if db and db != ":memory:":
            cur.execute("PRAGMA journal_mode=WAL")
        cur.execute("PRAGMA synchronous=NORMAL")
        cur.execute("PRAGMA foreign_keys=ON")
        cur.close()

    @sa.event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        immediate = conn.get_execution_options().get("skyloom_immediate", False)
        conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")

    return engine


def _float_or_none(v: Any) -> float | None:
    if v is None:
        return None
    f = float(v)
    return None if math.isnan(f) else f  # NaN is stored as NULL


def _check_id(value: str, what: str) -> None:
    if not value or not isinstance(value, str) or len(value) > 128:
        raise StoreError(f"{what} must be a non-empty string of at most 128 characters, got {value!r}")


def _check_key(value: Any, column: str, table: str) -> None:
    """A key column's value fits its declared length (PostgreSQL enforces it; SQLite would not)."""
    n = KEY_LENGTHS.get(column)
    if n is not None and isinstance(value, str) and len(value) > n:
        raise StoreError(f"{table}.{column} is at most {n} characters, got {len(value)}: {value[:60]!r}...")


def sqlite_file(target: str | os.PathLike) -> Path | None:
    """The SQLite file a store target names (a path, a directory's ``results.sqlite`` or a ``sqlite:///`` URL);
    None for another database's URL or an in-memory one."""
    url = resolve_url(target)
    if not url.startswith("sqlite:///"):
        return None
    db = url[len("sqlite:///"):].split("?", 1)[0]
    return Path(db) if db and db != ":memory:" else None


def open_existing(target: str | os.PathLike, what: str = "results store") -> ResultsStore:
    """The store at ``target`` for reading: a SQLite file (or folder) that does not exist is a user error naming
    it, never a new empty database (``skyloom leaderboard --db typo.sqlite`` creates nothing)."""
    f = sqlite_file(target)
    if f is not None and not f.is_file():
        where = f"{target}" if Path(str(target)) == f else f"{target} ({f})"
        raise StoreError(f"{what} {where} does not exist" + (" (a folder)" if f.is_dir() else "")
                         + "; pass the results.sqlite an evaluation wrote (skyloom eval prints its path)")
    return ResultsStore(target)


def open_store(target: str | os.PathLike | None = None, run: str | os.PathLike | None = None) -> ResultsStore:
    """The store at ``target`` (URL or path), else ``$SKYLOOM_RESULTS_DB``, else ``RUN/results.sqlite``
    (:func:`skyloom.rundir.locate_store`)."""
    if not (target or os.environ.get(RESULTS_DB_ENV) or run):
        raise StoreError("no results store given: pass --db URL (or a path), --runs DIR, or set SKYLOOM_RESULTS_DB")
    return ResultsStore(locate_store(target, out=run)[0])
