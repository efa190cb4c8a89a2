"""A corpus writes only inside itself and inside exports it can prove are its own (issue 25)."""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

from skyloom.corpus import ClipRecord, Corpus, CorpusBusyError, CorpusError
from skyloom.corpus_check import check_corpus
from skyloom.video import frames_sha256, write_video
from tests.conftest import moving_square_video

SKYLOOM = str(Path(sys.executable).with_name("skyloom"))
URL_A, URL_B = "https://example.org/a.mp4", "https://example.org/b.mp4"
SHA_A, SHA_B = "a" * 64, "b" * 64


def licensed(c: Corpus, k: int, url: str, sha: str) -> ClipRecord:
    """A small licensed-looking clip of source ``url`` (content sha ``sha``), its file written."""
    cid = f"lic-{sha[:16]}-000-{k:02d}"
    write_video(c.clip_path(cid), moving_square_video(T=8, seed=k), fps=8, metadata={"clip_id": cid})
    return ClipRecord(id=cid, path=f"clips/{cid}.mp4", source_kind="licensed", duration_s=1.0, fps=8.0, width=32,
                      height=32, num_frames=8, license_id="CC0-1.0", source_url=url, author="a", attribution="",
                      sha256=hashlib.sha256(c.clip_path(cid).read_bytes()).hexdigest(), source_sha256=sha,
                      parent_id=f"src-{sha[:16]}", meta={"frames_sha256": frames_sha256(c.clip_path(cid))})


def members(folder: Path) -> list[str]:
    out = []
    for s in sorted(folder.glob("*.tar")):
        with tarfile.open(s) as t:
            out += [m.name for m in t.getmembers()]
    return out


@pytest.fixture
def site(tmp_path) -> Path:
    """``site/c`` (2 clips of source a, 2 of b) with ``site/exp`` (an export beside it) and ``c/shards``."""
    c = Corpus.create(tmp_path / "site" / "c")
    c.append([licensed(c, k, URL_A, SHA_A) for k in range(2)] + [licensed(c, k, URL_B, SHA_B) for k in range(2, 4)])
    c.export_webdataset(shard_size=1)
    c.export_webdataset(tmp_path / "site" / "exp", shard_size=1)
    return tmp_path / "site"


def test_exports_are_recorded_relative_and_stamped_with_the_corpus_id(site):
    c = Corpus(site / "c")
    assert json.loads((site / "c" / "exports.json").read_text())["exports"] == ["../exp"]
    owner = json.loads((site / "exp" / "index.json").read_text())["owner"]
    assert owner == {"corpus_id": c.corpus_id, "corpus": "../c"}
    assert c.export_owner(site / "exp") == (True, "")


def test_a_copied_corpus_never_touches_the_originals_exports(site, tmp_path):
    from skyloom.datagen.takedown import takedown

    before = members(site / "exp")
    assert len(before) == 12
    # 1. corpus and export copied together: the copy rewrites its own export copy only
    shutil.copytree(site, tmp_path / "copy")
    entry = takedown(Corpus(tmp_path / "copy" / "c"), URL_A)
    assert len(entry["clips"]) == 2 and not entry["foreign_exports"]
    assert members(site / "exp") == before and len(members(site / "c" / "shards")) == 12
    assert not any(m.startswith(f"lic-{SHA_A[:16]}") for m in members(tmp_path / "copy" / "exp"))
    assert len(Corpus(site / "c")) == 4
    # 2. the corpus alone copied beside the original: "../exp" is the original's export, not the copy's
    shutil.copytree(site / "c", site / "c2")
    entry = takedown(Corpus(site / "c2"), URL_B)
    assert entry["foreign_exports"] and "written by the copy of this corpus at" in entry["foreign_exports"][0]
    assert members(site / "exp") == before
    assert check_corpus(Corpus(site / "c")).ok, check_corpus(Corpus(site / "c")).problems
    assert check_corpus(Corpus(tmp_path / "copy" / "c")).ok
    kinds = {p.kind for p in check_corpus(Corpus(site / "c2")).problems}
    assert kinds == {"foreign export"}


def test_export_refuses_a_folder_another_corpus_owns(site, tmp_path):
    other = Corpus.create(tmp_path / "other")
    with pytest.raises(CorpusError, match="cannot export there: it belongs to corpus"):
        other.export_webdataset(site / "exp")


def test_validate_with_a_relative_path_finds_the_corpus_own_shards(site):
    r = subprocess.run([SKYLOOM, "corpus", "validate", "site/c"], cwd=site.parent, capture_output=True, text=True,
                       check=False, timeout=120)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "site/c/site/c" not in r.stdout + r.stderr


def test_validate_checks_every_live_clip_is_in_every_export_and_no_taken_down_one(site):
    from skyloom.datagen.takedown import takedown

    c = Corpus(site / "c")
    c.append([licensed(c, 5, URL_B, SHA_B)])  # added after both exports
    kinds = sorted(p.kind for p in check_corpus(c).problems)
    assert kinds == ["clip missing from export", "clip missing from export"]
    c.export_webdataset(shard_size=1)
    c.export_webdataset(site / "exp", shard_size=1)
    keep = site / "saved.tar"
    shutil.copy(site / "exp" / "all-000000.tar", keep)  # a shard holding a clip of source a
    takedown(c, URL_A)
    assert check_corpus(c).ok
    shutil.copy(keep, site / "exp" / "all-000000.tar")  # restored from a backup: the taken-down clip is back
    problems = check_corpus(c).problems
    assert [p.kind for p in problems] == ["taken-down clip in export"], problems
    rep = check_corpus(c, repair=True)
    assert rep.ok and not any(m.startswith(f"lic-{SHA_A[:16]}") for m in members(site / "exp"))


