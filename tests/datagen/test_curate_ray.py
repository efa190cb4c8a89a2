"""The curation jobs as Ray Data jobs give what the in-process runs give (the `auto` executor's other side)."""

from __future__ import annotations

import numpy as np
import pytest


@pytest.mark.slow
def test_dedup_annotate_embed_on_ray_equal_in_process(tmp_path, ray_local):
    import pandas as pd

    from skyloom.corpus import ClipRecord, Corpus
    from skyloom.datagen.curate.annotate import AnnotateConfig, run_annotate
    from skyloom.datagen.curate.dedup import DedupConfig, run_dedup
    from skyloom.datagen.curate.embed import EmbedConfig, run_embed
    from skyloom.fsutil import sha256_file
    from skyloom.video import write_video
    from tests.conftest import moving_square_video

    corpora = []
    for name in ("ray", "local"):
        c = Corpus.create(tmp_path / name)
        recs = []
        for i in range(4):
            v = moving_square_video(T=12, H=48, W=64, seed=i // 2)  # pairs 0-1 and 2-3 are the same video
            cid = f"c{i}"
            write_video(c.clip_path(cid), v[:, :, ::-1] if i % 2 else v, 8.0, crf=20 + 10 * (i % 2))
            recs.append(ClipRecord(id=cid, path=f"clips/{cid}.mp4", source_kind="synthetic", duration_s=1.5, fps=8.0,
                                   width=64, height=48, num_frames=12, license_id="CC0-1.0", source_url=f"x://{cid}",
                                   author="t", attribution="", sha256=sha256_file(c.clip_path(cid))))
        c.append(recs)
        ex = "ray" if name == "ray" else "local"
        d = run_dedup(c, DedupConfig(executor=ex))
        assert d.fingerprinted == 4
        run_annotate(c, AnnotateConfig(annotators=("camera_motion", "technical"), executor=ex))
        run_embed(c, EmbedConfig(executor=ex))
        corpora.append(c)
    ray_c, local_c = corpora
    for f in ("dedup.parquet", "annotations.parquet", "embeddings.parquet"):
        a = pd.read_parquet(ray_c.root / f).drop(columns=["sha256"], errors="ignore")
        b = pd.read_parquet(local_c.root / f).drop(columns=["sha256"], errors="ignore")
        num = [col for col in a.columns if a[col].dtype.kind == "f"]
        other = [col for col in a.columns if col not in num and col != "vector"]
        assert a[other].equals(b[other]), f
        assert np.allclose(a[num].to_numpy(), b[num].to_numpy()), f
    assert {r.id: r.meta["dedup"]["group"] for r in ray_c.records()} == \
        {r.id: r.meta["dedup"]["group"] for r in local_c.records()}
