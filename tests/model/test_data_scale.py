"""Training data at scale (issue 29): the columnar training index, worker shards, the bounded clip cache."""

import dataclasses

import numpy as np
import pytest

from skyloom.config import ConfigError
from skyloom.corpus import Caption, ClipRecord, Corpus, CorpusError
from skyloom.model.config import Bucket, DataConfig
from skyloom.model.data import (
    BatchLoader,
    ClipCache,
    CorpusVideoDataset,
    assign_bucket,
    caption_candidates,
    make_loader,
)
from skyloom.model.data_index import build_index, index_captions, read_index_shard, shard_ranks, write_index
from tests.model.helpers import make_square_corpus

KINDS = ("dense", "short", "vlm", "heuristic", "")


def _random_records(n: int, seed: int = 0) -> list[ClipRecord]:
    rng = np.random.default_rng(seed)
    out = []
    for i in range(n):
        caps = tuple(Caption(f"c{j}", str(rng.choice(KINDS)), "" if rng.random() < 0.15 else f"t{i}-{j}")
                     for j in range(int(rng.integers(0, 6))))
        w, h = [(32, 32), (64, 36), (36, 64), (128, 128), (20, 20)][int(rng.integers(5))]
        out.append(ClipRecord(id=f"clip-{i:05d}", path=f"clips/clip-{i:05d}.mp4", source_kind="synthetic",
                              duration_s=1.0, fps=8.0, width=w, height=h, num_frames=8, license_id="CC0-1.0",
                              source_url="x", author="a", attribution="", sha256="0" * 64, captions=caps,
                              split=str(rng.choice(["train", "train", "val"]))))
    return out


@pytest.mark.parametrize("mode", ["newest", "random"])
@pytest.mark.parametrize("kinds", [("dense", "short", "vlm"), ("short",), ("vlm", "dense")])
def test_vectorised_captions_equal_caption_candidates_of_every_record(mode, kinds):
    recs = _random_records(400, seed=len(kinds))
    import pyarrow as pa

    from skyloom.corpus import MANIFEST_SCHEMA

    col = pa.Table.from_pylist([r.to_row() for r in recs], schema=MANIFEST_SCHEMA).column("captions")
    got = index_captions(col, kinds, mode).to_pylist()
    want = [caption_candidates(r, kinds, mode) for r in recs]
    assert [g or [""] for g in got] == want
    assert any(len(w) > 1 for w in want) == (mode == "random" and len(kinds) > 1)  # the draw is exercised


def test_index_from_columns_equals_the_records_after_revisions_and_deletions(tmp_path):
    c = Corpus.create(tmp_path / "c")
    recs = _random_records(120)
    c.append(recs[:80])
    c.append(recs[80:])
    c.add_captions({"clip-00003": [Caption("late", "dense", "a newer dense caption")]})
    c.update([dataclasses.replace(c.get(i), split=s) for i, s in
              [("clip-00003", "train"), ("clip-00005", "val"), ("clip-00006", "train")]])
    c.delete(["clip-00007", "clip-00100"], reason="test", remove_files=False)
    buckets = (Bucket(32, 32, 8, 4), Bucket(24, 40, 8, 2), Bucket(40, 24, 8, 2), Bucket(64, 64, 8, 2))
    cfg = DataConfig(buckets=buckets, caption_mode="random")
    idx = build_index(c, cfg)
    want = c.records(split="train")
    assert idx.ids.to_pylist() == [r.id for r in want]
    assert idx.paths.to_pylist() == [r.path for r in want]
    assert idx.bucket.tolist() == [assign_bucket(r.width, r.height, buckets) for r in want]
    assert [idx.caption_candidates(i) for i in range(len(idx))] == \
        [caption_candidates(r, cfg.caption_kinds, "random") for r in want]
    assert "a newer dense caption" in idx.caption_candidates(idx.ids.to_pylist().index("clip-00003"))
    assert len(build_index(c, dataclasses.replace(cfg, max_clips=10))) == 10
    with pytest.raises(CorpusError, match="no clips in split 'test'"):
        build_index(c, dataclasses.replace(cfg, split="test"))


@pytest.mark.parametrize("world", [1, 2, 3, 7])
def test_worker_shards_are_disjoint_covering_balanced_and_deterministic(world):
    bucket = np.random.default_rng(world).integers(0, 4, 1000).astype(np.int16)
    rank = shard_ranks(bucket, world)
    assert rank.min() >= 0 and rank.max() < world and len(rank) == len(bucket)  # each clip on exactly one rank
    for b in range(4):
        per = np.bincount(rank[bucket == b], minlength=world)
        assert per.max() - per.min() <= 1  # per bucket, shards differ by at most one clip
    assert np.array_equal(rank, shard_ranks(bucket.copy(), world))  # a pure function of the index


