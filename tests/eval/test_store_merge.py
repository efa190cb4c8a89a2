"""Store merge (issue 29): ``ATTACH`` + ``INSERT ... SELECT`` between SQLite files and the portable batched
upsert both give every row of every store, later stores winning on a shared key, as the row-by-row copy did."""

from __future__ import annotations

import sqlite3

import pytest

from skyloom.eval.results import merge
from skyloom.eval.results.store import TABLES, ResultsStore
from tests.eval.test_board_sql import random_store


def _dump(store: ResultsStore) -> dict[str, list[tuple]]:
    out = {}
    with store.engine.connect() as conn:
        for name, t in TABLES.items():
            out[name] = sorted(tuple(r) for r in conn.execute(t.select()))
    return out


def _reference_merge(stores: list[ResultsStore]) -> dict[str, list[tuple]]:
    """What a merge must hold: per table, each key's row from the last store that has it."""
    rows: dict[str, dict[tuple, tuple]] = {n: {} for n in TABLES}
    for st in stores:
        for name, t in TABLES.items():
            keys = [i for i, c in enumerate(t.columns) if c.primary_key]
            for r in _dump(st)[name]:
                rows[name][tuple(r[i] for i in keys)] = r
    return {n: sorted(v.values()) for n, v in rows.items()}


@pytest.mark.parametrize("path", ["attach", "bulk"])
def test_merge_holds_every_row_and_later_stores_win(tmp_path, monkeypatch, path):
    a = random_store(tmp_path / "a.sqlite", 1)
    b = random_store(tmp_path / "b.sqlite", 2)  # the same eval ids as a, other values: b's rows win
    c = random_store(tmp_path / "c.sqlite", 5)
    want = _reference_merge([a, b, c])
    if path == "bulk":
        monkeypatch.setattr(merge, "_attachable", lambda dest, src: False)
        monkeypatch.setattr(merge, "BATCH", 7)  # several batches per table
    dest = ResultsStore(tmp_path / "m.sqlite")
    merge.merge_into(dest, [a, b, c])
    assert _dump(dest) == want
    assert sum(len(v) for v in want.values()) > 100
    mem = ResultsStore.merged([a.url, b.url, c.url])  # the in-memory merge of --runs commands
    assert _dump(mem) == want
    for s in (a, b, c, dest, mem):
        s.close()


def test_merge_reads_a_schema_1_store(tmp_path):
    """A store written before ``kind``/``meta_json`` existed merges with those columns empty (read as model)."""
    old = tmp_path / "old.sqlite"
    st = ResultsStore(old)
    st.begin_eval("e1", suite="s", status="complete")
    st.close()
    con = sqlite3.connect(old)
    con.executescript("CREATE TABLE evals2 AS SELECT eval_id, suite, suite_version, checkpoint, checkpoint_name, "
                      "run_name, step, created_at, git_hash, config_json, status FROM evals; DROP TABLE evals; "
                      "ALTER TABLE evals2 RENAME TO evals;")
    con.commit()
    con.close()
    dest = ResultsStore(tmp_path / "m.sqlite")
    src = ResultsStore.__new__(ResultsStore)  # not opened through ResultsStore: no migration of the source
    src.url = f"sqlite:///{old}"
    merge._attach_merge(dest, src)
    (e,) = dest.evals()
    assert e["eval_id"] == "e1" and e["kind"] == "model" and e["meta"] == {}
    dest.close()


def test_merge_of_a_store_into_itself_changes_nothing(tmp_path):
    a = random_store(tmp_path / "a.sqlite", 4)
    before = _dump(a)
    a.copy_into(a)
    assert _dump(a) == before
    a.close()


@pytest.mark.postgres
def test_merge_between_sqlite_and_postgres(tmp_path, pg_url):
    """The portable path: SQLite stores into a PostgreSQL store, and that back into SQLite, row for row."""
    a = random_store(tmp_path / "a.sqlite", 1)
    b = random_store(tmp_path / "b.sqlite", 2)
    want = _reference_merge([a, b])
    pg = ResultsStore(pg_url)
    merge.merge_into(pg, [a, b])
    assert _dump(pg) == want
    back = ResultsStore(tmp_path / "back.sqlite")
    pg.copy_into(back)
    assert _dump(back) == want
    for s in (a, b, pg, back):
        s.close()
