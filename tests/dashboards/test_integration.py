"""The dashboard over what ``skyloom.eval.harness.runner`` really writes (fake pipeline from tests/eval/fakes.py)."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="module")
def evaluated(tmp_path_factory):
    from skyloom.eval.harness.runner import EvalConfig, run_eval
    from tests.eval import fakes

    tmp = tmp_path_factory.mktemp("dash-eval")
    fakes.register_fake_extractor()
    suite = fakes.write_suite(tmp / "fake.yaml", reference=fakes.make_reference_corpus(tmp / "ref"))
    cks = [fakes.make_checkpoint(tmp / "runs", "r1", 0, noise=60.0), fakes.make_checkpoint(tmp / "runs", "r1", 100)]
    cfg = EvalConfig(suite=str(suite), checkpoints=tuple(map(str, cks)), cache_dir=str(tmp / "cache"),
                     pipeline_loader=fakes.LOADER, n_boot=200, set_boot=10)
    res = run_eval(cfg, metrics=fakes.FAKE_METRICS)
    return tmp, res


def test_dashboard_shows_runner_results_and_videos(evaluated):
    from fastapi.testclient import TestClient

    from skyloom.dashboards import Dashboard, create_app

    tmp, res = evaluated
    with TestClient(create_app(Dashboard(tmp / "runs")), base_url="http://localhost") as c:
        (table,) = c.get("/api/leaderboard").json()["suites"]
        ids = [r["eval_id"] for r in table["rows"]]
        assert sorted(ids) == sorted(e.eval_id for e in res.evals)
        cmp = c.get("/api/compare", params={"suite": table["suite"], "evals": ",".join(ids)}).json()
        assert cmp["items"]
        for it in cmp["items"]:
            for eid in ids:
                cell = it["videos"][eid]
                assert cell["url"], cell
                r = c.get("/" + cell["url"])
                assert r.status_code == 200 and r.content[4:8] == b"ftyp"  # an mp4 the runner wrote
        m = table["primary_metric"]
        p = c.get("/api/paired", params={"a": ids[0], "b": ids[1], "metric": m}).json()
        assert "error" not in p and p["metric"] == m
