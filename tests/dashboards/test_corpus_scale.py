"""The Corpus view at scale (issue 29): the summary comes from a columnar scan and equals the per-record
computation it replaced; clip rows come in pages (records read for the page only); payloads are cached
on the corpus's stamp."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest

from skyloom.corpus import Caption, ClipRecord, Corpus
from skyloom.dashboards import data

WORDS = ["a", "red", "ball", "bounces", "  twice", "\tthen\n", "rolls", "", "off-screen"]


def _reference_summary(records: list) -> dict:
    """The summary as the dashboard computed it before issue 29: over Python records (copied on purpose,
    from dashboards/data.py at 8cd5571, as the reference the columnar version must equal)."""
    cap_words = [len(c.text.split()) for r in records for c in r.captions]
    res = Counter(f"{r.width}x{r.height}" for r in records)
    return {
        "clips": len(records),
        "hours": round(sum(float(r.duration_s) for r in records) / 3600, 4),
        "captioned": sum(1 for r in records if r.captions),
        "duration_s": data._histogram([float(r.duration_s) for r in records]),
        "caption_words": data._histogram([float(w) for w in cap_words]),
        "resolutions": dict(res.most_common(20)),
        "licenses": dict(Counter(r.license_id for r in records).most_common()),
        "source_kinds": dict(Counter(r.source_kind for r in records).most_common()),
        "splits": dict(Counter(r.split for r in records).most_common()),
        "quality_names": sorted({k for r in records for k in r.quality}),
    }


def _corpus(root, n: int = 300, seed: int = 0) -> Corpus:
    rng = np.random.default_rng(seed)
    c = Corpus.create(root)
    recs = []
    for i in range(n):
        caps = tuple(Caption("c", str(rng.choice(["short", "dense"])),
                             " ".join(rng.choice(WORDS, int(rng.integers(9))))) for _ in range(int(rng.integers(3))))
        w, h = [(32, 32), (48, 32), (64, 36), (36, 64)][int(rng.integers(4))]
        q = {k: float(rng.random()) for k in rng.choice(["aesthetic", "motion", "ocr"], int(rng.integers(0, 3)),
                                                         replace=False)}
        recs.append(ClipRecord(
            id=f"clip-{i:04d}", path=f"clips/clip-{i:04d}.mp4", source_kind=str(rng.choice(["synthetic", "licensed"])),
            duration_s=float(rng.random() * 9), fps=8.0, width=w, height=h, num_frames=8,
            license_id=str(rng.choice(["CC0-1.0", "CC-BY-4.0"])), source_url="x", author="a", attribution="",
            sha256="0" * 64, captions=caps, quality=q, split=str(rng.choice(["train", "val", "test"]))))
    c.append(recs[: n // 2])
    c.append(recs[n // 2:])
    c.delete([f"clip-{i:04d}" for i in range(0, n, 17)], reason="test", remove_files=False)
    return c


def test_columnar_summary_equals_the_per_record_summary(tmp_path):
    c = _corpus(tmp_path / "c")
    got = data.corpus_summary(c.scan(data.SUMMARY_COLUMNS))
    assert got == _reference_summary(c.records())
    assert data.corpus_summary(None) == _reference_summary([])


def test_clip_pages_cover_the_corpus_in_order_and_filter(tmp_path):
    from fastapi.testclient import TestClient

    from skyloom.dashboards import Dashboard, create_app

    c = _corpus(tmp_path / "c", n=120)
    ids = [r.id for r in c.records()]
    dash = Dashboard(tmp_path / "runs", corpora=[c.root], max_clips=10)
    with TestClient(create_app(dash), base_url="http://localhost") as client:
        pages = [client.get("/api/corpus/clips", params={"offset": o, "limit": 25}).json() for o in range(0, 125, 25)]
        assert [x["id"] for p in pages for x in p["clips"]] == ids and {p["total"] for p in pages} == {len(ids)}
        val = client.get("/api/corpus/clips", params={"split": "val", "limit": 5000}).json()
        assert [x["id"] for x in val["clips"]] == [r.id for r in c.records(split="val")]
        lic = client.get("/api/corpus/clips", params={"source_kind": "licensed", "limit": 3}).json()
        assert lic["total"] == len(c.records(source_kind="licensed")) and len(lic["clips"]) == 3
        assert client.get("/api/corpus/clips", params={"limit": 0}).status_code == 422
        assert client.get("/api/corpus/clips", params={"corpus": 3}).status_code == 404
        (payload,) = client.get("/api/corpus").json()["corpora"]
        assert [x["id"] for x in payload["clips"]] == ids[:10] and payload["truncated"] and payload["total"] == len(ids)


def test_corpus_payload_is_rebuilt_only_when_the_corpus_changes(tmp_path, monkeypatch):
    from skyloom.dashboards import Dashboard

    c = _corpus(tmp_path / "c", n=40)
    dash = Dashboard(tmp_path / "runs", corpora=[c.root])
    calls = []
    real = data.corpus_data
    monkeypatch.setattr(data, "corpus_data", lambda *a, **k: calls.append(1) or real(*a, **k))
    first = dash.corpus()["corpora"][0]
    first["clips"][0]["url"] = "changed by a caller"
    again = dash.corpus()["corpora"][0]
    assert len(calls) == 1 and again["clips"][0]["url"] != "changed by a caller"  # cached, and callers get copies
    stamp = dash.stamp()["stamp"]
    c.add_captions({"clip-0001": [Caption("late", "dense", "a brand new caption")]})
    assert dash.stamp()["stamp"] != stamp
    fresh = dash.corpus()["corpora"][0]
    assert len(calls) == 2
    assert "a brand new caption" in [k["text"] for x in fresh["clips"] if x["id"] == "clip-0001" for k in x["captions"]]


@pytest.mark.parametrize("clip_id", ["clip-0001", "nope"])
def test_clip_endpoint_reads_one_record(tmp_path, clip_id):
    from skyloom.dashboards import Dashboard

    c = _corpus(tmp_path / "c", n=20)
    dash = Dashboard(tmp_path / "runs", corpora=[c.root])
    if clip_id == "nope":
        with pytest.raises(KeyError, match="nope"):
            dash.clip(0, clip_id)
    else:
        assert dash.clip(0, clip_id)["id"] == clip_id


def test_clip_pages_read_the_id_column_once_per_manifest_change(tmp_path, monkeypatch):
    from skyloom.dashboards import Dashboard

    c = _corpus(tmp_path / "c", n=60)
    dash = Dashboard(tmp_path / "runs", corpora=[c.root])
    scans = []
    real = Corpus.scan
    monkeypatch.setattr(Corpus, "scan", lambda self, *a, **k: scans.append(a) or real(self, *a, **k))
    pages = [dash.corpus_clips(0, offset=o, limit=20)["clips"] for o in (0, 20, 40)]
    assert len(scans) == 1 and [x["id"] for p in pages for x in p] == [r.id for r in c.records()]
    dash.corpus_clips(0, limit=5, split="val")
    assert len(scans) == 2  # other filters: their own id column
    c.delete(["clip-0001"], reason="test", remove_files=False)
    after = dash.corpus_clips(0, limit=5)
    assert len(scans) == 3 and "clip-0001" not in [x["id"] for x in after["clips"]]
