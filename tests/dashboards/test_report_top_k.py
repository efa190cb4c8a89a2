"""``skyloom report --top-k K`` (issue 29): videos and paired comparisons of the top K entries only, said so."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.dashboards.test_report import embedded

N_ENTRIES = 7


@pytest.fixture(scope="module")
def board_world(tmp_path_factory) -> Path:
    """One run folder, a store of 7 entries of 3 items, one small video per item."""
    from skyloom.eval.results.store import ResultsStore
    from skyloom.rundir import RunDir
    from skyloom.video import write_video
    from tests.conftest import moving_square_video

    root = tmp_path_factory.mktemp("topk")
    run = RunDir.create(root / "runs" / "r")
    with ResultsStore(run.results_store) as st:
        for e in range(N_ENTRIES):
            eid = f"e{e}"
            items = []
            for i in range(3):
                video = run.evaluation("s", eid).video(f"p{i}")
                write_video(video, moving_square_video(T=4, H=16, W=16, seed=e * 3 + i), fps=8)
                items.append({"item_id": f"p{i}", "metric": "m", "value": e + 0.1 * i, "video_path": str(video),
                              "prompt": f"prompt {i}", "seed": 0})
            st.begin_eval(eid, suite="s", checkpoint=f"/c/{e}", checkpoint_name=f"r/step-{e}", status="complete",
                          created_at=f"2026-12-01T00:00:0{e}Z", config={"suite": {"primary_metric": "m"}})
            st.put_items(eid, items)
            st.put_scores(eid, [{"metric": "m", "value": e + 0.1, "n": 3, "higher_is_better": True}])
    return root


def test_report_embeds_the_top_k_entries_and_says_so(board_world, tmp_path):
    from skyloom.dashboards import Dashboard, build_report

    dash = Dashboard([board_world / "runs"])
    try:
        info = build_report(dash, tmp_path / "r.html", top_k=3)
    finally:
        dash.close()
    data = embedded((tmp_path / "r.html").read_text(encoding="utf-8"))
    (table,) = data["leaderboard"]["suites"]
    assert len(table["rows"]) == N_ENTRIES  # the board itself lists every entry
    top = ["e6", "e5", "e4"]  # higher is better: the three best-ranked
    (cmp,) = data["compare"].values()
    assert [e["eval_id"] for e in cmp["evals"]] == top
    urls = [c["url"] for it in cmp["items"] for c in it["videos"].values()]
    assert len(urls) == 3 * 3 and all(u.startswith("data:video/mp4;base64,") for u in urls)
    assert {tuple(k.split("|")[1:3]) for k in data["paired"]} == {(a, b) for a in top for b in top if a != b}
    assert info.paired == len(data["paired"]) == 6 and info.top_k == 3
    assert data["report"] == {"top_k": 3, "paired_entries": 3, "paired": 6}
    assert any("top 3 of 7 entries" in w for w in data["overview"]["warnings"])


def test_report_cli_top_k(board_world, tmp_path):
    exe = shutil.which("skyloom", path=str(Path(sys.executable).parent)) or shutil.which("skyloom")
    assert exe, "the skyloom executable is not installed next to this Python"
    env = {**os.environ, "COLUMNS": "300"}
    out = tmp_path / "r.html"
    r = subprocess.run([exe, "report", "--runs", str(board_world / "runs"), "--out", str(out), "--top-k", "2"],
                       capture_output=True, text=True, timeout=600, env=env)
    assert r.returncode == 0, r.stderr
    said = r.stdout + r.stderr
    assert "top 2 of 7 entries" in said and "of the top 2 entries per board" in said
    data = embedded(out.read_text(encoding="utf-8"))
    assert len(data["paired"]) == 2 and data["report"]["top_k"] == 2
    bad = subprocess.run([exe, "report", "--runs", str(board_world / "runs"), "--out", str(out), "--top-k", "-1"],
                         capture_output=True, text=True, timeout=600, env=env)
    assert bad.returncode == 2 and "--top-k" in bad.stderr and "Traceback" not in bad.stderr + bad.stdout
