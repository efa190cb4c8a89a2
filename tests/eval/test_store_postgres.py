"""The results store on a real PostgreSQL server (tests/pgserver.py), and on SQLite the same way.

What PostgreSQL does differently from SQLite and the store must absorb: it sorts text by its
collation (the test server's is ICU en-US), enforces VARCHAR lengths and 32-bit INTEGER, refuses an
upsert that touches one row twice, races on CREATE TABLE, and aborts a transaction on a deadlock
or serialization failure. Several writer processes at once must lose and duplicate nothing.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
import sqlalchemy as sa

from skyloom.errors import MissingExtraError
from skyloom.eval.results.store import ResultsStore, StoreError, safe_url
from tests.eval.test_store import _fill

REPO = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.postgres


@pytest.fixture(params=["sqlite", "postgres"])
def store_url(request, tmp_path) -> str:
    """The same test on a SQLite file and on a fresh PostgreSQL database."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'results.sqlite'}"
    return request.getfixturevalue("pg_url")


def test_round_trip_upserts_and_types(store_url):
    store = ResultsStore(store_url)
    assert store.engine.dialect.name == store_url.split(":")[0].split("+")[0]
    _fill(store, "e1", suite="smoke")
    _fill(store, "e2", suite="physics")
    store.begin_eval("e1", suite="smoke", created_at="2020-01-01T00:00:00Z")
    _fill(store, "e1", suite="smoke")  # a resumed run writes the same rows again: no duplicates, creation kept
    assert store.get_eval("e1")["created_at"] == "2020-01-01T00:00:00Z"
    assert [e["eval_id"] for e in store.evals()] == ["e1", "e2"] and len(store.items("e1")) == 3
    s = store.scores(suite="smoke")
    assert len(s) == 1 and s[0]["higher_is_better"] is True and s[0]["details"] == {"scale": 1}
    assert s[0]["value"] == 0.3 and isinstance(s[0]["n"], int)
    # 64-bit seeds and steps, long text in every non-key column, NaN as NULL, infinities as they are
    long = "/weights/" + "x" * 3000
    store.begin_eval("big", suite="smoke", step=2**40, checkpoint=long, checkpoint_name="n" * 400,
                     suite_version="v" * 100, git_hash="g" * 80)
    store.put_scores("big", [{"metric": "m", "value": float("nan"), "stderr": float("inf"), "weights": long,
                              "extractor": "e" * 300, "metric_version": "1" * 80}])
    store.put_items("big", [{"item_id": "i", "metric": "m", "value": -float("inf"), "seed": 2**63 - 1,
                             "category": "c" * 300, "prompt": "p" * 5000}])
    e = store.get_eval("big")
    assert e["step"] == 2**40 and e["checkpoint"] == long and len(e["checkpoint_name"]) == 400
    sc = store.scores(eval_ids=["big"])[0]
    assert sc["value"] is None and sc["stderr"] == float("inf") and sc["weights"] == long
    it = store.items("big")[0]
    assert it["seed"] == 2**63 - 1 and it["value"] == -float("inf") and len(it["category"]) == 300
    store.set_status("e1", "complete")
    assert [e["eval_id"] for e in store.evals(status="complete")] == ["e1"]
    store.close()


def test_text_sorts_bytewise_like_sqlite(store_url):
    """Item and eval order is Python's (code point) order on both databases, whatever the server's collation."""
    store = ResultsStore(store_url)
    ids = ["b-s0", "B-s0", "a-s0", "p10-s0", "p1-s0", "_x", "Z", "é-s0", "e-s0"]
    for i, eid in enumerate(["e-b", "e-B", "e-_"]):
        store.begin_eval(eid, suite="s", created_at="2026-12-06T00:00:00Z")
        store.put_items(eid, [{"item_id": x, "metric": "m", "value": float(i)} for x in ids])
    assert [r["item_id"] for r in store.items("e-b")] == sorted(ids)
    assert [e["eval_id"] for e in store.evals()] == sorted(["e-b", "e-B", "e-_"])  # same created_at: by id
    store.close()


def test_a_key_given_twice_in_one_write_counts_once(store_url):
    """PostgreSQL refuses ON CONFLICT DO UPDATE touching one row twice; the store keeps the last row, as SQLite does."""
    store = ResultsStore(store_url)
    store.begin_eval("e", suite="s")
    store.put_items("e", [{"item_id": "a", "metric": "m", "value": 1.0}, {"item_id": "b", "metric": "m", "value": 2.0},
                          {"item_id": "a", "metric": "m", "value": 3.0}])
    assert [(r["item_id"], r["value"]) for r in store.items("e")] == [("a", 3.0), ("b", 2.0)]
    store.put_scores("e", [{"metric": "m", "value": 1.0}, {"metric": "m", "value": 5.0}])
    assert [r["value"] for r in store.scores()] == [5.0]
    store.close()


