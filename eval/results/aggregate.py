"""What boards read from the results store, in a few set-at-a-time queries.

A board of a thousand evaluations used to read every evaluation's rows one at a time as Python
dicts (each ``config_json`` decoded several times, every per-item row of every entry, four
queries per tie comparison). The queries here give the same board with the database doing the
work, written in SQLAlchemy Core with portable SQL only (``GROUP BY``, ``COUNT``, ``AVG``,
``COALESCE``, ``NULLIF``, joins), so they run on SQLite and PostgreSQL alike:

- :func:`eval_rows`: the ``evals`` rows of a suite without ``config_json`` (the suite as recorded
  is read once, from the latest evaluation, by :func:`suite_config`);
- :func:`score_rows`: every score of a set of evaluations, ``details`` decoded only where asked;
- :func:`failure_counts`, :func:`failure_rows`: failures counted per evaluation in SQL, the last
  few listed per evaluation in one query;
- :func:`item_values`: the per-item values of one metric for many evaluations in one query (the
  tie walk of :func:`skyloom.eval.results.stats.leaderboard` tests pairs from these);
- :func:`category_means`: per evaluation, metric and prompt category, the mean of the per-item
  values, with the calibration rows' means over the same items (``JOIN`` on the item), as
  :mod:`skyloom.eval.results.boards` normalises them. The database sums in its own order, so a
  mean may differ from a left-to-right Python sum in the last bits (relative 1e-15);
- :func:`store_stamp` and :class:`BoardCache`: a fingerprint of a store's contents, and a cache of
  boards keyed on it (the dashboard answers ``/api/leaderboard`` from it until a store changes).

Example:
    >>> import tempfile, os
    >>> from skyloom.eval.results.store import ResultsStore
    >>> store = ResultsStore(os.path.join(tempfile.mkdtemp(), "results.sqlite"))
    >>> store.begin_eval("e1", suite="smoke", status="complete")
    >>> store.put_items("e1", [{"item_id": "a", "metric": "m", "value": 1.0, "category": "colour"},
    ...                        {"item_id": "b", "metric": "m", "value": 3.0, "category": "colour"}])
    2
    >>> category_means(store, ["e1"], ["m"])[("e1", "m", "colour")]
    (2.0, None, None)
"""

from __future__ import annotations

import json
import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable, Iterable, Sequence
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
import sqlalchemy as sa

from skyloom.eval.results.store import (
    ResultsStore,
    evals_table,
    failures_table,
    items_table,
    scores_table,
    sqlite_file,
)

T = TypeVar("T")

IN_CHUNK = 500  # ids per IN (...) list: far under every database's bound-parameter limit
_EVAL_COLS = ("eval_id", "suite", "suite_version", "checkpoint", "checkpoint_name", "run_name", "step",
              "created_at", "status", "kind", "meta_json")
_SCORE_COLS = ("eval_id", "metric", "value", "stderr", "ci_low", "ci_high", "n", "higher_is_better",
               "metric_version", "extractor", "weights")


def _chunks(ids: Sequence[str]) -> Iterable[list[str]]:
    for i in range(0, len(ids), IN_CHUNK):
        yield list(ids[i:i + IN_CHUNK])


def _rows(store: ResultsStore, stmt: sa.Executable) -> list[sa.Row]:
    with store.engine.connect() as conn:
        return list(conn.execute(stmt))


def eval_rows(store: ResultsStore, suite: str | None = None) -> list[dict[str, Any]]:
    """``evals`` rows (oldest first, as :meth:`ResultsStore.evals`), without ``config_json``; ``meta`` decoded
    and ``kind`` defaulted as :meth:`ResultsStore.evals` does."""
    t = evals_table
    stmt = sa.select(*[t.c[c] for c in _EVAL_COLS]).order_by(t.c.created_at, t.c.eval_id)
    if suite is not None:
        stmt = stmt.where(t.c.suite == suite)
    out = []
    for r in _rows(store, stmt):
        d = dict(r._mapping)
        meta = d.pop("meta_json")
        d["meta"] = json.loads(meta) if meta else {}
        d["kind"] = d.get("kind") or "model"
        out.append(d)
    return out


def suite_config(store: ResultsStore, suite: str, suite_version: str | None = None,
                 want: Callable[[dict[str, Any]], bool] = bool) -> dict[str, Any]:
    """The ``suite`` section of the config recorded by the latest evaluation of ``suite`` (and of
    ``suite_version`` if given) for which ``want(section)`` holds; ``{}`` if none. Configs are decoded
    newest first, one at a time, until one is wanted."""
    t = evals_table
    stmt = sa.select(t.c.config_json).where(t.c.suite == suite).order_by(t.c.created_at.desc(), t.c.eval_id.desc())
    if suite_version is not None:
        stmt = stmt.where(t.c.suite_version == suite_version)
    with store.engine.connect() as conn:
        for (cfg,) in conn.execute(stmt):
            s = (json.loads(cfg) if cfg else {}).get("suite") or {}
            if want(s):
                return s
    return {}


