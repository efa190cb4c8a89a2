"""Issue 19 in a real browser: the synced player's controls, readable charts and verdicts, live
refresh, the Host allow list against a DNS-rebinding name, the clip inspector drawing the
simulator's ground truth, the simulator beside the model in Compare, and the prompt box."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest

from tests.dashboards.conftest import launch_chromium, open_view

pytestmark = pytest.mark.browser

VIDEOS = "Array.from(document.querySelectorAll('#cmp-body video'))"
SYNC_TOL = 0.1


@pytest.fixture(scope="module")
def server(dash):
    from skyloom.dashboards import create_app, serve_in_thread

    with serve_in_thread(create_app(dash)) as url:
        yield url


@pytest.fixture(scope="module")
def sim_server(sim_dash):
    from skyloom.dashboards import create_app, serve_in_thread

    with serve_in_thread(create_app(sim_dash)) as url:
        yield url


def times(page, sel=VIDEOS) -> list[float]:
    return page.evaluate(f"{sel}.map(v => v.currentTime)")


def settle(page, sel=VIDEOS) -> None:
    page.wait_for_function(f"{sel}.every(v => !v.seeking && v.readyState >= 2)", timeout=15000)


# -- synced player ------------------------------------------------------------------------------------------
def test_player_steps_frames_changes_speed_and_loops(page, server, artifacts_dir):
    open_view(page, server, "compare")
    page.wait_for_function(f"{VIDEOS}.length === 12 && {VIDEOS}.every(v => v.readyState >= 2)", timeout=20000)
    page.evaluate("document.activeElement && document.activeElement.blur()")
    for _ in range(3):
        page.keyboard.press("ArrowRight")  # the fixture's videos are 8 fps: frame 3 is [0.375, 0.5) s
    settle(page)
    assert all(abs(t - 3.5 / 8) < 0.01 for t in times(page)), times(page)
    assert "frame 4 / 40" in page.inner_text("#sync-time")
    page.keyboard.press("ArrowLeft")
    settle(page)
    assert all(abs(t - 2.5 / 8) < 0.01 for t in times(page)), times(page)
    page.click("#sync-next")  # the buttons do the same
    settle(page)
    assert all(abs(t - 3.5 / 8) < 0.01 for t in times(page))
    page.select_option("#sync-speed", "2")
    assert page.evaluate(f"{VIDEOS}.every(v => v.playbackRate === 2)")
    page.click("#sync-play")
    page.wait_for_function(f"{VIDEOS}.every(v => !v.paused && v.playbackRate === 2 && v.currentTime > 1)",
                           timeout=15000)
    t = times(page)
    assert max(t) - min(t) < SYNC_TOL * 2, t
    page.click("#sync-play")  # pause
    page.select_option("#sync-speed", "1")
    page.check("#sync-loop")
    page.eval_on_selector("#sync-scrub", "(r) => { r.value = '4.6'; r.dispatchEvent(new Event('input')); }")
    settle(page)
    page.click("#sync-play")
    # At the end the whole group starts again from 0 and keeps playing.
    page.wait_for_function(f"{VIDEOS}.every(v => !v.paused && v.currentTime > 0.05 && v.currentTime < 2)",
                           timeout=15000)
    t = times(page)
    assert max(t) - min(t) < SYNC_TOL * 2, t
    page.click("#sync-play")
    page.screenshot(path=str(artifacts_dir / "dashboard-player.png"))


def test_paired_verdicts_agree_with_their_cis(page, server):
    open_view(page, server, "compare?suite=smoke&evals=smoke-a0,smoke-a40,smoke-b40")
    page.wait_for_function("document.querySelectorAll('#cmp-paired-table tbody tr').length === 2", timeout=15000)
    for metric in ("clipsim", "fvd", "flicker"):
        page.select_option("#cmp-metric", metric)
        page.wait_for_function(f"document.querySelector('#cmp-paired h3').textContent.endsWith('{metric}')")
        for row in page.locator("#cmp-paired-table tbody tr").all():
            ci = row.locator("td:nth-child(4)").inner_text()
            m = re.match(r"\[(-?[\d.e+-]+), (-?[\d.e+-]+)\]", ci)
            if not m:
                continue
            lo, hi = float(m.group(1)), float(m.group(2))
            verdict = row.locator("td.verdict").inner_text()
            assert ("tie" in verdict) is (lo <= 0 <= hi), (metric, ci, verdict)


# -- charts -------------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def chart_world(tmp_path_factory):
    """Checkpoint names that differ only at the end, long metric names, a constant series at 0.45."""
    from skyloom.eval.results.store import ResultsStore
    from skyloom.rundir import RunDir

    root = tmp_path_factory.mktemp("charts")
    run = RunDir.create(root / "runs" / "vdit-tiny")
    for step in range(0, 50, 5):
        run.log_metrics(step, loss=1.0 / (1 + step), const_metric=0.45)
    metrics = ["subject_consistency_dino_vitb16", "temporal_flickering_vbench", "warping_error_dis_flow"]
    with ResultsStore(run.root / "results.sqlite") as st:
        for i, name in enumerate(("vdit-tiny/step-00000000", "vdit-tiny/step-00000040")):
            eid = f"e{i}"
            st.begin_eval(eid, suite="smoke", checkpoint=f"ck{i}", checkpoint_name=name, run_name="vdit-tiny",
                          step=40 * i, status="complete", config={"suite": {"primary_metric": metrics[0]}})
            st.put_scores(eid, [{"metric": m, "value": 0.5 + 0.1 * i + 0.01 * j, "ci_low": 0.45 + 0.1 * i,
                                 "ci_high": 0.55 + 0.1 * i + 0.02 * j, "n": 4, "higher_is_better": j != 2}
                                for j, m in enumerate(metrics)])
    return root


def test_charts_have_distinct_full_labels_and_axes_that_show_their_range(page, chart_world, artifacts_dir):
    from skyloom.dashboards import Dashboard, create_app, serve_in_thread

    with serve_in_thread(create_app(Dashboard(chart_world / "runs", cache_dir=chart_world / "cache"))) as url:
        open_view(page, url, "leaderboard")
        bars = page.locator("svg[aria-label='subject_consistency_dino_vitb16']")
        labels = bars.locator("text.bar-label").evaluate_all(
            "ts => ts.map(t => ({shown: t.lastChild.textContent, full: t.querySelector('title').textContent,"
            " x: t.getBBox().x}))")
        assert [x["full"] for x in labels] == ["vdit-tiny/step-00000040", "vdit-tiny/step-00000000"]
        assert len({x["shown"] for x in labels}) == 2  # never cut to the same text
        assert all(x["x"] >= 0 for x in labels)  # inside the chart
        assert all(x["shown"] == x["full"] or "…" in x["shown"] for x in labels)
        radar = page.locator("svg[aria-label^='profile']")
        width = float(radar.get_attribute("width"))
        boxes = radar.locator("text.radar-label").evaluate_all(
            "ts => ts.map(t => { const b = t.getBBox(); "
            "return [b.x, b.x + b.width, t.querySelector('title').textContent]; })")
        assert len(boxes) == 3 and all(0 <= a and b <= width for a, b, _ in boxes), boxes  # nothing clipped
        assert {full for _, _, full in boxes} == {"subject_consistency_dino_vitb16", "temporal_flickering_vbench",
                                                  "warping_error_dis_flow ↓"}
        page.screenshot(path=str(artifacts_dir / "dashboard-charts.png"), full_page=True)
        open_view(page, url, "training")
        ticks = page.locator("svg[aria-label='train/const_metric'] text.ytick").evaluate_all(
            "ts => ts.map(t => t.textContent)")
        values = [float(t) for t in ticks]
        assert "0" not in ticks and len(set(ticks)) >= 2, ticks  # a constant 0.45 is not an axis labelled "0"
        assert min(values) < 0.45 < max(values) and "0.45" in ticks, ticks


# -- live refresh -------------------------------------------------------------------------------------------
def test_views_refresh_when_runs_change_on_disk(page, tmp_path):
    from skyloom.dashboards import Dashboard, create_app, serve_in_thread
    from skyloom.eval.results.store import ResultsStore
    from skyloom.rundir import RunDir

    first = RunDir.create(tmp_path / "runs" / "first")
    first.log_metrics(0, loss=1.0)
    with serve_in_thread(create_app(Dashboard(tmp_path / "runs", cache_dir=tmp_path / "cache"))) as url:
        open_view(page, url, "training")
        assert page.locator(".tr-run").count() == 1
        page.uncheck("#tr-log")
        second = RunDir.create(tmp_path / "runs" / "second")  # a run that starts while the page is open
        second.log_metrics(0, loss=2.0)
        page.wait_for_function("document.querySelectorAll('.tr-run').length === 2", timeout=20000)  # no click
        assert not page.is_checked("#tr-log")  # the user's choices survive the refresh
        first.log_metrics(5, loss=0.5)  # a training step appends a point
        page.wait_for_function("document.querySelector(\"svg[aria-label='train/loss']\")"
                               ".querySelectorAll('circle').length === 3",
                               timeout=20000)
        open_view(page, url, "leaderboard")
        assert "No evaluations found" in page.inner_text("#view-leaderboard")
        with ResultsStore(first.root / "results.sqlite") as st:  # an evaluation finishes
            st.begin_eval("e", suite="s", checkpoint="ck", checkpoint_name="first@5", status="complete",
                          config={"suite": {"primary_metric": "m"}})
            st.put_scores("e", [{"metric": "m", "value": 0.3, "higher_is_better": True}])
        page.wait_for_selector("#lb-table tbody tr[data-eval='e']", timeout=20000)


# -- Host allow list ----------------------------------------------------------------------------------------
def test_a_dns_rebinding_name_gets_nothing(playwright_session, server):
    """A page under another name that resolves to 127.0.0.1 (DNS rebinding) is refused by Host."""
    port = int(server.rsplit(":", 1)[1].strip("/"))
    b = launch_chromium(playwright_session, ("--host-resolver-rules=MAP evil.example 127.0.0.1",))
    try:
        pg = b.new_page()
        r = pg.goto(f"http://evil.example:{port}/api/leaderboard")
        assert r.status == 400 and "smoke" not in pg.content()
        r = pg.goto(f"http://evil.example:{port}/")
        assert r.status == 400 and "skyloom-data" not in pg.content()
        r = pg.goto(f"http://localhost:{port}/api/compare?suite=smoke&evals=nope")  # the real name: answered
        body = pg.inner_text("body")
        assert r.status == 404 and "…/results.sqlite" in body and "/tmp" not in body  # and no server path
    finally:
        b.close()


# -- corpus: the simulator's ground truth over the video ---------------------------------------------------------
def _canvas_pixel(page, x: float, y: float) -> list[int]:
    return page.evaluate(f"(() => {{ const c = document.getElementById('gt-canvas');"
                         f" return Array.from(c.getContext('2d').getImageData({x}, {y}, 1, 1).data); }})()")


def test_clip_inspector_draws_the_ground_truth(page, sim_server, sim_world, artifacts_dir):
    from skyloom.corpus import Corpus
    from skyloom.dashboards.groundtruth import SEG_ALPHA, seg_colour

    c = Corpus(sim_world["corpus"])
    cid = max(("sim-0", "sim-1"), key=lambda i: len(json.loads(c.gt_path(i).read_text())["events"]))
    gt = json.loads(c.gt_path(cid).read_text())
    assert gt["events"], "the fixture should have a collision"
    with np.load(c.gt_path(cid, ".npz")) as z:
        seg = z["segmentation"]
    open_view(page, sim_server, f"corpus?corpus=0&clip={cid}")
    page.wait_for_selector(f".clip-detail[data-id='{cid}']")
    page.wait_for_function("document.querySelector('.gt-stage video').readyState >= 2"
                           " && document.getElementById('clip-detail').dataset.seg === '1'", timeout=15000)
    assert page.locator(".tl-event").count() == len({e["frame"] for e in gt["events"]})  # events on the timeline
    assert page.locator("ol.events li").count() == len(gt["events"])
    text = page.inner_text(".clip-detail")
    for o in gt["objects"]:
        assert f"{o['colour']} {o['shape']}" in text  # the objects and the facts a caption may state
    assert page.locator(".cap-check").count() == len(c.get(cid).captions)
    ev = gt["events"][0]
    page.locator(".tl-event").first.click()  # go to the event's frame
    page.wait_for_function(f"document.getElementById('gt-canvas').dataset.frame === '{ev['frame']}'")
    f = ev["frame"]
    size = page.evaluate("(() => { const c = document.getElementById('gt-canvas'); return [c.width, c.height]; })()")
    sx, sy = size[0] / gt["width"], size[1] / gt["height"]
    # Boxes: the top edge of each visible object's box is drawn in its overlay colour.
    for o in gt["objects"]:
        fo = next(x for x in gt["frames"][f]["objects"] if x["name"] == o["name"])
        if not fo["visible"]:
            continue
        x0, y0, x1, _ = fo["bbox"]
        px = _canvas_pixel(page, (x0 + x1) / 2 * sx, y0 * sy)  # the 2-px stroke straddles the edge
        assert px[3] >= 128 and np.abs(np.array(px[:3]) - seg_colour(o["seg_id"])).max() < 60, (o["name"], px)
    # Segmentation alone: mask pixels carry the object's overlay colour, the background stays clear.
    page.uncheck("#gt-boxes")
    page.uncheck("#gt-traj")
    page.check("#gt-seg")
    ys, xs = np.nonzero(seg[f] > 0)
    i = len(ys) // 2
    px = _canvas_pixel(page, (xs[i] + 0.5) * sx, (ys[i] + 0.5) * sy)
    want = seg_colour(int(seg[f][ys[i], xs[i]]))
    assert abs(px[3] - SEG_ALPHA) <= 2 and np.abs(np.array(px[:3]) - want).max() <= 2, px
    by, bx = np.argwhere(seg[f] == 0)[0]
    assert _canvas_pixel(page, (bx + 0.5) * sx, (by + 0.5) * sy)[3] == 0
    page.uncheck("#gt-seg")
    assert _canvas_pixel(page, (xs[i] + 0.5) * sx, (ys[i] + 0.5) * sy)[3] == 0  # the toggle removes it
    # Frame stepping moves the overlay with the video.
    page.evaluate("document.activeElement && document.activeElement.blur()")
    page.keyboard.press("ArrowRight")
    page.wait_for_function(f"document.getElementById('gt-canvas').dataset.frame === '{min(f + 1, len(seg) - 1)}'")
    page.check("#gt-boxes")
    page.check("#gt-traj")
    page.check("#gt-seg")
    page.locator(".clip-detail").screenshot(path=str(artifacts_dir / "dashboard-clip.png"))


def test_clip_inspector_shows_a_licensed_clips_provenance(page, sim_server):
    open_view(page, sim_server, "corpus")
    page.click(".clip[data-id='real-0'] .clip-inspect")
    page.wait_for_selector(".clip-detail[data-id='real-0']")
    prov = page.inner_text("table.provenance")
    for s in ("CC-BY-4.0", "Creative Commons Attribution 4.0", "Jane Doe, CC BY 4.0", "https://example.org/v/real",
              "src-real"):
        assert s in prov
    assert page.locator("#gt-canvas").count() == 0 and page.locator(".timeline").count() == 0
    assert "clip=real-0" in page.evaluate("location.hash")  # a shareable link


# -- compare: the simulator beside the model -----------------------------------------------------------------
def test_physics_compare_plays_the_simulator_beside_each_checkpoint(page, sim_server, artifacts_dir):
    open_view(page, sim_server, "compare?suite=physics&evals=phys-static,phys-good")
    page.wait_for_function(f"document.querySelectorAll('.ref-perturbed video').length === 2 && {VIDEOS}.length === 10"
                           f" && {VIDEOS}.every(v => v.readyState >= 2)", timeout=120000)  # rendered on first view
    row = page.locator(".prompt-row").first
    assert row.locator(".vcell .label").all_inner_texts()[1:] == ["simulator", "perturbed re-sim (±0.01)",
                                                                  "run-phys@0", "run-phys@10"]
    nums = row.locator("table.physics-numbers tbody tr")
    assert nums.count() == 3 and "physical variance" in nums.first.inner_text()
    assert "physics_iq 90" in nums.nth(2).inner_text()
    page.click("#sync-play")  # one control for the simulator, the perturbed take and every checkpoint
    page.wait_for_function(f"{VIDEOS}.every(v => !v.paused && v.currentTime > 0.4)", timeout=15000)
    t = times(page)
    assert max(t) - min(t) < SYNC_TOL, t
    page.click("#sync-play")
    page.screenshot(path=str(artifacts_dir / "dashboard-physics.png"), full_page=True)


# -- the prompt box -----------------------------------------------------------------------------------------
@pytest.mark.slow  # trains a tiny run first
def test_prompt_box_plays_every_checkpoints_answer(page, sim_server, tiny_run, artifacts_dir):
    gen = "Array.from(document.querySelectorAll('#pr-out video'))"
    open_view(page, sim_server, "prompt")
    for box in page.locator("#pr-cks input").all():
        box.set_checked(box.get_attribute("value") in ("tiny@1", "tiny@2"))
    page.fill("#pr-text", "a blue square moves right")
    page.fill("#pr-steps", "2")
    page.click("#pr-go")
    page.wait_for_function(f"{gen}.length === 2 && {gen}.every(v => v.readyState >= 2)", timeout=300000)
    assert page.locator("#pr-out .label").all_inner_texts() == ["tiny@1", "tiny@2"]
    page.click("#gen-play")
    page.wait_for_function(f"{gen}.every(v => !v.paused && v.currentTime > 0.2)", timeout=15000)
    t = times(page, gen)
    assert max(t) - min(t) < SYNC_TOL, t
    page.click("#gen-play")
    page.screenshot(path=str(artifacts_dir / "dashboard-prompt.png"))
    page.click("#pr-go")  # the same request: answered from the cache
    page.wait_for_function(f"{gen}.length === 2 "
                           "&& document.querySelector('#pr-out').innerText.includes('from the cache')",
                           timeout=15000)
    page.fill("#pr-steps", "0")
    page.click("#pr-go")
    page.wait_for_function("document.getElementById('pr-error').textContent.includes('steps')")