def test_one_writer_at_a_time(tmp_path):
    from skyloom.captioning.config import CaptionConfig
    from skyloom.captioning.runner import run as caption
    from skyloom.datagen.ingest import run_ingest
    from skyloom.datagen.sources import Source
    from tests.datagen.test_ingest import test_config

    c = Corpus.create(tmp_path / "c")
    with c.writer("render"):
        with pytest.raises(CorpusBusyError, match=r"corpus is being written by render \(pid \d+"):
            run_ingest(test_config(engine="local"), [Source(url="/none.mp4", license="CC0-1.0")], c.root)
        with pytest.raises(CorpusBusyError, match="--wait"):
            caption(CaptionConfig(corpus=str(c.root), captioner="heuristic"))
        from skyloom.datagen.render import RenderConfig, run_render

        with pytest.raises(CorpusBusyError, match="being written by render"):
            run_render(RenderConfig(out=str(c.root), num_scenes=1), show_progress=False)
        r = subprocess.run([SKYLOOM, "caption", "run", str(c.root), "--captioner", "heuristic"], capture_output=True,
                           text=True, check=False, timeout=120)
        assert r.returncode == 2 and "being written by render" in r.stderr and "Traceback" not in r.stderr
        assert sum("being written" in line for line in r.stderr.splitlines()) == 1, r.stderr
    with c.writer("ingest"):  # released: the next writer gets it
        pass


def test_repair_never_blesses_flipped_bytes_or_swapped_clips(tmp_path):
    import random

    c = Corpus.create(tmp_path / "c")
    c.append([licensed(c, k, URL_A, SHA_A) for k in range(3)])
    ids = sorted(c.ids())
    # two clips of one source swapped: same provenance tags, same size and frame count
    a, b = c.clip_path(ids[0]), c.clip_path(ids[1])
    da, db = a.read_bytes(), b.read_bytes()
    a.write_bytes(db)
    b.write_bytes(da)
    # 48 flipped bytes inside the third clip's media data
    p = c.clip_path(ids[2])
    data = bytearray(p.read_bytes())
    mdat = data.find(b"mdat") + 8
    for i in random.Random(0).sample(range(mdat + 64, len(data) - 16), 48):
        data[i] ^= 0x5A
    p.write_bytes(bytes(data))
    before = {i: c.get(i).sha256 for i in ids}
    rep = check_corpus(c, repair=True)
    assert not rep.repaired
    assert sorted(x.item for x in rep.problems if x.kind == "sha256 mismatch") == ids
    assert all("left alone" in x.detail for x in rep.problems)
    assert {i: Corpus(c.root).get(i).sha256 for i in ids} == before


def test_validate_notices_a_deleted_ground_truth_npz(tmp_path):
    c = Corpus.create(tmp_path / "c")
    rec = licensed(c, 0, URL_A, SHA_A)
    gt = c.write_ground_truth(rec.id, {"arrays": f"gt/{rec.id}.npz"})
    c.gt_path(rec.id, ".npz").write_bytes(b"PK")
    import dataclasses

    c.append([dataclasses.replace(rec, gt_path=gt)])
    assert check_corpus(c).ok
    c.gt_path(rec.id, ".npz").unlink()
    problems = check_corpus(c).problems
    assert [(p.kind, p.item) for p in problems] == [("missing file", rec.id)] and ".npz" in problems[0].detail


def test_a_writer_killed_with_sigkill_leaves_no_stale_lock(tmp_path):
    import signal
    import time

    c = Corpus.create(tmp_path / "c")
    code = ("import sys, time; from skyloom.corpus import Corpus\n"
            "with Corpus(sys.argv[1]).writer('ingest'):\n    print('held', flush=True); time.sleep(60)")
    p = subprocess.Popen([sys.executable, "-c", code, str(c.root)], stdout=subprocess.PIPE, text=True)
    try:
        assert p.stdout.readline().strip() == "held"
        with pytest.raises(CorpusBusyError, match=rf"ingest \(pid {p.pid}"):
            with c.writer("render"):
                pass
        p.send_signal(signal.SIGKILL)
        p.wait(10)
        t0 = time.monotonic()
        with c.writer("render"):
            assert time.monotonic() - t0 < 1
    finally:
        p.kill()
        p.wait()


def test_an_export_from_before_owners_is_left_alone_until_exported_again(site):
    from skyloom.datagen.takedown import takedown

    index = json.loads((site / "exp" / "index.json").read_text())
    del index["owner"]  # as written before exports carried their corpus, and recorded absolute
    (site / "exp" / "index.json").write_text(json.dumps(index))
    (site / "c" / "exports.json").write_text(json.dumps({"exports": [str(site / "exp")]}))
    c = Corpus(site / "c")
    assert "foreign export" in {p.kind for p in check_corpus(c).problems}
    c.export_webdataset(site / "exp", shard_size=1)  # exporting again adopts it
    assert json.loads((site / "c" / "exports.json").read_text())["exports"] == ["../exp"]
    assert check_corpus(c).ok
    takedown(c, URL_A)
    assert not any(m.startswith(f"lic-{SHA_A[:16]}") for m in members(site / "exp"))
