"""Manifest format 3 (issue 29): a corpus written by the skyloom before it (format 2, the fixture
``data/corpus_v2`` made by ``data/make_corpus_v2.py`` at commit 8cd5571) opens, migrates once, keeps every
record, and a crash at any step of the migration leaves a corpus the next open migrates correctly."""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from skyloom.corpus import CORPUS_FORMAT_VERSION, Corpus

DATA = Path(__file__).parent / "data"


def _expected() -> list[dict]:
    return json.loads((DATA / "corpus_v2.json").read_text())


def _rows(c: Corpus) -> list[dict]:
    return [{**dataclasses.asdict(r), "captions": [dataclasses.asdict(x) for x in r.captions]} for r in c.records()]


@pytest.fixture
def old(tmp_path) -> Path:
    dest = tmp_path / "corpus_v2"
    shutil.copytree(DATA / "corpus_v2", dest)
    assert json.loads((dest / "corpus.json").read_text())["version"] == 2
    return dest


def test_format_2_corpus_migrates_once_and_keeps_every_record(old):
    c = Corpus(old)
    assert json.loads((old / "corpus.json").read_text())["version"] == CORPUS_FORMAT_VERSION == 3
    assert _rows(c) == _expected()  # every field, rev and created_at included
    parts = c.part_files()
    assert len(parts) == 1 and parts[0].name.startswith("base-") and parts[0].samefile(c.snapshot_path)
    assert (c.manifest_dir / "index.sqlite").is_file()
    df = pd.read_parquet(c.snapshot_path)  # outside tools: one row per live clip
    assert sorted(df["id"]) == [r["id"] for r in _expected()] and df["id"].is_unique
    assert c.present(ids=["old-0", "old-5"]) == {"old-0"} and c.count(split="val") == 1
    before = {p.name: p.stat().st_mtime_ns for p in old.rglob("*") if p.is_file() and p.name != ".lock"}
    stamp = c.stamp()
    again = Corpus(old)  # idempotent: a second open changes nothing
    assert _rows(again) == _expected() and again.stamp() == stamp
    assert {p.name: p.stat().st_mtime_ns for p in old.rglob("*") if p.is_file() and p.name != ".lock"} == before


@pytest.mark.parametrize("step", ["migrate:indexed", "manifest:compact", "migrate:compacted"])
def test_a_crash_during_migration_is_completed_by_the_next_open(old, step):
    env = {**os.environ, "SKYLOOM_CRASH_AT": step}
    run = subprocess.run([sys.executable, "-c", f"from skyloom.corpus import Corpus; Corpus({str(old)!r})"],
                         env=env, capture_output=True, text=True, timeout=120)
    assert run.returncode == -9, run.stderr[-500:]  # killed at that step
    assert json.loads((old / "corpus.json").read_text())["version"] == 2  # not claimed before it is done
    c = Corpus(old)
    assert c.info["version"] == 3 and _rows(c) == _expected()
    assert len(c.part_files()) == 1 and c.part_files()[0].samefile(c.snapshot_path)
    c.add_captions({"old-0": [c.get("old-1").captions[0]]})  # and it is writable as usual
    assert c.get("old-0").caption("short") == "one" and len(c) == 5


def test_a_read_only_format_2_corpus_is_read_in_place(old, monkeypatch):
    """Where the corpus cannot be written (a shared read-only copy), nothing is migrated or written: the
    format-2 log is read as it is, with an in-memory id index."""
    import skyloom.manifest_store as store

    def no_lock(self):
        raise PermissionError(13, "Permission denied", str(self.root / ".lock"))

    monkeypatch.setattr(Corpus, "_lock", no_lock)
    monkeypatch.setattr(store.os, "access", lambda path, mode: False)
    before = {p: p.stat().st_mtime_ns for p in old.rglob("*")}
    c = Corpus(old)
    assert _rows(c) == _expected() and c.count() == 5 and c.present(ids=["old-4", "old-5"]) == {"old-4"}
    assert c.lookup(["old-1"])["old-1"].caption("short") == "one"
    assert [i for b in c.lacking_caption("dense") for i in b] == ["old-0", "old-1", "old-3", "old-4"]
    assert {p: p.stat().st_mtime_ns for p in old.rglob("*")} == before  # nothing written
    assert not (old / "manifest" / "index.sqlite").exists()
