"""The corpus's streaming API (issue 29): scan, iter_records, lookup, present, lacking_caption, derived_from,
count and stamp agree with a model of the writes made, kept in the test as plain dicts."""

from __future__ import annotations

import random
import tracemalloc

import pyarrow as pa
import pytest

from skyloom.corpus import Caption, Corpus, ManifestError
from tests.core.test_corpus import make_record


@pytest.fixture
def history(tmp_corpus):
    """A corpus after a seeded mix of appends, split changes, captions and deletions, and the model of it:
    ``{id: {"split", "source_kind", "sha256", "source_sha256", "source_url", "parent_id", "kinds"}}``."""
    rng = random.Random(29)
    model: dict[str, dict] = {}
    for batch in range(6):
        recs = []
        for i in range(25):
            cid = f"c{batch:02d}-{i:03d}"
            kind = "licensed" if i % 3 == 0 else "synthetic"
            src = f"src{i % 4}"
            rec = make_record(cid, source_kind=kind, split=rng.choice(["train", "val", "test"]),
                              sha256=f"{batch:02d}{i:062d}", source_sha256=f"spec-{src}",
                              source_url=f"https://example.org/{src}.mp4", parent_id=f"parent-{src}")
            recs.append(rec)
            model[cid] = {"split": rec.split, "source_kind": kind, "sha256": rec.sha256,
                          "source_sha256": rec.source_sha256, "source_url": rec.source_url,
                          "parent_id": rec.parent_id, "kinds": set()}
        tmp_corpus.append(recs)
        live = sorted(model)
        capped = rng.sample(live, 20)
        tmp_corpus.add_captions({cid: [Caption("t", rng.choice(["short", "dense"]), f"text of {cid}")]
                                 for cid in capped})
        for cid in capped:
            model[cid]["kinds"] |= {c.kind for c in tmp_corpus.get(cid).captions}
        moved = rng.sample(live, 10)
        tmp_corpus.update([make_record(cid, source_kind=model[cid]["source_kind"], split="val",
                                       sha256=model[cid]["sha256"], source_sha256=model[cid]["source_sha256"],
                                       source_url=model[cid]["source_url"], parent_id=model[cid]["parent_id"],
                                       captions=tmp_corpus.get(cid).captions) for cid in moved])
        for cid in moved:
            model[cid]["split"] = "val"
        gone = rng.sample(live, 5)
        tmp_corpus.delete(gone, reason="test")
        for cid in gone:
            del model[cid]
    return tmp_corpus, model


def test_scan_is_the_latest_revision_per_id_with_filters_pushed(history):
    c, model = history
    t = c.scan(["split", "source_kind", "sha256"])
    assert t.column_names == ["id", "split", "source_kind", "sha256"]
    assert t.column("id").to_pylist() == sorted(model)
    assert {r["id"]: r["split"] for r in t.to_pylist()} == {k: v["split"] for k, v in model.items()}
    for split in ("train", "val", "test"):
        for kind in (None, "licensed"):
            want = sorted(k for k, v in model.items() if v["split"] == split and kind in (None, v["source_kind"]))
            assert c.scan(["sha256"], split=split, source_kind=kind).column("id").to_pylist() == want
            assert c.count(split=split, source_kind=kind) == len(want)
    some = sorted(model)[::7] + ["not-there"]
    assert c.scan([], ids=some).column("id").to_pylist() == sorted(model)[::7]
    deleted = c.scan(["deleted"], include_deleted=True)
    assert deleted.num_rows == 150 and sum(deleted.column("deleted").to_pylist()) == 150 - len(model)
    with pytest.raises(ManifestError, match="unknown manifest column"):
        c.scan(["nope"])


def test_iter_records_streams_bounded_batches_in_id_order(history):
    c, model = history
    batches = list(c.iter_records(batch_size=16))
    assert all(0 < len(b) <= 16 for b in batches)
    flat = [r for b in batches for r in b]
    assert [r.id for r in flat] == sorted(model)
    assert flat == c.records()  # same records, field for field
    val = [r.id for b in c.iter_records(7, split="val", source_kind="synthetic") for r in b]
    assert val == sorted(k for k, v in model.items() if v["split"] == "val" and v["source_kind"] == "synthetic")
    slim = next(c.iter_records(4, columns=["split"]))
    assert [r.split for r in slim] == [model[r.id]["split"] for r in slim] and slim[0].sha256 == ""


def test_lookup_present_lacking_caption_and_derived_from(history):
    c, model = history
    ids = sorted(model)[:5] + ["missing-1"]
    got = c.lookup(ids)
    assert sorted(got) == ids[:5] and all(got[i] == c.get(i) for i in ids[:5])
    assert c.present(ids=ids) == set(ids[:5])
    shas = [model[i]["sha256"] for i in ids[:3]] + ["f" * 64]
    assert c.present(sha256=shas) == set(shas[:3])
    assert c.present(spec=["spec-src1", "spec-none"]) == {"spec-src1"}
    for kind in ("short", "dense"):
        lacking = [i for b in c.lacking_caption(kind, batch_size=10) for i in b]
        assert lacking == sorted(k for k, v in model.items() if kind not in v["kinds"])
        assert all(len(b) <= 10 for b in c.lacking_caption(kind, batch_size=10))
    want = sorted(k for k, v in model.items() if v["source_sha256"] == "spec-src2")
    assert want and c.derived_from("spec-src2") == want
    assert c.derived_from("https://example.org/src2.mp4") == want
    assert c.derived_from("parent-src2") == want
    assert c.derived_from("nothing") == []


def test_stamp_changes_with_every_write_and_only_then(history):
    c, model = history
    s0 = c.stamp()
    assert s0 == c.stamp() == Corpus(c.root).stamp()
    c.add_captions({sorted(model)[0]: [Caption("t", "short", "x")]})
    s1 = c.stamp()
    assert s1 != s0
    c.append([make_record("zz-new")])
    assert c.stamp() not in (s0, s1)


def test_scan_does_not_build_python_rows_for_the_corpus(history):
    """A scan of two columns of 150 clips allocates far less than the Python rows would."""
    c, _ = history
    c.records()  # warm imports and caches
    tracemalloc.start()
    t = c.scan(["split"])
    _, peak_scan = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    tracemalloc.start()
    c.records()
    _, peak_rows = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert isinstance(t, pa.Table) and peak_scan * 3 < peak_rows
