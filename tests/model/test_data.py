import numpy as np
import pytest

from skyloom.corpus import Caption, ClipRecord
from skyloom.model.config import Bucket, DataConfig
from skyloom.model.data import (
    BatchLoader,
    BucketBatchSampler,
    CorpusVideoDataset,
    assign_bucket,
    caption_candidates,
    caption_of,
)
from tests.model.helpers import make_square_corpus


def _rec(caps):
    return ClipRecord(id="a", path="clips/a.mp4", source_kind="synthetic", duration_s=1, fps=8, width=32, height=32,
                      num_frames=8, license_id="CC0-1.0", source_url="x", author="a", attribution="", sha256="0",
                      captions=tuple(Caption("c", k, t) for k, t in caps))


def test_caption_is_newest_dense_or_short_else_empty():
    assert caption_of(_rec([("short", "old"), ("dense", "mid"), ("vlm", "newest vlm")])) == "mid"
    assert caption_of(_rec([("dense", "d1"), ("short", "s2")])) == "s2"
    assert caption_of(_rec([("vlm", "x")])) == ""
    assert caption_of(_rec([])) == ""
    assert caption_candidates(_rec([("dense", "d"), ("short", "s")]), ("dense", "short"), "random") == ["d", "s"]
    assert caption_candidates(_rec([]), ("dense", "short"), "random") == [""]


def test_bucket_assignment_by_aspect_ratio():
    buckets = (Bucket(32, 32, 8, 4), Bucket(24, 40, 8, 4), Bucket(40, 24, 8, 4), Bucket(64, 64, 8, 2))
    assert assign_bucket(1280, 720, buckets) == 1  # landscape
    assert assign_bucket(720, 1280, buckets) == 2  # portrait
    assert assign_bucket(256, 256, buckets) == 3  # square, large enough for 64x64
    assert assign_bucket(48, 48, buckets) == 0  # square, would need upscaling to 64


def test_sampler_is_deterministic_resumable_and_shards_by_rank():
    bucket_of = [0] * 10 + [1] * 7
    buckets = (Bucket(batch_size=3), Bucket(batch_size=2))
    a = BucketBatchSampler(bucket_of, buckets, seed=5)
    full = [next(a) for _ in range(12)]  # crosses an epoch boundary
    for b, idx, _ in full:
        assert len(idx) == buckets[b].batch_size and all(bucket_of[i] == b for i in idx)
    b = BucketBatchSampler(bucket_of, buckets, seed=5)
    head = [next(b) for _ in range(4)]
    state = b.state_dict()
    c = BucketBatchSampler(bucket_of, buckets, seed=5)
    c.load_state_dict(state)
    assert head + [next(c) for _ in range(8)] == full
    assert BucketBatchSampler(bucket_of, buckets, seed=6).batches(0) != a.batches(0)
    assert a.epoch_len == 10 // 3 + 7 // 2 == len(a.batches(0)) == len(a.batches(1))  # every epoch as long
    assert c.drawn() == 12 and c.epoch == 1  # 12 batches: one epoch of 6 and half the next


def test_dataset_batches_from_a_corpus(tmp_path):
    c = make_square_corpus(tmp_path / "c", n=5, T=8, size=24)
    ds = CorpusVideoDataset(c, DataConfig(buckets=(Bucket(16, 16, 6, 2),), frame_stride=1))
    assert len(ds) == 5 and all(ds.captions(i)[0].startswith("a ") for i in range(5))
    batch = next(BatchLoader(ds, seed=0))
    assert batch.video.shape == (2, 6, 16, 16, 3) and batch.video.dtype == np.uint8
    assert len(batch.captions) == 2 and batch.bucket == 0
    with pytest.raises(ValueError, match="no clips in split 'test'"):
        CorpusVideoDataset(c, DataConfig(split="test"))
    with pytest.raises(ValueError, match="buckets"):
        CorpusVideoDataset(c, DataConfig(buckets=()))


def test_default_caption_kinds_use_vlm_captions_of_real_footage_but_not_heuristic_ones():
    from skyloom.model.config import TrainConfig

    kinds = tuple(TrainConfig().data.caption_kinds)
    assert caption_candidates(_rec([("vlm", "a dog runs on a beach")]), kinds, "newest") == ["a dog runs on a beach"]
    assert caption_candidates(_rec([("heuristic", "Heuristic description: green tones")]), kinds, "newest") == [""]
    assert caption_candidates(_rec([("short", "s"), ("dense", "d")]), kinds, "random") == ["d", "s"]
