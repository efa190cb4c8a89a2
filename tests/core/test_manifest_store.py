"""The manifest's storage (issue 29): appends touch O(batch) files, parts merge by size class, compaction
folds them into a base (automatically or on demand), the id index survives crashes and deletion, and the
snapshot outside tools read is current whenever it is promised to be."""

from __future__ import annotations

import os
import subprocess
import sys

import pandas as pd
import pytest

import skyloom.corpus as corpus_mod
import skyloom.manifest_store as store
from skyloom.corpus import Caption, Corpus
from skyloom.corpus_check import check_corpus
from tests.core.test_corpus import make_record

SKYLOOM = os.path.join(os.path.dirname(sys.executable), "skyloom")


def _fill(c: Corpus, n: int, start: int = 0, step: int = 500) -> None:
    for s in range(start, start + n, step):
        c.append([make_record(f"r{i:06d}", sha256=f"{i:064d}") for i in range(s, min(start + n, s + step))])


def _manifest_files(c: Corpus) -> dict[str, int]:
    return {p.name: p.stat().st_mtime_ns for p in c.manifest_dir.iterdir() if p.suffix == ".parquet"}


def test_an_append_writes_one_small_part_and_rewrites_nothing(tmp_corpus, monkeypatch):
    monkeypatch.setattr(corpus_mod, "SNAPSHOT_EAGER_ROWS", 100)
    _fill(tmp_corpus, 600)
    tmp_corpus.compact()
    before = _manifest_files(tmp_corpus)
    snap = tmp_corpus.snapshot_path.stat().st_mtime_ns
    assert tmp_corpus.append([make_record(f"new-{i}") for i in range(10)]) == 10
    after = _manifest_files(tmp_corpus)
    assert {k: v for k, v in after.items() if k in before} == before  # nothing earlier rewritten
    (new,) = set(after) - set(before)
    assert new.startswith("part-") and len(pd.read_parquet(tmp_corpus.manifest_dir / new)) == 10
    assert tmp_corpus.snapshot_path.stat().st_mtime_ns == snap  # above the eager size: the last compaction's
    assert len(tmp_corpus) == 610 and tmp_corpus.present(ids=["new-3", "r000001", "nope"]) == {"new-3", "r000001"}
    assert len(pd.read_parquet(tmp_corpus.snapshot_path)) == 600
    assert check_corpus(tmp_corpus).problems == [] or all(p.kind != "stale snapshot"
                                                          for p in check_corpus(tmp_corpus).problems)
    tmp_corpus.refresh_snapshot()
    assert sorted(pd.read_parquet(tmp_corpus.snapshot_path)["id"]) == sorted(tmp_corpus.ids())


def test_parts_merge_by_size_class_and_compaction_runs_by_itself(tmp_corpus, monkeypatch):
    monkeypatch.setattr(store, "COMPACT_MIN_ROWS", 200)
    for b in range(30):  # 30 appends of 5: merged eight at a time, compacted at 200 rows of parts
        tmp_corpus.append([make_record(f"m{b:02d}-{i}") for i in range(5)])
        assert len([p for p in tmp_corpus.part_files() if p.name.startswith("part-")]) < 2 * store.MERGE_FANOUT
    assert len(tmp_corpus) == 150 and tmp_corpus._log.base() is None  # 150 rows of parts < 200: not yet
    tmp_corpus.add_captions({f"m{b:02d}-0": [Caption("t", "short", "x")] for b in range(30)})
    tmp_corpus.append([make_record(f"z{i}") for i in range(30)])
    assert tmp_corpus._log.base() is not None  # 210 rows of parts: compacted into a base
    assert [r.id for r in tmp_corpus.records()] == sorted([f"m{b:02d}-{i}" for b in range(30) for i in range(5)]
                                                          + [f"z{i}" for i in range(30)])
    assert tmp_corpus.count() == 180 and [i for b in tmp_corpus.lacking_caption("short") for i in b][:2] == \
        ["m00-1", "m00-2"]


def test_compaction_drops_tombstones_and_makes_the_snapshot_the_base(tmp_corpus):
    _fill(tmp_corpus, 50)
    tmp_corpus.delete(["r000007"], reason="test")
    base = tmp_corpus.compact()
    assert tmp_corpus.part_files() == [base] and base.samefile(tmp_corpus.snapshot_path)
    assert tmp_corpus.compacted() and not tmp_corpus.log_holds({"r000007"})
    assert all("r000007" not in pd.read_parquet(p)["id"].tolist() for p in tmp_corpus.part_files())
    assert tmp_corpus.log_holds(set(), prefixes=("r00001",))