def test_keys_too_long_are_one_clear_error_on_both(store_url):
    store = ResultsStore(store_url)
    store.begin_eval("e", suite="s")
    with pytest.raises(StoreError, match=r"items.item_id is at most 256 characters"):
        store.put_items("e", [{"item_id": "i" * 257, "metric": "m", "value": 1.0}])
    with pytest.raises(StoreError, match=r"scores.metric is at most 128 characters"):
        store.put_scores("e", [{"metric": "m" * 129, "value": 1.0}])
    with pytest.raises(StoreError, match=r"failures.stage is at most 64 characters"):
        store.add_failure("e", "i", "s" * 65, "why")
    assert store.items("e") == [] and store.scores() == [] and store.failures() == []
    store.close()


def test_a_version_1_store_migrates_on_postgres(pg_url):
    """A store created before ``kind``/``meta_json`` existed gets the columns (with the bytewise collation)."""
    eng = sa.create_engine(pg_url)
    with eng.begin() as c:
        c.exec_driver_sql("CREATE TABLE evals (eval_id VARCHAR(128) PRIMARY KEY, suite VARCHAR(128) NOT NULL, "
                          "suite_version VARCHAR(64), checkpoint TEXT, checkpoint_name VARCHAR(256), "
                          "run_name VARCHAR(256), step INTEGER, created_at VARCHAR(40), git_hash VARCHAR(64), "
                          "config_json TEXT, status VARCHAR(16))")
        c.exec_driver_sql("CREATE TABLE skyloom_meta (key VARCHAR(64) PRIMARY KEY, value TEXT)")
        c.exec_driver_sql("INSERT INTO skyloom_meta VALUES ('schema_version', '1')")
        c.exec_driver_sql("INSERT INTO evals (eval_id, suite, status) VALUES ('old', 's', 'complete')")
    store = ResultsStore(pg_url)
    assert store.get_eval("old")["kind"] == "model"
    with eng.connect() as c:
        assert c.exec_driver_sql("SELECT value FROM skyloom_meta").scalar() == "2"
        assert c.exec_driver_sql("SELECT collation_name FROM information_schema.columns WHERE table_name = 'evals' "
                                 "AND column_name = 'kind'").scalar() == "C"
    eng.dispose()
    store.close()


def test_stamp_changes_when_rows_change(store_url):
    store = ResultsStore(store_url)
    before = store.stamp()
    assert store.stamp() == before  # reading changes nothing
    writer = ResultsStore(store_url)  # another connection, as another process would write
    # what the boards read (an evaluation's status, its scores) changes the stamp at once
    for write in (lambda: writer.begin_eval("e", suite="s"), lambda: writer.set_status("e", "complete"),
                  lambda: writer.put_scores("e", [{"metric": "m", "value": 1.0}]),
                  lambda: writer.put_scores("e", [{"metric": "m", "value": 2.0}])):
        write()
        assert store.stamp() != before
        before = store.stamp()
    # any other write (a per-item value rewritten, same count) within seconds, from the server's counters
    writer.put_items("e", [{"item_id": "i", "metric": "m", "value": 1.0}])
    before = store.stamp()
    writer.put_items("e", [{"item_id": "i", "metric": "m", "value": 5.0}])
    deadline = time.monotonic() + 30  # PostgreSQL 15 reports an idle backend's counters within 10 s
    while store.stamp() == before and time.monotonic() < deadline:
        time.sleep(0.2)
    assert store.stamp() != before
    writer.close()
    store.close()


def test_url_forms_driver_and_password(pg_server, monkeypatch):
    # a plain postgresql:// URL (as psql takes it) uses psycopg 3, the driver skyloom[postgres] installs
    plain = pg_server.url().replace("postgresql+psycopg://", "postgresql://")
    store = ResultsStore(plain)
    assert store.engine.dialect.driver == "psycopg" and store.evals() == []
    store.close()
    assert safe_url("postgresql+psycopg://alice:s3cret@db.example/skyloom") == \
        "postgresql+psycopg://alice:***@db.example/skyloom"
    # a server that is not there: one line naming the store, without the password
    with pytest.raises(StoreError, match="cannot be opened as a database") as e:
        ResultsStore("postgresql+psycopg://alice:s3cret@127.0.0.1:1/none")
    assert "s3cret" not in str(e.value) and "\n" not in str(e.value)
    # the driver not installed: which extra to install
    monkeypatch.setitem(sys.modules, "psycopg", None)
    with pytest.raises(MissingExtraError, match=r"skyloom\[postgres\]"):
        ResultsStore(pg_server.url())


