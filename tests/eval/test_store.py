"""Results store: round trip, upserts (resume without duplicates), transactions, WAL and
several processes writing at once."""

from __future__ import annotations

import multiprocessing as mp

import pytest
import sqlalchemy as sa

from skyloom.eval.results.store import ResultsStore, StoreError, resolve_url


def _fill(store: ResultsStore, eval_id: str, suite: str = "smoke", n_items: int = 3, checkpoint: str = "ck") -> None:
    store.begin_eval(eval_id, suite=suite, suite_version="1", checkpoint=checkpoint, checkpoint_name=checkpoint,
                     run_name="run", step=0, git_hash="abc", config={"suite": {"name": suite}})
    store.put_scores(eval_id, [{"metric": "clipsim", "value": 0.3, "stderr": 0.01, "ci_low": 0.28, "ci_high": 0.32,
                                "n": n_items, "higher_is_better": True, "metric_version": "1",
                                "extractor": "indomain:x", "weights": "sha", "details": {"scale": 1}}])
    store.put_items(eval_id, [{"item_id": f"p{i}-s0", "metric": "clipsim", "value": 0.3 + i / 100,
                               "prompt": f"prompt {i}", "seed": 0, "category": "motion",
                               "video_path": f"videos/p{i}-s0.mp4"} for i in range(n_items)])


def test_round_trip_and_filters(tmp_path):
    store = ResultsStore(tmp_path / "results.sqlite")
    _fill(store, "e1", suite="smoke")
    _fill(store, "e2", suite="physics")
    store.add_failure("e1", "p9-s0", "decode", "VideoError: corrupt")
    assert [e["eval_id"] for e in store.evals()] == ["e1", "e2"]
    e1 = store.evals(suite="smoke")[0]
    assert e1["config"] == {"suite": {"name": "smoke"}} and e1["status"] == "running" and e1["step"] == 0
    s = store.scores(suite="smoke")
    assert len(s) == 1 and s[0]["eval_id"] == "e1" and s[0]["higher_is_better"] is True
    assert s[0]["details"] == {"scale": 1} and s[0]["extractor"] == "indomain:x"
    assert [r["item_id"] for r in store.items("e1")] == ["p0-s0", "p1-s0", "p2-s0"]
    assert store.items("e1", metric="nope") == []
    assert store.item_ids("e2", "clipsim") == {"p0-s0", "p1-s0", "p2-s0"}
    f = store.failures("e1")
    assert len(f) == 1 and f[0]["stage"] == "decode" and "corrupt" in f[0]["reason"]
    assert store.failures("e2") == []
    store.set_status("e1", "complete")
    assert store.get_eval("e1")["status"] == "complete"


def test_upserts_resume_without_duplicates(tmp_path):
    store = ResultsStore(tmp_path)  # a directory -> DIR/results.sqlite
    assert (tmp_path / "results.sqlite").exists()
    _fill(store, "e1")
    created = store.get_eval("e1")["created_at"]
    _fill(store, "e1")  # a resumed run writes the same rows again
    store.put_scores("e1", [{"metric": "clipsim", "value": 0.5}])
    store.add_failure("e1", "x", "load", "first")
    store.add_failure("e1", "x", "load", "second")
    assert len(store.evals()) == 1 and store.get_eval("e1")["created_at"] == created
    assert len(store.scores()) == 1 and store.scores()[0]["value"] == 0.5
    assert len(store.items("e1")) == 3
    assert [f["reason"] for f in store.failures()] == ["second"]
    store.clear_failures("e1")
    assert store.failures() == []
    # a rescoring forgets only its metric's old failures (not the generation or decode ones)
    for item, stage in (("a", "generate"), ("b", "decode"), ("c", "score:clipsim"), ("*", "metric:fvd")):
        store.add_failure("e1", item, stage, "why")
    store.clear_failures("e1", stages=["score:clipsim", "metric:clipsim", "reference:clipsim"])
    assert sorted(f["stage"] for f in store.failures("e1")) == ["decode", "generate", "metric:fvd"]


def test_wal_and_nan(tmp_path):
    store = ResultsStore(tmp_path / "r.sqlite")
    with store.engine.connect() as c:
        assert c.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert c.exec_driver_sql("PRAGMA busy_timeout").scalar() >= 1000
    store.begin_eval("e", suite="s")
    store.put_scores("e", [{"metric": "m", "value": float("nan")}])
    assert store.scores()[0]["value"] is None


def test_transaction_rolls_back(tmp_path):
    store = ResultsStore(tmp_path / "r.sqlite")
    store.begin_eval("keep", suite="s")

    def half_then_fail(conn):
        conn.execute(sa.text("INSERT INTO evals (eval_id, suite) VALUES ('ghost', 's')"))
        raise RuntimeError("crash mid-transaction")

    with pytest.raises(RuntimeError):
        store._write(half_then_fail)
    assert [e["eval_id"] for e in store.evals()] == ["keep"]


def test_bad_input_is_a_clear_error(tmp_path):
    store = ResultsStore(tmp_path / "r.sqlite")
    store.begin_eval("e", suite="s")
    with pytest.raises(StoreError, match="unknown field.*'valeu'"):
        store.put_scores("e", [{"metric": "m", "valeu": 1.0}])
    with pytest.raises(StoreError, match="status 'done' is not one of"):
        store.set_status("e", "done")
    with pytest.raises(StoreError, match="no evaluation 'zzz'.*known: e"):
        store.get_eval("zzz")
    with pytest.raises(StoreError, match="needs 'item_id'"):
        store.put_items("e", [{"metric": "m", "value": 1}])
    with pytest.raises(StoreError, match="not a valid SQLAlchemy URL"):
        ResultsStore("not a url://x")
    assert store.scores() == [] and store.items("e") == []


