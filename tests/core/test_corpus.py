"""The corpus contract: round trip, validation errors that name file and field, concurrent appends."""

from __future__ import annotations

import dataclasses
import json
import multiprocessing as mp
import tarfile

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from skyloom.corpus import (
    MANIFEST_SCHEMA,
    Caption,
    ClipRecord,
    Corpus,
    CorpusError,
    ManifestError,
    assign_split,
    validate_record,
)
from skyloom.video import write_video
from tests.conftest import moving_square_video


def make_record(cid: str, **kw) -> ClipRecord:
    base = dict(id=cid, path=f"clips/{cid}.mp4", source_kind="synthetic", duration_s=2.0, fps=8.0, width=32,
                height=32, num_frames=16, license_id="CC0-1.0", source_url=f"skyloom://render/test/{cid}",
                author="skyloom", attribution="", sha256="a" * 64)
    base.update(kw)
    return ClipRecord(**base)


def test_round_trip_preserves_every_field(tmp_corpus):
    rec = make_record("c1", parent_id="p0", shot_start_s=1.5, shot_end_s=3.0, split="val",
                      quality={"motion": 0.25, "aesthetic": 4.5}, gt_path="gt/c1.json",
                      meta={"preset": "x", "seed": 3}, source_page="https://example.org/p",
                      captions=(Caption("scene-graph", "dense", "A red ball bounces.", seconds=0.01),))
    assert tmp_corpus.append([rec]) == 1
    got = Corpus(tmp_corpus.root).get("c1")
    for f in dataclasses.fields(ClipRecord):
        if f.name in ("rev", "created_at"):
            continue
        assert getattr(got, f.name) == getattr(rec, f.name), f.name
    assert got.rev > 0 and got.created_at
    assert got.caption("dense") == "A red ball bounces."


def test_append_skips_existing_ids_and_never_rewrites_parts(tmp_corpus):
    tmp_corpus.append([make_record("a"), make_record("b")])
    first = tmp_corpus.part_files()
    before = {p: p.read_bytes() for p in first}
    assert tmp_corpus.append([make_record("b"), make_record("c")]) == 1
    assert sorted(tmp_corpus.ids()) == ["a", "b", "c"]
    assert all(p.read_bytes() == before[p] for p in first)  # append-only
    assert len(tmp_corpus.part_files()) == 2


def test_updates_are_revisions_and_compact_keeps_latest(tmp_corpus):
    tmp_corpus.append([make_record("a"), make_record("b")])
    tmp_corpus.add_captions({"a": [Caption("cap", "short", "one")]})
    tmp_corpus.add_captions({"a": [Caption("cap", "short", "two"), Caption("cap", "dense", "long")]})
    tmp_corpus.set_quality({"b": {"motion": 1.0}})
    tmp_corpus.delete(["b"], reason="test")
    a = tmp_corpus.get("a")
    assert [c.text for c in a.captions] == ["two", "long"]  # same (captioner, kind) replaced
    with pytest.raises(KeyError):
        tmp_corpus.get("b")
    tmp_corpus.compact()
    assert len(tmp_corpus.part_files()) == 1
    assert [r.id for r in tmp_corpus.records()] == ["a"]
    assert [c.text for c in tmp_corpus.get("a").captions] == ["two", "long"]


@pytest.mark.parametrize("field,value,expected", [
    ("source_kind", "scraped", "source_kind"),
    ("license_id", "", "license_id"),
    ("width", 0, "width"),
    ("path", "../outside.mp4", "path"),
    ("split", "holdout", "split"),
    ("id", "bad id!", "id"),
])
def test_bad_records_name_the_field(tmp_corpus, field, value, expected):
    with pytest.raises(ManifestError, match=expected):
        tmp_corpus.append([make_record("ok", **{field: value})])
    assert tmp_corpus.records() == []