def score_rows(store: ResultsStore, eval_ids: Sequence[str], details_for: str | None = None) -> list[dict[str, Any]]:
    """``scores`` rows of ``eval_ids`` (by eval id, metric); ``details`` decoded for metric ``details_for`` only
    (``{}`` elsewhere): the board needs the coverage of its ranking metric, not every score's details."""
    t = scores_table
    cols = [t.c[c] for c in _SCORE_COLS]
    if details_for is not None:
        cols.append(sa.case((t.c.metric == details_for, t.c.details_json), else_=sa.null()).label("details_json"))
    out: list[dict[str, Any]] = []
    for chunk in _chunks(list(dict.fromkeys(eval_ids))):
        stmt = sa.select(*cols).where(t.c.eval_id.in_(chunk))
        for r in _rows(store, stmt):
            d = dict(r._mapping)
            det = d.pop("details_json", None)
            d["details"] = json.loads(det) if det else {}
            out.append(d)
    out.sort(key=lambda d: (d["eval_id"], d["metric"]))
    return out


def failure_counts(store: ResultsStore, eval_ids: Sequence[str] | None = None) -> dict[str, int]:
    """eval id -> number of ``failures`` rows (``GROUP BY``), for ``eval_ids`` or every evaluation."""
    t = failures_table
    stmt = sa.select(t.c.eval_id, sa.func.count()).group_by(t.c.eval_id)
    if eval_ids is None:
        return {e: int(n) for e, n in _rows(store, stmt)}
    out: dict[str, int] = {}
    for chunk in _chunks(list(dict.fromkeys(eval_ids))):
        out.update({e: int(n) for e, n in _rows(store, stmt.where(t.c.eval_id.in_(chunk)))})
    return out


def failure_rows(store: ResultsStore, eval_ids: Sequence[str], last: int) -> dict[str, list[dict[str, Any]]]:
    """eval id -> its last ``last`` failures (ordered as :meth:`ResultsStore.failures`), in one query per chunk."""
    t = failures_table
    out: dict[str, list[dict[str, Any]]] = {}
    for chunk in _chunks(list(dict.fromkeys(eval_ids))):
        stmt = sa.select(t).where(t.c.eval_id.in_(chunk)).order_by(t.c.created_at, t.c.item_id)
        for r in _rows(store, stmt):
            out.setdefault(r.eval_id, []).append(dict(r._mapping))
    return {e: fs[-last:] for e, fs in out.items()}


def item_values(store: ResultsStore, metric: str, eval_ids: Sequence[str]
                ) -> dict[str, tuple[list[str], np.ndarray, list[int | None]]]:
    """eval id -> (item ids sorted, values (n,) float64, seeds) of ``metric``, rows with a value only:
    every entry's per-item values in one query (per chunk of ids), for the paired tests of a board."""
    t = items_table
    out: dict[str, tuple[list[str], np.ndarray, list[int | None]]] = {}
    for chunk in _chunks(list(dict.fromkeys(eval_ids))):
        stmt = (sa.select(t.c.eval_id, t.c.item_id, t.c.value, t.c.seed)
                .where(t.c.metric == metric, t.c.value.is_not(None), t.c.eval_id.in_(chunk)))
        by_eval: dict[str, list[tuple[str, float, int | None]]] = {}
        for e, item, v, seed in _rows(store, stmt):
            by_eval.setdefault(e, []).append((item, v, seed))
        for e, part in by_eval.items():
            part.sort(key=lambda r: r[0])  # Python's order of item ids (a database's collation may differ)
            out[e] = ([r[0] for r in part], np.fromiter((r[1] for r in part), np.float64, len(part)),
                      [r[2] for r in part])
    return out


def _category(col: sa.ColumnElement) -> sa.ColumnElement:
    """An item's category as boards group it: its ``category``, else ``general`` (an empty one counts as none)."""
    return sa.func.coalesce(sa.func.nullif(col, ""), "general")


def categories(store: ResultsStore, eval_ids: Sequence[str]) -> list[str]:
    """The categories of the items with a value of ``eval_ids`` (any metric), sorted."""
    t = items_table
    out: set[str] = set()
    for chunk in _chunks(list(dict.fromkeys(eval_ids))):
        stmt = sa.select(_category(t.c.category)).where(t.c.value.is_not(None), t.c.eval_id.in_(chunk)).distinct()
        out.update(c for (c,) in _rows(store, stmt))
    return sorted(out)


