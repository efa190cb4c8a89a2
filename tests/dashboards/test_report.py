"""``skyloom report``: one self-contained HTML file with the dashboard's payloads and videos embedded."""

from __future__ import annotations

import base64
import json
import re
from html.parser import HTMLParser

import pytest

from tests.dashboards.fixtures import PROMPTS, SUITE


class _Refs(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.refs: list[tuple[str, str, str]] = []
        self.scripts = 0

    def handle_starttag(self, tag, attrs):
        self.scripts += tag == "script"
        for k, v in attrs:
            if k in ("src", "href", "poster", "action", "data") and v is not None:
                self.refs.append((tag, k, v))


def embedded(html: str) -> dict:
    m = re.search(r'<script type="application/json" id="skyloom-data">(.*?)</script>', html, re.DOTALL)
    assert m, "no embedded data block"
    return json.loads(m.group(1))


@pytest.fixture(scope="module")
def report(world, dash, tmp_path_factory):
    from skyloom.dashboards import build_report

    out = tmp_path_factory.mktemp("report") / "report.html"
    info = build_report(dash, out)
    return info, out.read_text(encoding="utf-8")


def test_report_is_self_contained(report):
    info, html = report
    p = _Refs()
    p.feed(html)
    assert p.refs == []  # no src/href at all in the static markup: everything is inline
    assert p.scripts == 3  # data, charts, app: the prompt "</script><b>x</b>" did not break out
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", html)
    assert "url(http" not in html and "@import" not in html
    data = embedded(html)
    for key in ("overview", "leaderboard", "training", "corpus", "compare", "paired"):
        assert key in data
    urls = [c["url"] for cmp in data["compare"].values() for it in cmp["items"] for c in it["videos"].values()]
    urls += [c["url"] for corp in data["corpus"]["corpora"] for c in corp["clips"]]
    assert urls and all(u.startswith("data:video/mp4;base64,") for u in urls)
    assert info.videos_embedded == len(urls) == 3 * len(PROMPTS) + 6 and info.videos_omitted == 0


def test_report_videos_are_the_files(report, world):
    _, html = report
    data = embedded(html)
    cmp = data["compare"][f"0|{SUITE}"]
    assert {e["eval_id"] for e in cmp["evals"]} == {"smoke-a0", "smoke-a40", "smoke-b40"}
    it = next(i for i in cmp["items"] if i["item_id"] == "p1")
    b64 = it["videos"]["smoke-b40"]["url"].split(",", 1)[1]
    assert base64.b64decode(b64) == (world["run-b"] / "eval" / SUITE / "smoke-b40" / "videos" / "p1.mp4").read_bytes()


def test_report_precomputes_paired_comparisons(report, world):
    from skyloom.eval.results.stats import paired_compare
    from skyloom.eval.results.store import ResultsStore

    _, html = report
    paired = embedded(html)["paired"]
    assert len(paired) == 3 * 2 * 3  # ordered pairs of 3 checkpoints x 3 metrics
    with ResultsStore(world["run-a"] / "results.sqlite") as s:
        ref = paired_compare(s, "smoke-b40", "smoke-a0", "clipsim").to_dict()
    assert paired["0|smoke-b40|smoke-a0|clipsim"]["diff"] == pytest.approx(ref["diff"])
    assert paired["0|smoke-b40|smoke-a0|clipsim"]["better"] == "a"


def test_video_budget_leaves_videos_out_with_a_note(dash, tmp_path, world):
    from skyloom.dashboards import build_report

    one = (world["run-a"] / "eval" / SUITE / "smoke-a0" / "videos" / "p0.mp4").stat().st_size
    info = build_report(dash, tmp_path / "r.html", max_video_mb=2.5 * one / 2**20)
    html = (tmp_path / "r.html").read_text()
    data = embedded(html)
    cells = [c for cmp in data["compare"].values() for it in cmp["items"] for c in it["videos"].values()]
    kept = [c for c in cells if c["url"]]
    assert 1 <= len(kept) <= 3 and info.videos_omitted == len(cells) - len(kept) + 6
    assert all("--max-video-mb" in c["note"] for c in cells if not c["url"])
    assert any("video budget" in w for w in data["overview"]["warnings"])
    assert info.bytes < 200_000


def test_report_cli(world, tmp_path):
    from typer.testing import CliRunner

    from skyloom.cli import app

    out = tmp_path / "sub" / "cli-report.html"
    res = CliRunner().invoke(app, ["report", "--runs", str(world["runs"]), "--corpus", str(world["corpus"]),
                                   "--out", str(out), "--max-video-mb", "1"])
    assert res.exit_code == 0, res.output
    data = embedded(out.read_text())
    assert data["leaderboard"]["suites"][0]["suite"] == SUITE
    table = data["leaderboard"]["suites"][0]  # the report says which suite version it shows, and lists them all
    assert "suite_version" in table and [v["version"] for v in table["versions"]] == [table["suite_version"]]
    assert 'id="lb-version"' in out.read_text()  # the version picker works offline
    assert len(data["corpus"]["corpora"][0]["clips"]) == 6


def test_report_of_nothing_still_renders(tmp_path):
    from skyloom.dashboards import Dashboard, build_report

    info = build_report(Dashboard(tmp_path / "none"), tmp_path / "empty.html")
    data = embedded((tmp_path / "empty.html").read_text())
    assert data["leaderboard"]["suites"] == [] and data["compare"] == {} and info.videos_embedded == 0
