"""The dashboard only reads, and only media files inside the configured directories."""

from __future__ import annotations

import http.client
import os
import shutil
from urllib.parse import urlsplit

import pytest


@pytest.fixture(scope="module")
def live(world, dash):
    """The real server (uvicorn) so that raw, un-normalised request paths reach the app."""
    from skyloom.dashboards import create_app, serve_in_thread

    secret = world["root"] / "secret.mp4"  # a media file OUTSIDE every configured directory
    shutil.copy(next(world["run-a"].glob("eval/*/*/videos/p0.mp4")), secret)
    links = world["run-a"] / "eval" / "links"
    links.mkdir(exist_ok=True)
    if not (links / "out.mp4").exists():
        os.symlink(secret, links / "out.mp4")  # symlinked file pointing outside
        os.symlink(world["root"], links / "outdir")  # symlinked folder pointing outside
        os.symlink(world["run-a"] / "eval" / "smoke" / "smoke-a0" / "videos" / "p0.mp4", links / "in.mp4")
    with serve_in_thread(create_app(dash)) as url:
        yield urlsplit(url)


def raw_get(live, path: str) -> int:
    conn = http.client.HTTPConnection(live.hostname, live.port, timeout=10)
    try:
        conn.putrequest("GET", path, skip_host=False, skip_accept_encoding=True)
        conn.endheaders()
        return conn.getresponse().status
    finally:
        conn.close()


@pytest.mark.parametrize("path", [
    "/files/0/../secret.mp4",
    "/files/0/run-a/../../secret.mp4",
    "/files/0/%2e%2e/secret.mp4",
    "/files/0/%2E%2E%2Fsecret.mp4",
    "/files/0/run-a/%2e%2e/%2e%2e/secret.mp4",
    "/files/0/..%5csecret.mp4",
    "/files/0/run-a/eval/links/out.mp4",
    "/files/0/run-a/eval/links/outdir/secret.mp4",
    "/files/0/run-a/results.sqlite",
    "/files/0/run-a/run.json",
    "/files/0/run-a/metrics.jsonl",
    "/files/9/secret.mp4",
    "/files/0/x%00.mp4",
])
def test_traversal_and_non_media_are_forbidden(live, path):
    assert raw_get(live, path) == 403


def test_absolute_paths_are_refused(live, world):
    secret = str(world["root"] / "secret.mp4")
    assert raw_get(live, "/files/0/" + secret) == 403
    assert raw_get(live, "/files/0/" + secret.replace("/", "%2F")) == 403
    assert raw_get(live, "/files/1//etc/passwd") == 403


def test_missing_and_odd_roots_are_404(live):
    assert raw_get(live, "/files/0/run-a/nope.mp4") == 404
    assert raw_get(live, "/files/x/secret.mp4") == 404
    assert raw_get(live, "/files/-1/secret.mp4") == 404


def test_inside_files_and_inside_symlinks_are_served(live):
    assert raw_get(live, "/files/0/run-a/eval/smoke/smoke-a0/videos/p0.mp4") == 200
    assert raw_get(live, "/files/0/run-a/eval/links/in.mp4") == 200
    assert raw_get(live, "/files/1/clips/clip-0.mp4") == 200


def test_only_get_routes(live):
    conn = http.client.HTTPConnection(live.hostname, live.port, timeout=10)
    conn.request("POST", "/api/leaderboard", body=b"{}")
    assert conn.getresponse().status == 405
    conn.close()


def test_safe_roots_unit(tmp_path):
    from skyloom.dashboards.paths import PathRefused, SafeRoots

    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "a.mp4").write_bytes(b"x")
    (tmp_path / "b.mp4").write_bytes(b"y")
    roots = SafeRoots([("run", tmp_path / "in")])
    assert roots.resolve(0, "a.mp4") == (tmp_path / "in" / "a.mp4").resolve()
    for bad in ("../b.mp4", "/b.mp4", "a.mp4/..", "", "x\\..\\b.mp4", "./../b.mp4"):
        with pytest.raises(PathRefused):
            roots.resolve(0, bad)
    assert roots.url(tmp_path / "b.mp4") is None  # outside: never linked
    assert roots.url("a.mp4", prefer=tmp_path / "in") == "files/0/a.mp4"


def test_dashboard_never_creates_a_results_database(tmp_path):
    from fastapi.testclient import TestClient

    from skyloom.dashboards import Dashboard, create_app
    from skyloom.rundir import RunDir

    RunDir.create(tmp_path / "runs" / "r")
    db = tmp_path / "shared.sqlite"
    for d in (Dashboard(tmp_path / "runs"), Dashboard(tmp_path / "runs", db=str(db))):
        with TestClient(create_app(d), base_url="http://localhost") as c:
            assert c.get("/api/leaderboard").status_code == 200
            ov = c.get("/api/overview").json()
    assert "does not exist" in " ".join(ov["warnings"])
    assert not (tmp_path / "runs" / "r" / "results.sqlite").exists() and not db.exists()
