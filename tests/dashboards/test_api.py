"""The dashboard's JSON API against the fixture world, checked against eval.stats and the files."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.dashboards.fixtures import EVALS, PROMPTS, SUITE


def test_page_is_served_without_network_assets(client):
    r = client.get("/")
    assert r.status_code == 200
    html = r.text
    assert "<script>" in html and "skyloom" in html
    assert 'src="http' not in html and 'href="http' not in html and "//cdn" not in html


def test_overview_lists_runs_store_suites_and_corpus(client, world):
    ov = client.get("/api/overview").json()
    assert sorted(r["name"] for r in ov["runs"]) == ["run-a", "run-b", "run-empty"]
    assert ov["suites"] == [SUITE]
    assert ov["corpora"][0]["path"] == str(world["corpus"])
    assert ov["warnings"] == []


def test_leaderboard_matches_eval_stats(client, world):
    from skyloom.eval.results.stats import leaderboard
    from skyloom.eval.results.store import ResultsStore

    lb = client.get("/api/leaderboard").json()
    (table,) = lb["suites"]
    assert table["suite"] == SUITE and table["primary_metric"] == "clipsim"
    with ResultsStore(world["run-a"] / "results.sqlite") as store:
        ref = leaderboard(store, SUITE)
        stored = {(s["eval_id"], s["metric"]): s for s in store.scores(suite=SUITE)}
    assert [r["eval_id"] for r in table["rows"]] == [r["eval_id"] for r in ref]
    assert [r["tie_group"] for r in table["rows"]] == [r["tie_group"] for r in ref]
    # step 0 is worse on every one of the 6 items, but the board makes 2 comparisons at 0.05/2 and the exact
    # sign-flip test cannot go below 2/64 on 6 items: "too few items", so no tie group is split
    groups = {r["eval_id"]: r["tie_group"] for r in table["rows"]}
    assert groups["smoke-a40"] == groups["smoke-b40"] == groups["smoke-a0"]
    assert table["rows"][-1]["eval_id"] == "smoke-a0" and table["rows"][-1]["tie_verdict"] == "too few items"
    assert "Bonferroni over 2 comparison(s)" in table["correction"]
    assert table["suite_version"] == ref[0]["suite_version"] and table["default"] is True
    assert [v["entries"] for v in table["versions"]] == [3] and table["other_versions"] == []
    for r in table["rows"]:
        for m in ("clipsim", "fvd"):
            s = stored[(r["eval_id"], m)]
            assert r["scores"][m]["value"] == pytest.approx(s["value"])
            assert r["scores"][m]["ci_low"] == pytest.approx(s["ci_low"])
            assert r["scores"][m]["ci_high"] == pytest.approx(s["ci_high"])
    assert {m["name"]: m["higher_is_better"] for m in table["metrics"]} == {"clipsim": True, "fvd": False,
                                                                          "flicker": True}
    assert table["metrics"][0]["name"] == "clipsim"  # the primary metric first


def test_compare_gives_each_prompt_its_videos_and_scores(client, world):
    ids = ["smoke-a0", "smoke-b40"]
    c = client.get("/api/compare", params={"source": 0, "suite": SUITE, "evals": ",".join(ids)}).json()
    assert [e["eval_id"] for e in c["evals"]] == ids
    assert sorted(it["item_id"] for it in c["items"]) == sorted(p[0] for p in PROMPTS)
    values = {e[0]: dict(zip((p[0] for p in PROMPTS), e[4])) for e in EVALS}
    for it in c["items"]:
        assert it["prompt"] == next(p[1] for p in PROMPTS if p[0] == it["item_id"])
        assert it["seed"] == 7
        for eid in ids:
            cell = it["videos"][eid]
            assert cell["scores"]["clipsim"] == pytest.approx(values[eid][it["item_id"]])
            r = client.get("/" + cell["url"])
            assert r.status_code == 200 and r.headers["content-type"] == "video/mp4"
            run = "run-a" if eid.startswith("smoke-a") else "run-b"
            assert r.content == (world[run] / "eval" / SUITE / eid / "videos" / f"{it['item_id']}.mp4").read_bytes()


def test_video_endpoint_supports_range_requests_for_seeking(client):
    c = client.get("/api/compare", params={"suite": SUITE, "evals": "smoke-a0"}).json()
    url = "/" + c["items"][0]["videos"]["smoke-a0"]["url"]
    r = client.get(url, headers={"Range": "bytes=0-99"})
    assert r.status_code == 206 and len(r.content) == 100


def test_compare_unknown_eval_or_wrong_suite_is_404(client):
    r = client.get("/api/compare", params={"suite": SUITE, "evals": "nope"})
    assert r.status_code == 404 and "nope" in r.json()["detail"]
    assert client.get("/api/compare", params={"suite": "other", "evals": "smoke-a0"}).status_code == 404
    assert client.get("/api/compare", params={"source": 5, "suite": SUITE, "evals": "smoke-a0"}).status_code == 404


def test_paired_is_eval_stats_paired_compare(client, world):
    from skyloom.eval.results.stats import paired_compare
    from skyloom.eval.results.store import ResultsStore

    got = client.get("/api/paired", params={"a": "smoke-a0", "b": "smoke-a40", "metric": "clipsim"}).json()
    with ResultsStore(world["run-a"] / "results.sqlite") as store:
        ref = paired_compare(store, "smoke-a0", "smoke-a40", "clipsim").to_dict()
    label = got.pop("verdict_label")
    assert got["verdict"] == ref["verdict"] == "b"  # the page and `skyloom compare` give one verdict, in one vocabulary
    assert got.pop("suite_version_a") == got.pop("suite_version_b")  # the page names both sides' versions
    assert got == pytest.approx(json.loads(json.dumps(ref)))
    # one comparison at 0.05, 6 items all better: p = 2/64 < 0.05 and the CI that inverts the test excludes 0
    assert got["ci_low"] > 0 and label == "run-a@40 better" and got["p_value"] == pytest.approx(2 / 64)
    vals = {e[0]: e[4] for e in EVALS}
    assert got["diff"] == pytest.approx(sum(vals["smoke-a40"]) / 6 - sum(vals["smoke-a0"]) / 6)  # mean of b - a
    assert got["better"] == "b" and got["significant"]
    bad = client.get("/api/paired", params={"a": "smoke-a0", "b": "smoke-a40", "metric": "nope"}).json()
    assert "nope" in bad["error"]


def test_training_curves_from_metrics_and_store(client):
    runs = {r["name"]: r for r in client.get("/api/training").json()["runs"]}
    a, b, empty = runs["run-a"], runs["run-b"], runs["run-empty"]
    assert a["checkpoints"] == [0, 40] and empty["checkpoints"] == [] and empty["series"] == {}
    loss = a["series"]["train"]["loss"]
    assert [p[0] for p in loss] == list(range(0, 41, 2))
    assert loss[0][1] == pytest.approx(1.0) and loss[-1][1] == pytest.approx(1 / 5)
    # run-b's torn last line (step 42) is ignored, not an error
    assert b["series"]["train"]["loss"][-1][0] == 40
    # eval metrics over steps: from metrics.jsonl and from the results store
    assert a["series"]["eval"]["val_loss"] == [[40, 0.5]]
    assert [p[0] for p in a["series"]["eval"]["smoke/clipsim"]] == [0, 40]
    assert b["series"]["eval"]["smoke/clipsim"][0][1] == pytest.approx(0.305)


def test_corpus_payload_and_summary(client, world):
    (c,) = client.get("/api/corpus").json()["corpora"]
    assert c["error"] is None and len(c["clips"]) == 6
    s = c["summary"]
    assert s["licenses"] == {"CC0-1.0": 4, "CC-BY-4.0": 2}
    assert s["source_kinds"] == {"synthetic": 4, "licensed": 2}
    assert s["resolutions"] == {"32x32": 4, "48x32": 2}
    assert sum(s["duration_s"]["counts"]) == 6 and sum(s["caption_words"]["counts"]) == 6
    assert s["quality_names"] == ["aesthetic"]
    lic = next(x for x in c["clips"] if x["id"] == "clip-4")
    assert lic["attribution"] == "Jane Doe, CC BY 4.0" and lic["parent_id"] == "src-0" and lic["shot"] == [4.0, 5.0]
    r = client.get("/" + lic["url"])
    assert r.status_code == 200 and r.content == (world["corpus"] / "clips" / "clip-4.mp4").read_bytes()


def test_max_clips_truncates_rows_but_not_summary(world):
    from skyloom.dashboards import Dashboard

    (c,) = Dashboard(world["runs"], corpora=[world["corpus"]], max_clips=2).corpus()["corpora"]
    assert len(c["clips"]) == 2 and c["truncated"] and c["summary"]["clips"] == 6


def test_nan_scores_become_null(tmp_path):
    from fastapi.testclient import TestClient

    from skyloom.dashboards import Dashboard, create_app
    from skyloom.eval.results.store import ResultsStore
    from skyloom.rundir import RunDir

    run = RunDir.create(tmp_path / "runs" / "r")
    with ResultsStore(run.root / "results.sqlite") as s:
        s.begin_eval("e", suite="x", checkpoint=str(run.checkpoint_dir(0)), status="complete")
        s.put_scores("e", [{"metric": "m", "value": 1.0, "ci_low": float("nan"), "higher_is_better": True}])
    with TestClient(create_app(Dashboard(tmp_path / "runs")), base_url="http://localhost") as c:
        lb = c.get("/api/leaderboard").json()
    assert lb["suites"][0]["rows"][0]["scores"]["m"]["ci_low"] is None


def test_stores_of_several_runs_share_one_leaderboard(tmp_path):
    """Each run evaluated into its own results.sqlite: one merged leaderboard, videos of both runs."""
    from skyloom.dashboards import Dashboard
    from skyloom.eval.results.store import ResultsStore
    from skyloom.rundir import RunDir
    from skyloom.video import write_video
    from tests.conftest import moving_square_video

    for k, name in enumerate(("r1", "r2")):
        run = RunDir.create(tmp_path / "runs" / name)
        with run.begin_checkpoint(10) as d:
            (d / "x").write_text("")
        video = run.eval_dir / "s" / f"e-{name}" / "videos" / "p.mp4"
        write_video(video, moving_square_video(T=4), fps=8)
        with ResultsStore(run.root / "results.sqlite") as st:
            st.begin_eval(f"e-{name}", suite="s", checkpoint=str(run.checkpoint_dir(10)), run_name=name, step=10,
                          status="complete")
            st.put_items(f"e-{name}", [{"item_id": "p", "metric": "m", "value": 0.1 + k, "video_path": str(video)}])
            st.put_scores(f"e-{name}", [{"metric": "m", "value": 0.1 + k, "higher_is_better": True}])
    d = Dashboard(tmp_path / "runs")
    (table,) = d.leaderboard()["suites"]
    assert [r["eval_id"] for r in table["rows"]] == ["e-r2", "e-r1"]
    cmp = d.compare(table["source_id"], "s", ["e-r1", "e-r2"])
    assert [cmp["items"][0]["videos"][e]["url"] for e in ("e-r1", "e-r2")] == [
        "files/0/r1/eval/s/e-r1/videos/p.mp4", "files/0/r2/eval/s/e-r2/videos/p.mp4"]
    # the merge is cached, and rebuilt when a run's store changes
    store = d._merge_cache.get([f"sqlite:///{tmp_path / 'runs' / n / 'results.sqlite'}" for n in ("r1", "r2")])
    assert d._merge_cache.get([f"sqlite:///{tmp_path / 'runs' / n / 'results.sqlite'}" for n in ("r1", "r2")]) is store
    with ResultsStore(tmp_path / "runs" / "r2" / "results.sqlite") as st:
        st.begin_eval("e-new", suite="s", checkpoint="elsewhere", status="complete")
        st.put_scores("e-new", [{"metric": "m", "value": 5.0, "higher_is_better": True}])
    assert [r["eval_id"] for r in d.leaderboard()["suites"][0]["rows"]] == ["e-new", "e-r2", "e-r1"]
    d.close()


def test_the_dashboard_has_no_verdict_rule_of_its_own():
    """Verdicts and their words come from eval (skyloom.eval.results.stats), in its vocabulary only."""
    import inspect

    import skyloom.dashboards.results as dash_results
    from skyloom.eval.results.inference import HypothesisTest
    from skyloom.eval.results.stats import verdict, verdict_label

    assert not hasattr(dash_results, "verdict")
    src = inspect.getsource(dash_results) + (Path(dash_results.__file__).parent / "static" / "app.js").read_text()
    for word in ('"different"', '"unknown"', "direction unknown"):
        assert word not in src, word
    assert [verdict_label(v, "x", "y") for v in ("a", "b", "tie", "too few items", None)] == [
        "x better", "y better", "tie (p >= alpha; the CI includes 0)", "too few items (no result could reach alpha)",
        "no verdict (no test or no direction)"]
    t = HypothesisTest(p_value=0.01, ci_low=0.01, ci_high=0.09, alpha=0.05, min_p=0.002, method="x")
    assert verdict(t, False) == "a"  # B higher on a lower-is-better metric


def test_paired_verdicts_of_the_fixture_agree_with_their_cis(client):
    for a, b in (("smoke-a0", "smoke-a40"), ("smoke-a40", "smoke-b40"), ("smoke-b40", "smoke-a0")):
        for metric in ("clipsim", "flicker"):
            r = client.get("/api/paired", params={"a": a, "b": b, "metric": metric}).json()
            if "error" in r:
                continue
            assert r["verdict"] in ("a", "b", "tie", "too few items", None) and r["verdict_label"], r
            if r["p_value"] is None:
                assert r["verdict"] is None and r["ci_low"] is None
                continue
            excludes = r["ci_low"] is not None and r["ci_high"] is not None and (r["ci_low"] > 0 or r["ci_high"] < 0)
            assert (r["verdict"] in ("a", "b")) is excludes is (r["p_value"] < 0.05), r


def test_every_suite_version_is_a_table_with_a_picker(tmp_path):
    """Entries on another suite version are shown on their own table (newest first), not dropped with a
    "not shown" note; each table names its version and the others with their entry counts."""
    from fastapi.testclient import TestClient

    from skyloom.dashboards import Dashboard, create_app
    from skyloom.eval.results.store import ResultsStore
    from skyloom.rundir import RunDir

    run = RunDir.create(tmp_path / "runs" / "r")
    with ResultsStore(run.root / "results.sqlite") as s:
        for eid, version, ck, when in (("o1", "1+old", "a", "2026-01-01"), ("o2", "1+old", "b", "2026-01-02"),
                                       ("o3", "1+old", "c", "2026-01-03"), ("n1", "1+new", "a", "2026-02-01")):
            s.begin_eval(eid, suite="x", suite_version=version, checkpoint=ck, status="complete",
                         created_at=when + "T00:00:00Z")
            s.put_scores(eid, [{"metric": "m", "value": 1.0, "higher_is_better": True}])
    with TestClient(create_app(Dashboard(tmp_path / "runs")), base_url="http://localhost") as cl:
        tables = cl.get("/api/leaderboard").json()["suites"]
    assert [(t["suite_version"], t["default"], len(t["rows"])) for t in tables] == [("1+new", True, 1),
                                                                                   ("1+old", False, 3)]
    assert tables[0]["other_versions"] == ["v1+old (3 entries)"] and tables[0]["note"] == ""
    assert {v["version"]: v["entries"] for v in tables[1]["versions"]} == {"1+new": 1, "1+old": 3}
    js = (Path(__file__).resolve().parents[2] / "dashboards" / "static" / "app.js").read_text()
    assert 'id="lb-version"' in js  # the page's version picker