def test_the_index_is_rebuilt_when_deleted_and_caught_up_after_a_crash(tmp_corpus):
    _fill(tmp_corpus, 40)
    tmp_corpus.compact()
    tmp_corpus.add_captions({"r000003": [Caption("t", "dense", "y")]})
    want = tmp_corpus.records()
    (tmp_corpus.manifest_dir / "index.sqlite").unlink()
    c = Corpus(tmp_corpus.root)
    assert c.records() == want and c.count() == 40 and c.present(sha256=[f"{3:064d}"]) == {f"{3:064d}"}
    assert [i for b in c.lacking_caption("dense") for i in b] == [f"r{i:06d}" for i in range(40) if i != 3]
    # killed after writing a part, before indexing it: the next reader indexes it
    code = ("from skyloom.corpus import Corpus; from tests.core.test_corpus import make_record; "
            f"Corpus({str(c.root)!r}).append([make_record('late-1')])")
    run = subprocess.run([sys.executable, "-c", code], env={**os.environ, "SKYLOOM_CRASH_AT": "manifest:part"},
                         capture_output=True, text=True, timeout=120, cwd=os.getcwd())
    assert run.returncode == -9, run.stderr[-400:]
    again = Corpus(c.root)
    assert again.present(ids=["late-1"]) == {"late-1"} and again.count() == 41
    assert again.get("late-1").id == "late-1"


def test_a_crash_in_a_compaction_leaves_a_readable_corpus(tmp_corpus):
    _fill(tmp_corpus, 60)
    tmp_corpus.delete(["r000001"], reason="test")
    want = tmp_corpus.records()
    code = f"from skyloom.corpus import Corpus; Corpus({str(tmp_corpus.root)!r}).compact()"
    run = subprocess.run([sys.executable, "-c", code], env={**os.environ, "SKYLOOM_CRASH_AT": "manifest:compact"},
                         capture_output=True, text=True, timeout=120)
    assert run.returncode == -9, run.stderr[-400:]
    c = Corpus(tmp_corpus.root)
    assert c.records() == want and c.count() == 59 and not c.present(ids=["r000001"])
    c.compact()
    assert c.records() == want and c.compacted()


def test_corpus_compact_cli(tmp_corpus):
    _fill(tmp_corpus, 20)
    run = subprocess.run([SKYLOOM, "corpus", "compact", str(tmp_corpus.root)], capture_output=True, text=True,
                         timeout=120)
    assert run.returncode == 0 and "Traceback" not in run.stderr, run.stderr
    assert "20 live clip(s)" in " ".join((run.stderr + run.stdout).split())
    assert Corpus(tmp_corpus.root).compacted()
    bad = subprocess.run([SKYLOOM, "corpus", "compact", str(tmp_corpus.root / "nope")], capture_output=True,
                         text=True, timeout=120)
    assert bad.returncode == 2 and "Traceback" not in bad.stderr and "not a skyloom corpus" in bad.stderr


@pytest.mark.parametrize("compact_min", [10_000, 30])
def test_streaming_reads_agree_with_records_through_merges_and_compactions(tmp_corpus, monkeypatch, compact_min):
    monkeypatch.setattr(store, "COMPACT_MIN_ROWS", compact_min)
    for b in range(12):
        tmp_corpus.append([make_record(f"s{b:02d}-{i}", split="val" if i % 3 else "train") for i in range(7)])
        tmp_corpus.delete([f"s{b:02d}-0"], reason="test")
        tmp_corpus.add_captions({f"s{b:02d}-1": [Caption("t", "short", str(b))]})
    recs = tmp_corpus.records()
    assert [r for b in tmp_corpus.iter_records(5) for r in b] == recs
    assert tmp_corpus.scan(["split"], split="val").column("id").to_pylist() == [r.id for r in recs if r.split == "val"]
    assert tmp_corpus.lookup([r.id for r in recs[::4]]) == {r.id: r for r in recs[::4]}
    assert len(recs) == 72 and tmp_corpus.count(split="train") == sum(r.split == "train" for r in recs)