def test_resolve_url(tmp_path):
    assert resolve_url("postgresql+psycopg://u@h/db") == "postgresql+psycopg://u@h/db"
    assert resolve_url(tmp_path) == f"sqlite:///{tmp_path.resolve()}/results.sqlite"
    assert resolve_url(tmp_path / "x.db") == f"sqlite:///{(tmp_path / 'x.db').resolve()}"


def _writer(url: str, worker: int, n_evals: int, q) -> None:
    try:
        store = ResultsStore(url)
        for j in range(n_evals):
            _fill(store, f"w{worker}-e{j}", n_items=5, checkpoint=f"ck{worker}")
            store.add_failure(f"w{worker}-e{j}", "bad", "decode", "x")
            store.set_status(f"w{worker}-e{j}", "complete")
        store.close()
        q.put(None)
    except BaseException as e:  # noqa: BLE001 - a forked writer reports any failure to the parent, not die silently
        q.put(repr(e))


def test_concurrent_writers_lose_nothing(tmp_path):
    url = f"sqlite:///{tmp_path / 'shared.sqlite'}"
    ctx = mp.get_context("fork")
    q = ctx.Queue()
    workers, n_evals = 4, 12
    procs = [ctx.Process(target=_writer, args=(url, w, n_evals, q)) for w in range(workers)]
    for p in procs:
        p.start()
    errors = [q.get(timeout=120) for _ in procs]
    for p in procs:
        p.join(timeout=60)
    assert errors == [None] * workers
    store = ResultsStore(url)
    assert len(store.evals(status="complete")) == workers * n_evals
    assert len(store.scores()) == workers * n_evals
    assert sum(len(store.items(e["eval_id"])) for e in store.evals()) == workers * n_evals * 5
    assert len(store.failures()) == workers * n_evals


def test_video_paths_are_stored_relative_to_the_stores_folder(tmp_path):
    """A video inside the store's folder is stored relative to it (the folder can move); one outside stays absolute;
    a relative one is taken as relative to the folder already; ``video_file`` resolves each from the folder."""
    store = ResultsStore(tmp_path / "runs" / "results.sqlite")
    inside = tmp_path / "runs" / "external" / "smoke" / "e1" / "videos" / "a-s0.mp4"
    outside = tmp_path / "elsewhere" / "b-s0.mp4"
    store.begin_eval("e1", suite="smoke", checkpoint="x")
    store.put_items("e1", [{"item_id": "a-s0", "metric": "m", "value": 1.0, "video_path": str(inside)},
                           {"item_id": "b-s0", "metric": "m", "value": 1.0, "video_path": str(outside)},
                           {"item_id": "c-s0", "metric": "m", "value": 1.0,
                            "video_path": "eval/smoke/e1/videos/c.mp4"}])
    stored = {r["item_id"]: r["video_path"] for r in store.items("e1")}
    assert stored == {"a-s0": "external/smoke/e1/videos/a-s0.mp4", "b-s0": str(outside),
                      "c-s0": "eval/smoke/e1/videos/c.mp4"}
    assert store.video_file(stored["a-s0"]) == tmp_path.resolve() / "runs" / "external" / "smoke" / "e1" / "videos" / \
        "a-s0.mp4"
    assert store.video_file(stored["b-s0"]) == outside
    store.close()


def test_open_existing_never_creates_a_database(tmp_path):
    from skyloom.eval.results.store import open_existing

    for target in (tmp_path / "typo.sqlite", tmp_path / "no" / "dir" / "x.sqlite", f"sqlite:///{tmp_path}/u.db"):
        with pytest.raises(StoreError, match="does not exist"):
            open_existing(target)
    assert list(tmp_path.iterdir()) == []
    with pytest.raises(StoreError, match="does not exist"):
        open_existing(tmp_path)  # a folder without a results.sqlite
    ResultsStore(tmp_path / "results.sqlite").close()
    open_existing(tmp_path / "results.sqlite").close()
    open_existing(tmp_path).close()  # a folder: its results.sqlite


def test_the_generic_upsert_keeps_the_same_rules(tmp_path, monkeypatch):
    """A database without ON CONFLICT (delete + insert): a key given twice counts once, the last row wins, and a
    resumed evaluation keeps its creation time, as with SQLite's and PostgreSQL's upserts."""
    store = ResultsStore(tmp_path / "r.sqlite")
    monkeypatch.setattr(store.engine.dialect, "name", "otherdb")
    store.begin_eval("e", suite="s", created_at="2020-01-01T00:00:00Z")
    store.begin_eval("e", suite="s2")  # resumed: no creation time given
    assert store.get_eval("e")["created_at"] == "2020-01-01T00:00:00Z" and store.get_eval("e")["suite"] == "s2"
    store.put_items("e", [{"item_id": "b", "metric": "m", "value": 1.0}, {"item_id": "a", "metric": "m", "value": 2.0},
                          {"item_id": "b", "metric": "m", "value": 3.0}])
    store.put_items("e", [{"item_id": "a", "metric": "m", "value": 4.0}])
    assert [(r["item_id"], r["value"]) for r in store.items("e")] == [("a", 4.0), ("b", 3.0)]
    store.close()