def test_each_worker_reads_only_its_row_groups_and_never_the_manifest(tmp_path):
    c = make_square_corpus(tmp_path / "c", n=9, T=8, size=16)
    cfg = DataConfig(buckets=(Bucket(16, 16, 4, 2),))
    full = build_index(c, cfg)
    path = write_index(full, tmp_path / "run" / "data" / "index.parquet", 3, cfg, corpus=str(c.root))
    shards = []
    for r in range(3):
        shard, groups = read_index_shard(path, r, 3, cfg)
        assert groups == 1  # its own row group only
        shards.append(set(shard.ids.to_pylist()))
    assert set.union(*shards) == set(full.ids.to_pylist()) and sum(map(len, shards)) == len(full)
    with pytest.raises(ConfigError, match="written for 3 workers"):
        read_index_shard(path, 0, 2, cfg)
    with pytest.raises(ConfigError, match="other data settings"):
        read_index_shard(path, 0, 3, dataclasses.replace(cfg, split="val"))
    # the workers train from the index alone: without the manifest their batches come from their shard
    for p in [*c.part_files(), c.snapshot_path]:
        p.unlink()
    for r in range(3):
        loader = make_loader(c.root, cfg, seed=1, rank=r, world_size=3, index_path=path)
        seen = {i for _ in range(4) for i in next(loader).ids}
        assert seen <= shards[r]
    with pytest.raises(CorpusError, match="cannot feed 10 workers"):
        write_index(full, tmp_path / "i10.parquet", 10, cfg)


def test_multi_worker_resume_from_rank0_state_continues_every_rank(tmp_path):
    c = make_square_corpus(tmp_path / "c", n=11, T=8, size=16)
    cfg = DataConfig(buckets=(Bucket(16, 16, 4, 2),), cache_clips=False)
    whole = {}
    for r in range(2):
        ld = make_loader(c.root, cfg, 3, r, 2)
        whole[r] = [next(ld).ids for _ in range(9)]  # 9 > an epoch (3 batches per rank)
    first = make_loader(c.root, cfg, 3, 0, 2)
    for _ in range(4):
        next(first)
    state = first.sampler.state_dict()  # what a checkpoint stores: rank 0's
    for r in range(2):
        ld = make_loader(c.root, cfg, 3, r, 2)
        ld.sampler.load_state_dict(state)
        assert [next(ld).ids for _ in range(5)] == whole[r][4:]
    ids0 = {i for b in whole[0][:3] for i in b}
    ids1 = {i for b in whole[1][:3] for i in b}
    assert not ids0 & ids1  # the two ranks see disjoint clips


def test_clip_cache_is_lru_and_bounded_by_bytes():
    cache = ClipCache(max_bytes=3000)
    arr = {k: np.full(1000, k, np.uint8) for k in range(5)}
    for k in range(3):
        cache.put(k, arr[k])
    assert cache.get(0) is arr[0]  # 0 is now the most recent
    cache.put(3, arr[3])  # evicts 1, the least recently used
    assert cache.get(1) is None and cache.get(0) is arr[0] and cache.get(2) is arr[2] and cache.bytes == 3000
    cache.put(4, np.zeros(3001, np.uint8))  # larger than the bound: not kept, nothing evicted
    assert cache.get(4) is None and len(cache) == 3 and cache.evictions == 1


def test_dataset_cache_stays_under_its_bound_and_zero_turns_it_off(tmp_path):
    c = make_square_corpus(tmp_path / "c", n=12, T=8, size=16)
    per_clip = 8 * 16 * 16 * 3  # the decoded frames kept per clip (T=8 at 16x16)
    mib = 1 << 20
    cfg = DataConfig(buckets=(Bucket(16, 16, 4, 2),), cache_mb=1)
    ds = CorpusVideoDataset(c, cfg)
    ds.cache.max_bytes = 5 * per_clip  # five clips' worth (cache_mb counts whole MiB)
    loader = BatchLoader(ds, seed=0)
    for _ in range(30):
        next(loader)
        assert ds.cache.bytes <= 5 * per_clip
    assert len(ds.cache) == 5 and ds.cache.evictions > 0 and ds.cache.hits > 0
    assert CorpusVideoDataset(c, cfg).cache.max_bytes == mib
    for off in (dataclasses.replace(cfg, cache_mb=0), dataclasses.replace(cfg, cache_clips=False)):
        ds0 = CorpusVideoDataset(c, off)
        loader0 = BatchLoader(ds0, seed=0)
        batches0 = [next(loader0) for _ in range(5)]
        assert len(ds0.cache) == 0
        loader1 = BatchLoader(CorpusVideoDataset(c, cfg), seed=0)
        assert all(np.array_equal(a.video, next(loader1).video) for a in batches0)  # the cache changes no frame
    with pytest.raises(ConfigError, match="cache_mb"):
        CorpusVideoDataset(c, dataclasses.replace(cfg, cache_mb=-1))
