"""The corpus contract as outside tools and `skyloom corpus validate` see it (issues 14 and 15)."""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from skyloom.corpus import CORPUS_FORMAT_VERSION, Caption, ClipRecord, Corpus
from skyloom.video import frames_sha256, write_video
from tests.conftest import moving_square_video

SKYLOOM = str(Path(sys.executable).with_name("skyloom"))


def _clip(c: Corpus, k: int) -> ClipRecord:
    cid = f"demo-{k}"
    write_video(c.clip_path(cid), moving_square_video(T=8, seed=k), fps=8, metadata={"clip_id": cid})
    return ClipRecord(id=cid, path=f"clips/{cid}.mp4", source_kind="synthetic", duration_s=1.0, fps=8.0, width=32,
                      height=32, num_frames=8, license_id="CC0-1.0", source_url=f"skyloom://render/demo/{k}",
                      author="skyloom", attribution="",
                      sha256=hashlib.sha256(c.clip_path(cid).read_bytes()).hexdigest(),
                      meta={"frames_sha256": frames_sha256(c.clip_path(cid))})


@pytest.fixture
def corpus(tmp_path) -> Corpus:
    c = Corpus.create(tmp_path / "c")
    c.append([_clip(c, k) for k in range(4)])
    c.add_captions({"demo-0": [Caption(captioner="t", kind="short", text="a square")]})
    c.delete(["demo-3"], reason="test")
    return c


def test_outside_tools_read_one_current_row_per_live_clip(corpus):
    import duckdb
    import pandas as pd
    import pyarrow.parquet as pq

    path = corpus.root / "manifest.parquet"
    df = pd.read_parquet(path)
    assert sorted(df["id"]) == ["demo-0", "demo-1", "demo-2"] and df["id"].is_unique
    assert len(df.loc[df["id"] == "demo-0", "captions"].iloc[0]) == 1  # the current revision, with its caption
    assert pq.read_table(path).num_rows == 3
    rows = duckdb.sql(f"SELECT id, sha256, len(captions) AS n FROM '{path}' ORDER BY id").fetchall()
    assert rows == [(r.id, r.sha256, len(r.captions)) for r in corpus.records()]


def test_format_1_corpus_is_migrated(tmp_path, corpus):
    old = tmp_path / "old"
    shutil.copytree(corpus.root, old)
    (old / "manifest.parquet").unlink()
    (old / "manifest").rename(old / "manifest.parquet")  # the format-1 layout: the log under manifest.parquet/
    info = json.loads((old / "corpus.json").read_text())
    (old / "corpus.json").write_text(json.dumps({**info, "version": 1}))
    c = Corpus(old)
    assert (old / "manifest").is_dir() and (old / "manifest.parquet").is_file()
    assert sorted(c.ids()) == ["demo-0", "demo-1", "demo-2"] and c.info["version"] == CORPUS_FORMAT_VERSION == 3


def _validate(root, *extra) -> subprocess.CompletedProcess:
    return subprocess.run([SKYLOOM, "corpus", "validate", str(root), *extra], check=False, capture_output=True,
                          text=True,
                          timeout=120)


def test_validate_lists_each_problem_and_repairs_what_is_provably_ours(corpus):
    ok = _validate(corpus.root)
    assert ok.returncode == 0 and "ok" in ok.stderr and "Traceback" not in ok.stderr
    root = corpus.root
    corpus.export_webdataset(shard_size=2)
    shutil.copy(root / "shards" / "all-000000.tar", root / "shards" / "all-000007.tar")  # stale: nobody lists it
    (root / "clips" / "stray.mp4").write_bytes(b"left by a crash")  # orphan
    write_video(corpus.clip_path("demo-1"), moving_square_video(T=8, seed=1), fps=8,
                metadata={"clip_id": "demo-1", "retagged": True})  # same frames, new tags: provably the row's clip
    corpus.clip_path("demo-2").write_bytes(corpus.clip_path("demo-2").read_bytes()[:-10])  # corrupted: not ours
    write_video(corpus.clip_path("demo-0"), moving_square_video(T=8, seed=9), fps=8,
                metadata={"clip_id": "demo-0"})  # other frames under this clip's tags: not ours either
    bad = _validate(root)
    assert bad.returncode == 2 and "Traceback" not in bad.stderr
    kinds = sorted(line.split(":", 1)[0] for line in bad.stdout.splitlines())
    assert kinds == ["orphan file", "sha256 mismatch", "sha256 mismatch", "sha256 mismatch", "stale shard"], bad.stdout
    fixed = _validate(root, "--repair")
    assert fixed.returncode == 2  # demo-0 and demo-2 cannot be proven ours; the stale shards need a re-export
    left = fixed.stdout.splitlines()
    assert any(x.startswith("sha256 mismatch: demo-2") for x in left)
    assert any(x.startswith("sha256 mismatch: demo-0") and "decoded frames differ" in x for x in left)
    assert not any(x.startswith("sha256 mismatch: demo-1") for x in left)
    assert not any(x.startswith("orphan file") for x in left)
    assert any(x.startswith("stale shard entry") and "demo-1" in x for x in left)  # the shard holds the old bytes
    assert (root / "quarantine" / "orphans" / "clips" / "stray.mp4").exists()
    assert Corpus(root).quarantined("validate")[0]["item"] == "clips/stray.mp4"
    rec = Corpus(root).get("demo-1")
    assert rec.sha256 == hashlib.sha256(corpus.clip_path("demo-1").read_bytes()).hexdigest()


def test_validate_flags_missing_files_and_taken_down_rows(corpus):
    corpus.clip_path("demo-0").unlink()
    corpus.log_takedown({"source": "skyloom://render/demo/1", "source_urls": ["skyloom://render/demo/1"]})
    out = _validate(corpus.root)
    assert out.returncode == 2
    assert "missing file: demo-0" in out.stdout and "taken-down source: demo-1" in out.stdout


def test_export_cli_names_the_folder_and_keeps_other_splits(corpus):
    r = subprocess.run([SKYLOOM, "corpus", "export-wds", str(corpus.root), "--split", "val"], check=False,
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0 and "None" not in r.stderr and str(corpus.root / "shards") in r.stderr.replace("\n", "")
    corpus.export_webdataset(shard_size=1)
    corpus.export_webdataset(split="val")  # a split export beside: the index keeps the full one
    index = json.loads((corpus.root / "shards" / "index.json").read_text())
    assert sorted(index["clips"]) == ["demo-0", "demo-1", "demo-2"]
