"""The dashboard in a real browser: Debian's headless Chromium driven by Playwright.

The app runs on a free local port with the fixture world; screenshots go to ``test-artifacts/``
(and the compare view to ``docs/img/dashboard-compare.png`` for the README).
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from tests.dashboards.conftest import open_view

pytestmark = pytest.mark.browser

DOCS_IMG = Path(__file__).resolve().parents[2] / "docs" / "img"
SYNC_TOL = 0.1  # seconds
VIDEOS = "Array.from(document.querySelectorAll('#cmp-body video'))"


@pytest.fixture(scope="module")
def server(dash):
    from skyloom.dashboards import create_app, serve_in_thread

    with serve_in_thread(create_app(dash)) as url:
        yield url


def times(page) -> list[float]:
    return page.evaluate(f"{VIDEOS}.map(v => v.currentTime)")


def wait_settled(page) -> None:
    page.wait_for_function(f"{VIDEOS}.every(v => !v.seeking && v.readyState >= 2)", timeout=10000)


def test_leaderboard_renders_sorts_filters(page, server, artifacts_dir):
    open_view(page, server, "leaderboard")
    rows = page.locator("#lb-table tbody tr")
    assert rows.count() == 3
    names = page.locator("#lb-table tbody tr td:nth-child(3)").all_inner_texts()
    assert set(names[:2]) == {"run-a@40", "run-b@40"} and names[2] == "run-a@0"  # ranked by clipsim
    # 6 items and 2 comparisons at 0.05/2: the exact test cannot separate even step 0 ("too few items"), so all tie
    assert page.locator("#lb-table tbody tr.tied").count() == 3
    assert "Bonferroni over 2 comparison(s)" in page.locator("#lb-body").inner_text()
    assert page.locator("#lb-version option").count() == 1  # the version picker: one version in this store
    assert "version" in page.locator("#lb-version-note").inner_text()
    assert page.locator(".chart svg").count() == 4  # one bar chart per metric (3) and a radar
    assert page.locator(".chart svg .radar-series").count() == 3  # one polygon per checkpoint
    page.click("#lb-table th[data-key='m:fvd']")  # sort by FVD, ascending
    first = page.locator("#lb-table tbody tr").first.get_attribute("data-eval")
    assert first in ("smoke-a40", "smoke-b40")
    page.click("#lb-table th[data-key='m:fvd']")  # descending: the worst FVD first
    assert page.locator("#lb-table tbody tr").first.get_attribute("data-eval") == "smoke-a0"
    page.fill("#lb-filter", "run-b")
    assert rows.count() == 1
    page.fill("#lb-filter", "")
    page.screenshot(path=str(artifacts_dir / "dashboard-leaderboard.png"), full_page=True)


def test_compare_plays_videos_in_sync(page, server, artifacts_dir):
    open_view(page, server, "compare")
    page.wait_for_function(f"{VIDEOS}.length === 12 && {VIDEOS}.every(v => v.readyState >= 2)", timeout=15000)
    assert page.locator("#cmp-paired-table tbody tr").count() == 1
    # 2 checked checkpoints x 6 prompts; one control drives them all
    page.click("#sync-play")
    page.wait_for_function(f"{VIDEOS}.every(v => !v.paused && v.currentTime > 0.8)", timeout=10000)
    t = times(page)
    assert max(t) - min(t) < SYNC_TOL, t
    # scrub while playing
    page.eval_on_selector("#sync-scrub", "(r) => { r.value = '3.2'; r.dispatchEvent(new Event('input')); }")
    wait_settled(page)
    t = times(page)
    assert max(t) - min(t) < SYNC_TOL and min(t) >= 3.2 - SYNC_TOL, t
    page.wait_for_timeout(400)
    t = times(page)
    assert max(t) - min(t) < SYNC_TOL and min(t) > 3.3, t  # still playing, still together
    page.click("#sync-play")  # pause
    wait_settled(page)
    assert page.evaluate(f"{VIDEOS}.every(v => v.paused)")
    t = times(page)
    assert max(t) - min(t) < SYNC_TOL, t
    # scrub while paused
    page.eval_on_selector("#sync-scrub", "(r) => { r.value = '1.5'; r.dispatchEvent(new Event('input')); }")
    wait_settled(page)
    t = times(page)
    assert all(abs(x - 1.5) < SYNC_TOL for x in t), t
    assert "two spheres collide </script><b>x</b>" in page.inner_text("#cmp-body")  # shown as text, not markup
    page.screenshot(path=str(artifacts_dir / "dashboard-compare.png"), full_page=False)


def test_compare_selection_changes_columns_and_paired_rows(page, server, artifacts_dir):
    open_view(page, server, "compare")
    page.check("#cmp-evals input[value='smoke-a0']")
    page.wait_for_function("document.querySelectorAll('#cmp-paired-table tbody tr').length === 2", timeout=10000)
    assert page.locator(".prompt-row").first.locator("video").count() == 3
    verdicts = page.locator("#cmp-paired-table tbody tr td:last-child").all_inner_texts()
    assert any("tie" in v for v in verdicts) and any("better" in v for v in verdicts)
    page.eval_on_selector("#sync-scrub", "(r) => { r.value = '2.5'; r.dispatchEvent(new Event('input')); }")
    wait_settled(page)
    page.screenshot(path=str(artifacts_dir / "dashboard-compare-3.png"))
    if not (DOCS_IMG / "dashboard-compare.png").exists() or os.environ.get("SKYLOOM_UPDATE_DOCS_IMG") == "1":
        DOCS_IMG.mkdir(parents=True, exist_ok=True)  # the README's picture (refresh: SKYLOOM_UPDATE_DOCS_IMG=1)
        shutil.copy(artifacts_dir / "dashboard-compare-3.png", DOCS_IMG / "dashboard-compare.png")
    page.select_option("#cmp-cat", "collision")
    assert page.locator(".prompt-row").count() == 2
    page.click("#sync-play")
    page.wait_for_function(f"{VIDEOS}.every(v => !v.paused)", timeout=10000)
    page.click("#tabs button[data-view='leaderboard']")  # leaving the view pauses the player
    page.wait_for_function(f"{VIDEOS}.every(v => v.paused)", timeout=10000)
    page.click("#tabs button[data-view='compare']")
    for box in page.locator("#cmp-evals input").all():
        box.uncheck()
    assert "Pick at least one checkpoint" in page.inner_text("#cmp-body")


def test_training_plots_every_run(page, server, artifacts_dir):
    open_view(page, server, "training")
    loss = page.locator(".chart", has=page.locator("svg[aria-label='train/loss']"))
    assert loss.locator("path").count() == 2  # run-a and run-b on one plot
    assert page.locator("svg[aria-label='eval/smoke/clipsim']").count() == 1
    page.uncheck(".tr-run >> nth=1")
    assert page.locator(".chart", has=page.locator("svg[aria-label='train/loss']")).locator("path").count() == 1
    page.screenshot(path=str(artifacts_dir / "dashboard-training.png"), full_page=True)


def test_corpus_view_filters(page, server, artifacts_dir):
    open_view(page, server, "corpus")
    cards = page.locator(".clip")
    assert cards.count() == 6
    page.select_option("#corpus-source", "licensed")
    assert cards.count() == 2
    assert set(cards.evaluate_all("cs => cs.map(c => c.dataset.source)")) == {"licensed"}
    assert "Jane Doe, CC BY 4.0" in cards.first.inner_text()
    page.select_option("#corpus-source", "")
    page.select_option("#corpus-license", "CC0-1.0")
    assert cards.count() == 4
    page.select_option("#corpus-license", "")
    page.select_option("#corpus-qname", "aesthetic")
    page.fill("#corpus-qmin", "0.35")
    assert sorted(cards.evaluate_all("cs => cs.map(c => c.dataset.id)")) == ["clip-3", "clip-4", "clip-5"]
    page.fill("#corpus-q", "red square")
    assert sorted(cards.evaluate_all("cs => cs.map(c => c.dataset.id)")) == ["clip-3", "clip-5"]
    assert page.inner_text("#corpus-count") == "2 of 6 clips match"
    page.screenshot(path=str(artifacts_dir / "dashboard-corpus.png"), full_page=True)


def test_static_report_works_offline(browser, dash, tmp_path, artifacts_dir):
    from skyloom.dashboards import build_report

    out = tmp_path / "report.html"
    build_report(dash, out)
    ctx = browser.new_context(viewport={"width": 1280, "height": 900})
    requests: list[str] = []
    ctx.route("**/*", lambda route: (requests.append(route.request.url), route.continue_()))
    pg = ctx.new_page()
    errors: list[str] = []
    pg.on("pageerror", lambda e: errors.append(str(e)))
    for view in ("leaderboard", "compare", "training", "corpus"):
        pg.goto(f"{out.as_uri()}#{view}")
        pg.wait_for_selector(f"#view-{view}[data-ready='1']", timeout=15000)
    assert pg.locator(".clip").count() == 6
    pg.goto(f"{out.as_uri()}#compare")
    pg.wait_for_selector("#view-compare[data-ready='1']")
    pg.wait_for_function(f"{VIDEOS}.length === 12 && {VIDEOS}.every(v => v.readyState >= 2)", timeout=15000)
    pg.click("#sync-play")
    pg.wait_for_function(f"{VIDEOS}.every(v => !v.paused && v.currentTime > 0.5)", timeout=10000)
    t = times(pg)
    assert max(t) - min(t) < SYNC_TOL, t
    ext = pg.evaluate("Array.from(document.querySelectorAll('[src],[href]'))"
                      ".map(e => e.getAttribute('src') || e.getAttribute('href'))"
                      ".filter(u => !u.startsWith('data:') && !u.startsWith('#'))")
    assert ext == []
    assert {urlsplit(u).scheme for u in requests} <= {"file", "data"}, requests
    assert "paired" in pg.inner_text("#cmp-paired").lower()
    pg.screenshot(path=str(artifacts_dir / "report-compare.png"))
    ctx.close()
    assert errors == []


def test_reload_shows_new_runs(browser, tmp_path):
    from skyloom.dashboards import Dashboard, create_app, serve_in_thread
    from skyloom.rundir import RunDir

    RunDir.create(tmp_path / "runs" / "first").log_metrics(0, loss=1.0)
    with serve_in_thread(create_app(Dashboard(tmp_path / "runs"))) as url:
        pg = browser.new_page()
        open_view(pg, url, "training")
        assert pg.locator(".tr-run").count() == 1
        second = RunDir.create(tmp_path / "runs" / "second")  # a run that starts while the page is open
        second.log_metrics(0, loss=2.0)
        second.log_metrics(5, loss=1.5)
        pg.click("#reload")
        pg.wait_for_selector("#view-training[data-ready='1']")
        assert pg.locator(".tr-run").count() == 2
        pg.close()


def test_hostile_strings_are_shown_as_text(browser, tmp_path):
    """Names, prompts and even a string stored in a float column never become markup."""
    import sqlite3

    from skyloom.dashboards import Dashboard, create_app, serve_in_thread
    from skyloom.eval.results.store import ResultsStore
    from skyloom.rundir import RunDir

    evil = '<img src=x onerror="window.__xss=1">'
    run = RunDir.create(tmp_path / "runs" / "r")
    with ResultsStore(run.root / "results.sqlite") as st:
        for i in range(2):
            st.begin_eval(f"e{i}", suite="s", checkpoint=f"ck{i}", checkpoint_name=evil + str(i), run_name=evil,
                          step=i, status="complete")
            st.put_items(f"e{i}", [{"item_id": "p", "metric": "m", "value": 0.5 + i, "prompt": evil, "category": evil}])
            st.put_scores(f"e{i}", [{"metric": "m", "value": 0.5 + i, "n": 1, "higher_is_better": True}])
        st.add_failure("e0", evil, "decode", evil)
    with sqlite3.connect(run.root / "results.sqlite") as con:  # SQLite keeps whatever type it is given
        con.execute("UPDATE scores SET ci_low = ?, ci_high = ? WHERE eval_id = 'e0'", (evil, evil))
    with serve_in_thread(create_app(Dashboard(tmp_path / "runs"))) as url:
        pg = browser.new_page()
        for view in ("leaderboard", "compare", "training"):
            open_view(pg, url, view)
        assert evil in pg.inner_text("#view-compare")
        pg.click("#tabs button[data-view='leaderboard']")
        pg.click("details.failures summary")
        assert pg.locator("details.failures tbody tr").count() == 1 and evil in pg.inner_text("details.failures")
        assert pg.evaluate("window.__xss === undefined && document.querySelectorAll('main img').length === 0")
        pg.close()


def test_compare_selection_is_a_shareable_link(page, server):
    page.goto(f"{server}#compare?suite=smoke&evals=smoke-a0,smoke-b40")
    page.wait_for_selector("#view-compare[data-ready='1']", timeout=15000)
    checked = page.locator("#cmp-evals input:checked").evaluate_all("cs => cs.map(c => c.value)")
    assert sorted(checked) == ["smoke-a0", "smoke-b40"]
    assert page.locator(".prompt-row").first.locator(".label").all_inner_texts() == ["run-a@0", "run-b@40"]
    assert page.locator("#cmp-paired-table tbody td").first.inner_text() == "run-a@0"  # the baseline
    page.check("#cmp-evals input[value='smoke-a40']")
    page.wait_for_function("location.hash.includes('smoke-a40')")
    want = "#compare?suite=smoke&evals=smoke-a0,smoke-b40,smoke-a40"
    assert page.evaluate("decodeURIComponent(location.hash)") == want


def test_leaderboard_problems_are_shown(browser, tmp_path):
    """A suite whose primary metric has no score says so on the page instead of vanishing silently."""
    from skyloom.dashboards import Dashboard, create_app, serve_in_thread
    from skyloom.eval.results.store import ResultsStore
    from skyloom.rundir import RunDir

    run = RunDir.create(tmp_path / "runs" / "r")
    with ResultsStore(run.root / "results.sqlite") as st:
        st.begin_eval("e", suite="s", checkpoint="ck", status="complete", config={"suite": {"primary_metric": "fvd"}})
        st.put_scores("e", [{"metric": "clipsim", "value": 0.3, "higher_is_better": True}])
    with serve_in_thread(create_app(Dashboard(tmp_path / "runs"))) as url:
        pg = browser.new_page()
        open_view(pg, url, "leaderboard")
        text = pg.inner_text("#view-leaderboard")
        assert "fvd" in text and "No evaluations found" in text
        pg.close()


def test_corpus_view_loads_more_rows_than_max_clips(page, world, artifacts_dir):
    from skyloom.dashboards import Dashboard, create_app, serve_in_thread

    with serve_in_thread(create_app(Dashboard(world["runs"], corpora=[world["corpus"]], max_clips=4))) as url:
        open_view(page, url, "corpus")
        cards = page.locator(".clip")
        assert cards.count() == 4 and "Showing the first 4 clips" in page.inner_text("#corpus-body")
        page.click("#corpus-more")  # the next rows come from api/corpus/clips
        page.wait_for_function("document.querySelectorAll('.clip').length === 6", timeout=10000)
        assert sorted(cards.evaluate_all("cs => cs.map(c => c.dataset.id)")) == [f"clip-{i}" for i in range(6)]
        assert page.locator("#corpus-more").count() == 0 and "Showing the first" not in page.inner_text("#corpus-body")