def category_means(store: ResultsStore, eval_ids: Sequence[str], metrics: Sequence[str], low: str | None = None,
                   high: str | None = None) -> dict[tuple[str, str, str], tuple[float, float | None, float | None]]:
    """(eval id, metric, category) -> (mean, low's mean, high's mean) of the per-item values.

    Without ``low``/``high`` the mean is over every item of the evaluation with a value; with both, over the
    items that the evaluation and the two calibration rows ``low`` and ``high`` all scored, in the same
    category (the same items on the three sides, as :func:`skyloom.eval.results.boards.attach` normalises);
    a group with no such item is absent. One ``GROUP BY`` (with two joins on the item) per chunk of ids.
    """
    i = items_table.alias("i")
    cat = _category(i.c.category)
    out: dict[tuple[str, str, str], tuple[float, float | None, float | None]] = {}
    if not metrics:
        return out
    for chunk in _chunks(list(dict.fromkeys(eval_ids))):
        where = [i.c.value.is_not(None), i.c.metric.in_(list(metrics)), i.c.eval_id.in_(chunk)]
        if low is None or high is None:
            stmt = sa.select(i.c.eval_id, i.c.metric, cat.label("cat"), sa.func.avg(i.c.value)).where(*where)
            for e, m, c, v in _rows(store, stmt.group_by(i.c.eval_id, i.c.metric, cat)):
                out[(e, m, c)] = (float(v), None, None)
            continue
        lo, hi = items_table.alias("lo"), items_table.alias("hi")
        joined = i
        for side, eid in ((lo, low), (hi, high)):
            joined = joined.join(side, sa.and_(side.c.eval_id == eid, side.c.item_id == i.c.item_id,
                                               side.c.metric == i.c.metric, side.c.value.is_not(None),
                                               _category(side.c.category) == cat))
        stmt = (sa.select(i.c.eval_id, i.c.metric, cat.label("cat"), sa.func.avg(i.c.value), sa.func.avg(lo.c.value),
                          sa.func.avg(hi.c.value)).select_from(joined).where(*where)
                .group_by(i.c.eval_id, i.c.metric, cat))
        for e, m, c, v, vl, vh in _rows(store, stmt):
            out[(e, m, c)] = (float(v), float(vl), float(vh))
    return out


# -- cache ---------------------------------------------------------------------------------------
def sqlite_stamp(path: str | Path) -> tuple:
    """Size and modification time (ns) of a SQLite database file, and of its WAL when that holds frames.

    Every commit changes one of them (WAL frames are appended; a checkpoint rewrites the database). An empty
    WAL is left out: SQLite creates and deletes it as connections open and close, without any change.
    """
    out: list[Any] = [str(path)]
    for p in (Path(path), Path(f"{path}-wal")):
        try:
            st = p.stat()
        except OSError:  # absent (a missing WAL is the same state as an empty one)
            out += [None, 0]
            continue
        out += [st.st_mtime_ns, st.st_size] if st.st_size else [None, 0]
    return tuple(out)


def store_stamp(store: ResultsStore) -> tuple:
    """A fingerprint that changes when the store's contents do.

    A SQLite file: :func:`sqlite_stamp`. A database server: :meth:`ResultsStore.stamp` where the store has
    it (PostgreSQL: the server's per-table change counters), else row counts of the four tables, the newest
    ``created_at`` per status and the sum of the scores (an evaluation that finishes or is rescored changes it).
    """
    f = sqlite_file(store.url)
    if f is not None:
        return sqlite_stamp(f)
    own = getattr(store, "stamp", None)
    if own is not None:
        return (store.url, own())
    e, s = evals_table, scores_table
    with store.engine.connect() as conn:
        ev = tuple(conn.execute(sa.select(e.c.status, sa.func.count(), sa.func.max(e.c.created_at))
                                .group_by(e.c.status).order_by(e.c.status)))
        sc = tuple(conn.execute(sa.select(sa.func.count(), sa.func.sum(s.c.value))).one())
        it = conn.execute(sa.select(sa.func.count()).select_from(items_table)).scalar()
        fa = conn.execute(sa.select(sa.func.count()).select_from(failures_table)).scalar()
    return (store.url, tuple(tuple(r) for r in ev), sc, it, fa)


class BoardCache:
    """Values computed from a store (boards, paired comparisons), kept until the store's :func:`store_stamp`
    changes; at most ``size`` entries, least recently used dropped first. Thread-safe."""

    def __init__(self, size: int = 64) -> None:
        self.size = size
        self._lock = threading.Lock()
        self._data: OrderedDict[Hashable, tuple[tuple, Any]] = OrderedDict()
        self.hits = self.misses = 0

    def get(self, store: ResultsStore, key: Hashable, compute: Callable[[], T]) -> T:
        """``compute()``, or its value from an earlier call with the same ``key`` on an unchanged store."""
        stamp = store_stamp(store)
        full = (store.url, key)
        with self._lock:
            hit = self._data.get(full)
            if hit is not None and hit[0] == stamp:
                self._data.move_to_end(full)
                self.hits += 1
                return hit[1]
        value = compute()
        with self._lock:
            self.misses += 1
            self._data[full] = (stamp, value)
            self._data.move_to_end(full)
            while len(self._data) > self.size:
                self._data.popitem(last=False)
        return value

    def clear(self) -> None:
        with self._lock:
            self._data.clear()


__all__ = ["BoardCache", "categories", "category_means", "eval_rows", "failure_counts", "failure_rows",
           "item_values", "score_rows", "sqlite_stamp", "store_stamp", "suite_config"]
