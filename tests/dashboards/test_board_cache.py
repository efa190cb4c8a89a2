"""The dashboard's boards are computed once per state of a store (issue 29) and recomputed when it changes."""

from __future__ import annotations

import pytest


def _store_with(path, n: int):
    from skyloom.eval.results.store import ResultsStore

    st = ResultsStore(path)
    for e in range(n):
        st.begin_eval(f"e{e}", suite="s", suite_version="1+a", checkpoint=f"/c{e}", status="complete",
                      created_at=f"2026-12-01T00:00:{e:02d}Z", config={"suite": {"primary_metric": "m"}})
        st.put_items(f"e{e}", [{"item_id": f"i{i}", "metric": "m", "value": 0.1 * e + 0.01 * i} for i in range(6)])
        st.put_scores(f"e{e}", [{"metric": "m", "value": 0.1 * e + 0.025, "n": 6, "higher_is_better": True}])
    return st


@pytest.mark.parametrize("via", ["db", "runs", pytest.param("postgres", marks=pytest.mark.postgres)])
def test_api_leaderboard_is_cached_per_store_stamp(tmp_path, via, request):
    from fastapi.testclient import TestClient

    from skyloom.dashboards import Dashboard, create_app
    from skyloom.eval.results.store import ResultsStore
    from skyloom.rundir import RunDir

    if via in ("db", "postgres"):  # a SQLite file, or a server store (ResultsStore.stamp)
        db = tmp_path / "results.sqlite" if via == "db" else request.getfixturevalue("pg_url")
        _store_with(db, 3).close()
        dash = Dashboard(tmp_path / "runs", db=str(db))
    else:  # two runs' stores, merged by the dashboard
        for k in range(2):
            run = RunDir.create(tmp_path / "runs" / f"r{k}")
            _store_with(run.results_store, 2 + k).close()
        db = tmp_path / "runs" / "r1" / "results.sqlite"
        dash = Dashboard(tmp_path / "runs")
    cache = dash._boards
    with TestClient(create_app(dash), base_url="http://localhost") as c:
        first = c.get("/api/leaderboard").json()
        misses = cache.misses
        assert c.get("/api/leaderboard").json() == first  # answered from the cache
        assert cache.misses == misses and cache.hits >= 1
        with ResultsStore(db) as st:  # an evaluation finishes: the next request shows it, while its writer still runs
            st.begin_eval("new", suite="s", suite_version="1+a", checkpoint="/new", status="complete",
                          created_at="2026-12-02T00:00:00Z")
            st.put_scores("new", [{"metric": "m", "value": 9.0, "n": 6, "higher_is_better": True}])
            after = c.get("/api/leaderboard").json()
    assert cache.misses > misses
    assert after["suites"][0]["rows"][0]["eval_id"] == "new"
    assert [r["eval_id"] for r in after["suites"][0]["rows"][1:]] == [r["eval_id"] for r in first["suites"][0]["rows"]]
    dash.close()


def test_paired_is_cached_per_store_stamp(tmp_path):
    from skyloom.dashboards import Dashboard
    from skyloom.eval.results.store import ResultsStore

    db = tmp_path / "results.sqlite"
    _store_with(db, 2).close()
    dash = Dashboard(tmp_path / "runs", db=str(db))
    first = dash.paired(0, "e0", "e1", "m")
    assert dash.paired(0, "e0", "e1", "m") == first and dash._boards.hits == 1
    with ResultsStore(db) as st:  # e1 rescored: the comparison follows
        st.put_items("e1", [{"item_id": f"i{i}", "metric": "m", "value": -1.0} for i in range(6)])
    again = dash.paired(0, "e0", "e1", "m")
    assert again["mean_b"] == -1.0 and first["mean_b"] != -1.0
    dash.close()
