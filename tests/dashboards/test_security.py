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


def raw_get_host(live, path: str, host: str) -> tuple[int, bytes]:
    conn = http.client.HTTPConnection(live.hostname, live.port, timeout=10)
    try:
        conn.putrequest("GET", path, skip_host=True, skip_accept_encoding=True)
        conn.putheader("Host", host)
        conn.endheaders()
        r = conn.getresponse()
        return r.status, r.read()
    finally:
        conn.close()


@pytest.mark.parametrize("host", ["evil.example", "evil.example:80", "127.0.0.1.nip.io", "localhost.evil.example",
                                  "", "[::2]:1", "10.0.0.1"])
def test_foreign_host_headers_are_refused(live, host):
    """A DNS-rebinding page reaches 127.0.0.1 under its own name: that Host gets 400 and no data."""
    for path in ("/api/leaderboard", "/", "/files/0/run-a/eval/smoke/smoke-a0/videos/p0.mp4"):
        status, body = raw_get_host(live, path, host)
        assert status == 400 and b"smoke" not in body and b"run-a" not in body, (path, host, status)


@pytest.mark.parametrize("host", ["localhost", "LOCALHOST:8765", "127.0.0.1", "127.0.0.1:1", "[::1]:8765",
                                  "localhost."])
def test_loopback_host_headers_are_served(live, host):
    status, body = raw_get_host(live, "/api/overview", host)
    assert status == 200 and b"run-a" in body


def test_allowed_hosts_are_configurable(dash):
    from fastapi.testclient import TestClient

    from skyloom.dashboards import create_app
    from skyloom.dashboards.guard import normalise_hosts

    app = create_app(dash, allow_hosts=["dash.lan", "10.0.0.5"])
    for base, ok in (("http://dash.lan:8765", True), ("http://10.0.0.5", True), ("http://localhost", False),
                     ("http://other.lan", False)):
        with TestClient(app, base_url=base) as c:
            assert (c.get("/api/overview").status_code == 200) is ok, base
    with TestClient(create_app(dash, allow_hosts=["*"]), base_url="http://anything.example") as c:
        assert c.get("/api/overview").status_code == 200
    for bad in ("http://dash.lan", "dash.lan/x", ""):
        with pytest.raises(ValueError, match="--allow-host"):
            normalise_hosts([bad])


def test_error_bodies_carry_no_absolute_paths(live, world):
    secret_dirs = [str(world["root"]), str(world["root"].resolve()), "/tmp/"]
    for path in ("/api/compare?suite=smoke&evals=nope", "/api/compare?suite=other&evals=smoke-a0",
                 "/api/paired?a=nope&b=smoke-a0&metric=clipsim", "/api/physics?suite=smoke&evals=nope",
                 "/api/clip?corpus=0&id=nope", "/api/clip?corpus=5&id=x", "/api/job?key=nope",
                 "/api/compare?suite=smoke&evals=smoke-a0&source=9", "/files/0/run-a/nope.mp4", "/nope"):
        status, body = raw_get_host(live, path, "localhost")
        assert status in (200, 404), (path, status)
        text = body.decode()
        assert not any(d in text for d in secret_dirs), (path, text)
    status, body = raw_get_host(live, "/api/compare?suite=smoke&evals=nope", "localhost")
    assert status == 404 and "…/results.sqlite" in body.decode()  # still says which store


def test_scrub_paths():
    from skyloom.dashboards.guard import scrub_paths

    assert (scrub_paths("no evaluation 'x' in sqlite:////srv/a/results.sqlite")
            == "no evaluation 'x' in …/results.sqlite")
    assert (scrub_paths("clip 'c' has no ground truth (/data/corpus/gt/c.json)")
            == "clip 'c' has no ground truth (…/c.json)")
    assert scrub_paths(r"file C:\Users\me\x.mp4 missing") == "file …/x.mp4 missing"
    assert scrub_paths("runs a/b vs 1/2 at 10:30") == "runs a/b vs 1/2 at 10:30"  # relative text is left alone
