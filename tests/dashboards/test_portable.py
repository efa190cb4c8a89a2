"""A runs folder that is moved or copied keeps every evaluation video: the dashboard API, the static
report, and the leaderboard / compare commands read it from its new place (issue: results stores
hold the absolute paths of the original place)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from tests.core.test_cli_contract import ENV, SKYLOOM
from tests.dashboards.fixtures import EVALS, PROMPTS, SUITE, make_runs


@pytest.fixture(scope="module")
def places(tmp_path_factory) -> dict[str, Path]:
    """The same runs folder three times: moved (the original is gone) and copied (the original stays)."""
    root = tmp_path_factory.mktemp("portable")
    orig = make_runs(root / "orig")["runs"]
    copied = root / "copy" / "runs"
    shutil.copytree(orig, copied)
    made = make_runs(root / "tomove")["runs"]
    moved = root / "moved" / "runs"
    moved.parent.mkdir()
    shutil.move(str(made), str(moved))
    return {"orig": orig, "copied": copied, "moved": moved}


@pytest.mark.parametrize("where", ["copied", "moved"])
def test_dashboard_and_report_find_every_video_in_the_new_place(places, where, tmp_path):
    from skyloom.dashboards import Dashboard
    from skyloom.dashboards.report import build_report

    runs = places[where]
    dash = Dashboard([runs])
    try:
        lb = dash.leaderboard()
        (table,) = [t for t in lb["suites"] if t["suite"] == SUITE]
        ids = [r["eval_id"] for r in table["rows"]]
        assert sorted(ids) == sorted(e[0] for e in EVALS)
        cmp = dash.compare(table["source_id"], SUITE, ids)
        cells = [c for it in cmp["items"] for c in it["videos"].values()]
        assert len(cells) == len(EVALS) * len(PROMPTS)
        assert all(c["url"] for c in cells), [c.get("note") for c in cells if not c["url"]]
        for c in cells:  # every URL is served from the new folder, never the original one
            assert "orig" not in c["url"] and "tomove" not in c["url"]
        info = build_report(dash, tmp_path / "report.html")
    finally:
        dash.close()
    assert info.videos_embedded == len(EVALS) * len(PROMPTS) and info.videos_omitted == 0


def test_report_counts_missing_videos_truthfully(places, tmp_path):
    from skyloom.dashboards import Dashboard
    from skyloom.dashboards.report import build_report

    runs = tmp_path / "runs"
    shutil.copytree(places["copied"], runs)
    gone = sorted(runs.glob(f"*/eval/{SUITE}/*/videos/*.mp4"))[:2]
    for p in gone:
        p.unlink()
    dash = Dashboard([runs])
    try:
        info = build_report(dash, tmp_path / "report.html")
    finally:
        dash.close()
    assert info.videos_embedded == len(EVALS) * len(PROMPTS) - 2
    assert info.videos_omitted == info.videos_missing == 2


@pytest.mark.parametrize("where", ["copied", "moved"])
def test_leaderboard_and_compare_cli_on_the_new_place(places, where):
    runs = places[where]
    lb = subprocess.run([SKYLOOM, "leaderboard", "--runs", str(runs), "--format", "csv"], capture_output=True,
                        text=True, env=ENV, timeout=120)
    assert lb.returncode == 0, lb.stderr
    assert all(e[0] in lb.stdout for e in EVALS)
    cmp = subprocess.run([SKYLOOM, "compare", "smoke-a0", "smoke-a40", "--runs", str(runs), "--format", "json"],
                         capture_output=True, text=True, env=ENV, timeout=120)
    assert cmp.returncode == 0, cmp.stderr
    assert '"clipsim"' in cmp.stdout


def test_compare_by_checkpoint_path_after_a_move(tmp_path):
    """`skyloom compare RUN/checkpoints/step-0 RUN` still finds the evaluations of a moved run."""
    from skyloom.eval.results.store import ResultsStore
    from skyloom.rundir import RunDir

    rd = RunDir.create(tmp_path / "old" / "runs" / "tiny", preset="vdit-tiny")
    for step in (0, 4):
        with rd.begin_checkpoint(step) as d:
            (d / "dit").mkdir()
    store = ResultsStore(rd.results_db_url)
    for step in (0, 4):  # what the runner records: the absolute path and "<run>/<checkpoint>"
        ck = rd.checkpoint_dir(step).resolve()
        store.begin_eval(f"smoke-{step}", suite="smoke", checkpoint=str(ck), checkpoint_name=f"{rd.name}/{ck.name}",
                         run_name=rd.name, step=step)
    store.close()
    new = tmp_path / "new" / "runs"
    new.parent.mkdir()
    shutil.move(str(tmp_path / "old" / "runs"), str(new))
    moved = ResultsStore(new / "tiny" / "results.sqlite")
    try:
        assert moved.resolve_eval(str(new / "tiny" / "checkpoints" / "step-00000000")) == "smoke-0"
        assert moved.resolve_eval(str(new / "tiny")) == "smoke-4"  # a run -> its latest checkpoint
    finally:
        moved.close()


def test_relative_runs_folder_finds_every_video(places, monkeypatch):
    """``skyloom dashboard --runs runs`` from the folder above: a relative --runs serves every video (issue 27: a
    relative --runs made every video "outside the configured directories")."""
    from skyloom.dashboards import Dashboard

    monkeypatch.chdir(places["copied"].parent)
    dash = Dashboard([Path("runs")])
    try:
        (table,) = [t for t in dash.leaderboard()["suites"] if t["suite"] == SUITE]
        cmp = dash.compare(table["source_id"], SUITE, [r["eval_id"] for r in table["rows"]])
        cells = [c for it in cmp["items"] for c in it["videos"].values()]
        assert len(cells) == len(EVALS) * len(PROMPTS) and all(c["url"] for c in cells)
        for c in cells:
            root, rel = c["url"].removeprefix("files/").split("/", 1)
            assert dash.roots.resolve(int(root), rel).is_file()
    finally:
        dash.close()