def test_bad_manifest_part_names_file_and_field(tmp_corpus):
    tmp_corpus.append([make_record("a")])
    # A part missing a column.
    t = pa.Table.from_pylist([make_record("b").to_row()], schema=MANIFEST_SCHEMA).drop_columns(["license_id"])
    bad = tmp_corpus.manifest_dir / "part-9-bad.parquet"
    pq.write_table(t.replace_schema_metadata(MANIFEST_SCHEMA.metadata), bad)
    with pytest.raises(ManifestError, match=r"part-9-bad\.parquet.*'license_id'"):
        tmp_corpus.records()
    bad.unlink()
    # A column of the wrong type.
    t = pa.Table.from_pylist([make_record("b").to_row()], schema=MANIFEST_SCHEMA)
    i = t.schema.get_field_index("width")
    t = t.set_column(i, pa.field("width", pa.string()), pa.array(["32"]))
    pq.write_table(t, bad)
    with pytest.raises(ManifestError, match=r"part-9-bad\.parquet.*'width'.*string"):
        tmp_corpus.records()
    bad.unlink()
    # Not a manifest at all / not Parquet.
    pq.write_table(pa.table({"x": [1]}), bad)
    with pytest.raises(ManifestError, match="not a skyloom manifest"):
        tmp_corpus.records()
    bad.write_bytes(b"garbage")
    with pytest.raises(ManifestError, match="unreadable Parquet"):
        tmp_corpus.records()


def test_bad_corpus_directory(tmp_path):
    with pytest.raises(CorpusError, match="no corpus.json"):
        Corpus(tmp_path)
    (tmp_path / "corpus.json").write_text(json.dumps({"format": "other"}))
    with pytest.raises(CorpusError, match="'format'"):
        Corpus(tmp_path)


def _append_worker(root: str, start: int, n: int) -> None:
    c = Corpus(root)
    for i in range(start, start + n):
        c.append([make_record(f"w{i:04d}")])
        c.append([make_record("shared")])  # every worker races on the same id


def test_concurrent_appends_lose_nothing_and_duplicate_nothing(tmp_corpus):
    ctx = mp.get_context("spawn")
    procs = [ctx.Process(target=_append_worker, args=(str(tmp_corpus.root), k * 10, 10)) for k in range(4)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(120)
        assert p.exitcode == 0
    ids = [r.id for r in tmp_corpus.records()]
    assert len(ids) == len(set(ids)) == 41
    assert {f"w{i:04d}" for i in range(40)} | {"shared"} == set(ids)


def test_assign_split_is_stable_and_proportional():
    splits = [assign_split(f"clip-{i}", val_fraction=0.2) for i in range(2000)]
    assert splits == [assign_split(f"clip-{i}", val_fraction=0.2) for i in range(2000)]
    assert 0.16 < splits.count("val") / 2000 < 0.24


def test_webdataset_export_and_takedown_rewrites_shards(tmp_corpus):
    recs = []
    for i in range(3):
        cid = f"v{i}"
        write_video(tmp_corpus.clip_path(cid), moving_square_video(T=4, seed=i), fps=8)
        recs.append(make_record(cid, captions=(Caption("c", "dense", f"caption {i}"),)))
    tmp_corpus.append(recs, validate_files=True)
    shards = tmp_corpus.export_webdataset(shard_size=2)
    assert [s.name for s in shards] == ["all-000000.tar", "all-000001.tar"]
    with tarfile.open(shards[0]) as t:
        names = t.getnames()
        assert names == ["v0.mp4", "v0.json", "v0.txt", "v1.mp4", "v1.json", "v1.txt"]
        assert t.extractfile("v1.txt").read() == b"caption 1"
        assert json.loads(t.extractfile("v0.json").read())["license_id"] == "CC0-1.0"
    assert tmp_corpus.delete(["v1"], reason="takedown") == ["v1"]
    with tarfile.open(shards[0]) as t:
        assert t.getnames() == ["v0.mp4", "v0.json", "v0.txt"]
    assert not tmp_corpus.clip_path("v1").exists()


def test_validate_record_accepts_a_good_record():
    validate_record(make_record("good"))  # no exception


def test_quarantine_log(tmp_corpus):
    tmp_corpus.quarantine("ingest", "http://x/y.mp4", "missing license", size=3)
    tmp_corpus.quarantine("render", "s1", "simulation blew up")
    assert [q["reason"] for q in tmp_corpus.quarantined("ingest")] == ["missing license"]
    assert len(tmp_corpus.quarantined()) == 2
