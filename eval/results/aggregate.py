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
  values, with the calibration rows' means over the same items, as :mod:`skyloom.eval.results.boards`
  normalises them, in one scan of the items (``GROUP BY``). The database sums in its own order, so a
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
    >>> cats, means = category_means(store, ["e1"], ["m"])
    >>> cats, means[("e1", "m", "colour")]
    (['colour'], (2.0, None, None))
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
    cols: list[Any] = [t.c[c] for c in _SCORE_COLS]  # columns, and a labelled CASE below
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


def _calibration_items(store: ResultsStore, eval_id: str, metrics: Sequence[str]) -> dict[tuple[str, str, str], float]:
    """(metric, category, item id) -> value of one (calibration) evaluation's items with a value."""
    t = items_table
    stmt = sa.select(t.c.metric, _category(t.c.category), t.c.item_id, t.c.value).where(
        t.c.eval_id == eval_id, t.c.metric.in_(list(metrics)), t.c.value.is_not(None))
    return {(m, c, i): float(v) for m, c, i, v in _rows(store, stmt)}


def _mean(xs: list[float]) -> float:
    return sum(xs) / len(xs)  # left to right, as boards have always averaged items


KEY_SEP = "\x1f"  # joins metric, category and item id into one key (a control character no id holds)


def category_means(store: ResultsStore, eval_ids: Sequence[str], metrics: Sequence[str], low: str | None = None,
                   high: str | None = None
                   ) -> tuple[list[str], dict[tuple[str, str, str], tuple[float, float | None, float | None]]]:
    """The categories of the items with a value of ``eval_ids`` (any metric, sorted), and
    (eval id, metric, category) -> (mean, low's mean, high's mean) of the per-item values of ``metrics``.

    Without ``low``/``high`` the mean is over every item of the evaluation with a value; with both, over the
    items that the evaluation and the two calibration rows ``low`` and ``high`` all scored, in the same
    category (the same items on the three sides, as :func:`skyloom.eval.results.boards.attach` normalises);
    a group with no such item is absent.

    One scan of the entries' items (a ``GROUP BY`` per chunk of ids) gives every group's count and mean, and
    the count and mean over the calibration rows' common items (membership of ``metric|category|item`` in
    their list, an ``IN`` the database answers from a temporary index). A group holding every common item
    (the usual case) takes the calibration means over all of them, computed here from the two rows' items;
    a group missing some (a partial entry) has its items fetched and averaged here, exactly as before.
    """
    i = items_table
    cat = _category(i.c.category)
    sep = sa.literal(KEY_SEP)
    cal: dict[tuple[str, str], list[tuple[str, float, float]]] = {}  # (metric, cat) -> [(item, low, high)]
    if low is not None and high is not None and metrics:
        lo_items, hi_items = _calibration_items(store, low, metrics), _calibration_items(store, high, metrics)
        for (m, c, item), v in sorted(lo_items.items()):
            if (m, c, item) in hi_items:
                cal.setdefault((m, c), []).append((item, v, hi_items[(m, c, item)]))
    keys = [KEY_SEP.join((m, c, item)) for (m, c), its in cal.items() for item, _, _ in its]
    cols = [i.c.eval_id, i.c.metric, cat.label("cat"), sa.func.count(), sa.func.avg(i.c.value)]
    if keys:
        in_cal = (i.c.metric + sep + cat + sep + i.c.item_id).in_(keys)
        picked = sa.case((sa.and_(in_cal, i.c.metric.in_(list(metrics))), i.c.value), else_=sa.null())
        cols += [sa.func.count(picked), sa.func.avg(picked)]
    cats: set[str] = set()
    out: dict[tuple[str, str, str], tuple[float, float | None, float | None]] = {}
    partial: dict[str, set[tuple[str, str]]] = {}  # eval id -> (metric, cat) groups missing common items
    wanted = set(metrics)
    for chunk in _chunks(list(dict.fromkeys(eval_ids))):
        stmt = (sa.select(*cols).where(i.c.value.is_not(None), i.c.eval_id.in_(chunk))
                .group_by(i.c.eval_id, i.c.metric, cat))
        for row in _rows(store, stmt):
            e, m, c, _n, mean = row[:5]
            cats.add(c)
            if m not in wanted:
                continue
            if low is None or high is None:
                out[(e, m, c)] = (float(mean), None, None)
                continue
            common = cal.get((m, c), [])
            n_in = int(row[5]) if keys else 0
            if n_in == 0:
                continue
            if n_in == len(common):  # every common item: the calibration means over all of them
                out[(e, m, c)] = (float(row[6]), _mean([lv for _, lv, _ in common]), _mean([hv for _, _, hv in common]))
            else:
                partial.setdefault(e, set()).add((m, c))
    for e, groups in partial.items():  # entries that miss common items: their own items, averaged here
        mine = _calibration_items(store, e, sorted({m for m, _ in groups}))
        for m, c in groups:
            both = [(mine[(m, c, item)], lv, hv) for item, lv, hv in cal[(m, c)] if (m, c, item) in mine]
            out[(e, m, c)] = (_mean([x for x, _, _ in both]), _mean([lv for _, lv, _ in both]),
                              _mean([hv for _, _, hv in both]))
    return sorted(cats), out


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


__all__ = ["BoardCache", "category_means", "eval_rows", "failure_counts", "failure_rows",
           "item_values", "score_rows", "sqlite_stamp", "store_stamp", "suite_config"]