WRITER = textwrap.dedent("""
    import sys, time
    from pathlib import Path
    from skyloom.eval.results.store import ResultsStore
    url, worker, n_evals, n_items, go = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), sys.argv[5]
    while not Path(go).exists():  # start together: the first ones race to create the schema
        time.sleep(0.01)
    store = ResultsStore(url)
    for e in range(n_evals):
        eid = f"w{worker}-e{e}"
        store.begin_eval(eid, suite="stress", checkpoint=f"ck{worker}", checkpoint_name=f"run{worker}/step-{e}",
                         run_name=f"run{worker}", step=e)
        for m in ("clipsim", "flicker"):  # item batches as the runner writes them, one metric at a time
            store.put_items(eid, [{"item_id": f"p{i}-s0", "metric": m, "value": worker + e / 100 + i / 1e4,
                                   "seed": i, "category": "c"} for i in range(n_items)])
        store.put_scores(eid, [{"metric": m, "value": float(worker), "n": n_items} for m in ("clipsim", "flicker")])
        store.add_failure(eid, "p0-s0", "decode", f"worker {worker}")
        # every worker also upserts the same rows of one shared evaluation, in another order each time
        order = list(range(n_items))[::(-1) ** (worker + e)]
        store.begin_eval("shared", suite="stress", status="running")
        store.put_items("shared", [{"item_id": f"p{i}-s0", "metric": "clipsim", "value": float(worker)} for i in order])
        store.set_status(eid, "complete")
    store.close()
""")


@pytest.mark.parametrize("backend", ["sqlite", "postgres"])
def test_concurrent_writer_processes_lose_and_duplicate_nothing(backend, tmp_path, request):
    """Four processes write evaluations at once through ResultsStore, from an empty database (racing on the schema),
    and all upsert the same rows of one shared evaluation: every row arrives once, none is lost."""
    url = f"sqlite:///{tmp_path / 'shared.sqlite'}" if backend == "sqlite" else request.getfixturevalue("pg_url")
    workers, n_evals, n_items = 4, 6, 40
    go = tmp_path / "go"
    procs = [subprocess.Popen([sys.executable, "-c", WRITER, url, str(w), str(n_evals), str(n_items), str(go)],
                              cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for w in range(workers)]
    time.sleep(1.0)
    go.touch()
    outs = [p.communicate(timeout=300) for p in procs]
    assert [p.returncode for p in procs] == [0] * workers, [o[1][-2000:] for o in outs]
    store = ResultsStore(url)
    evals = store.evals()
    ids = [e["eval_id"] for e in evals]
    assert len(ids) == len(set(ids)) == workers * n_evals + 1
    assert len(store.evals(status="complete")) == workers * n_evals
    assert len(store.scores()) == workers * n_evals * 2
    for w in range(workers):
        for e in range(n_evals):
            rows = store.items(f"w{w}-e{e}")
            assert len(rows) == 2 * n_items and {(r["metric"], r["item_id"]) for r in rows} == \
                {(m, f"p{i}-s0") for m in ("clipsim", "flicker") for i in range(n_items)}
            assert all(r["value"] == pytest.approx(w + e / 100 + int(r["item_id"][1:].split("-")[0]) / 1e4)
                       for r in rows)
    shared = store.items("shared")
    assert len(shared) == n_items and len({r["value"] for r in shared}) >= 1  # one row per key, whoever wrote last
    assert len(store.failures()) == workers * n_evals
    with store.engine.connect() as c:  # no duplicate keys at the SQL level either
        assert c.execute(sa.text("SELECT count(*) FROM (SELECT eval_id, item_id, metric FROM items "
                                 "GROUP BY eval_id, item_id, metric HAVING count(*) > 1) d")).scalar() == 0
        assert c.execute(sa.text("SELECT count(*) FROM items")).scalar() == workers * n_evals * 2 * n_items + n_items
    store.close()


def test_a_read_only_role_reads_the_boards(pg_server, pg_url):
    """A dashboard or leaderboard account with SELECT only opens an existing store (nothing to create or migrate)
    and reads it; a write is refused by the server, and says so in one line."""
    from skyloom.eval.results.stats import leaderboard

    with ResultsStore(pg_url) as store:
        _fill(store, "e1")
        _fill(store, "e2", checkpoint="ck2")
        for e in ("e1", "e2"):
            store.set_status(e, "complete")
    db = pg_url.rsplit("/", 1)[1]
    eng = sa.create_engine(pg_url)
    with eng.begin() as c:
        c.exec_driver_sql("CREATE ROLE viewer LOGIN")
        c.exec_driver_sql(f'GRANT CONNECT ON DATABASE "{db}" TO viewer')
        c.exec_driver_sql("GRANT SELECT ON ALL TABLES IN SCHEMA public TO viewer")
    eng.dispose()
    viewer = ResultsStore(pg_url.replace("://skyloom@", "://viewer@"))
    assert [e["eval_id"] for e in viewer.evals()] == ["e1", "e2"]
    assert len(leaderboard(viewer, "smoke", metric="clipsim")) == 2 and viewer.stamp()
    with pytest.raises(StoreError, match="permission denied .* may read the store but not write"):
        viewer.begin_eval("e3", suite="smoke")
    viewer.close()
