"""Embeddings, semantic dedup (SemDeDup) and search: against brute-force references."""

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
    return subprocess.run([SKYLOOM, *args], capture_output=True, text=True, env=ENV, timeout=600,
                          stdin=subprocess.DEVNULL)


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    """8 clips: 3 distinct moving-square videos, each also stored a second time re-encoded, plus 2 noise clips."""
    from skyloom.corpus import ClipRecord, Corpus
    from skyloom.fsutil import sha256_file
    from skyloom.video import write_video
    from tests.conftest import moving_square_video

    c = Corpus.create(tmp_path_factory.mktemp("emb") / "c")
    rng = np.random.default_rng(0)
    clips = {}
    for i, colour in enumerate([(255, 40, 40), (40, 255, 40), (40, 40, 255)]):
        v = moving_square_video(T=12, H=48, W=48, colour=colour, seed=i)
        clips[f"sq{i}-a"], clips[f"sq{i}-b"] = (v, 18), (v, 35)
    for i in range(2):
        clips[f"noise{i}"] = (rng.integers(0, 256, (12, 48, 48, 3), dtype=np.uint8), 18)
    recs = []
    for cid, (v, crf) in clips.items():
        write_video(c.clip_path(cid), v, 8.0, crf=crf)
        recs.append(ClipRecord(id=cid, path=f"clips/{cid}.mp4", source_kind="synthetic", duration_s=1.5, fps=8.0,
                               width=48, height=48, num_frames=12, license_id="CC0-1.0", source_url=f"x://{cid}",
                               author="t", attribution="", sha256=sha256_file(c.clip_path(cid))))
    c.append(recs)
    return c


def test_embed_cli_writes_unit_vectors_and_resumes(corpus):
    import pandas as pd

    r = skyloom("corpus", "embed", str(corpus.root), "--json", "--set", "executor=local")
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["embedded"] == 8
    df = pd.read_parquet(corpus.root / "embeddings.parquet")
    x = np.stack(df["vector"].to_list())
    assert x.shape == (8, 192) and np.allclose(np.linalg.norm(x, axis=1), 1.0, atol=1e-5)
    assert (df["embedder"] == "pixels-8").all() and df["embedder_version"].str.contains('"weights": "none"').all()
    r2 = skyloom("corpus", "embed", str(corpus.root), "--json", "--set", "executor=local")
    assert json.loads(r2.stdout)["embedded"] == 0


def _semdedup_reference(ids, x, assign, cent, eps):
    """SemDeDup's rule written plainly: per cluster, farthest from the centroid first, drop a clip
    whose best cosine to the clips kept so far is >= 1 - eps."""
    dup = {}
    for j in sorted(set(assign.tolist())):
        members = [i for i in range(len(ids)) if assign[i] == j]
        members.sort(key=lambda i: float(x[i] @ cent[j]))
        kept = []
        for i in members:
            best = max((float(x[i] @ x[k]) for k in kept), default=-1.0)
            dup[ids[i]] = best >= 1 - eps
            if not dup[ids[i]]:
                kept.append(i)
    return dup


def test_semdedup_marks_the_reencoded_copies_and_matches_the_reference(corpus):
    from skyloom.datagen.curate import embed

    r = skyloom("corpus", "semdedup", str(corpus.root), "--eps", "0.02", "--clusters", "3", "--json")
    assert r.returncode == 0, r.stderr
    marks = embed.SideTable(corpus.root, embed.SEMDEDUP).rows()
    for i in range(3):  # each pair: exactly one of the two copies is the duplicate
        assert marks[f"sq{i}-a"]["semantic_duplicate"] != marks[f"sq{i}-b"]["semantic_duplicate"]
    assert not marks["noise0"]["semantic_duplicate"] and not marks["noise1"]["semantic_duplicate"]
    assert json.loads(r.stdout)["duplicates"] == 3
    # the same rule, written plainly, on the same clustering
    ids, x, _ = embed.load_embeddings(corpus)
    cent, assign = embed.kmeans(x, 3, seed=0)
    res = embed.semantic_dedup(corpus, eps=0.02, clusters=3)
    assert {k: v["semantic_duplicate"] for k, v in res.marks.items()} == _semdedup_reference(ids, x, assign, cent, 0.02)
    # filters see it
    from skyloom.datagen.curate.select import run_filter

    f = run_filter(corpus, ["semantic_duplicate == false"], "nosem")
    assert f.passed == 5


def test_numpy_kmeans_fallback_partitions(monkeypatch):
    from skyloom.datagen.curate import embed, index

    rng = np.random.default_rng(0)
    centres = np.eye(4)[:3]
    x = np.concatenate([c + 0.05 * rng.normal(size=(20, 4)) for c in centres]).astype(np.float32)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    monkeypatch.setattr(index, "have_faiss", lambda: False)
    _, assign = embed.kmeans(x, 3)
    assert sorted(len(set(assign[i * 20:(i + 1) * 20].tolist())) for i in range(3)) == [1, 1, 1]
    assert len(set(assign.tolist())) == 3


def test_search_by_clip_and_by_text_equal_brute_force(corpus, tmp_path):
    from skyloom.datagen.curate.embed import EmbedConfig, EmbedError, build_extractor, run_embed, search
    from skyloom.eval.features.clip import TINY_VIT_B_32

    r = skyloom("corpus", "search", str(corpus.root), "--clip", "sq0-a", "-k", "3", "--json")
    assert r.returncode == 0, r.stderr
    hits = json.loads(r.stdout)
    assert hits[0]["id"] == "sq0-b" and len(hits) == 3 and "sq0-a" not in [h["id"] for h in hits]
    bad = skyloom("corpus", "search", str(corpus.root), "--text", "a red square")
    assert bad.returncode == 2 and "no text encoder" in bad.stderr and "Traceback" not in bad.stderr
    # a CLIP-like tower (random init): text search ranks clips by cosine to the text embedding
    cfg = EmbedConfig(extractor="clip", options={"random_init": True, "model_cfg": TINY_VIT_B_32}, executor="local")
    run_embed(corpus, cfg)
    got = search(corpus, text="a red square moving right", k=8)
    ex = build_extractor(cfg)
    from skyloom.datagen.curate.embed import load_embeddings

    ids, x, _ = load_embeddings(corpus)
    q = ex.encode_text(["a red square moving right"])[0]
    ref = sorted(zip(ids, x @ (q / np.linalg.norm(q)), strict=True), key=lambda t: -t[1])
    assert [h["id"] for h in got] == [i for i, _ in ref]
    assert np.allclose([h["score"] for h in got], [s for _, s in ref], atol=1e-4)
    with pytest.raises(EmbedError, match="exactly one"):
        search(corpus, text="x", clip="sq0-a")
