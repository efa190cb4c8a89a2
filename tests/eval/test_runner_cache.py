"""Feature cache: per-input keys, identity-dependent extractor keys, damaged entries, sequences."""

from __future__ import annotations

import numpy as np

from skyloom.eval.features.cache import CachedExtractor, FeatureCache, array_key, extractor_key


class Counting:
    name, weights, dim = "count", "none", 3
    preprocessing = {"x": 1}

    def __init__(self, sequence=False):
        self.calls = 0
        self.sequence_frames = sequence

    def encode_videos(self, v):
        self.calls += len(v)
        return np.asarray(v, float).mean(axis=(1, 2, 3))  # (N, 3)

    def encode_frames(self, f):
        self.calls += len(f)
        out = np.asarray(f, float).mean(axis=(1, 2))  # (N, 3)
        return out + np.arange(len(f))[:, None] if self.sequence_frames else out

    def encode_text(self, texts):
        self.calls += len(texts)
        return np.array([[len(t), 0.0, 1.0] for t in texts])


def test_partial_batches_encode_only_misses(tmp_path):
    ex = Counting()
    c = CachedExtractor(ex, FeatureCache(tmp_path))
    rng = np.random.default_rng(0)
    v = rng.integers(0, 255, (4, 3, 8, 8, 3), dtype=np.uint8)
    a = c.encode_videos(v[:2])
    b = c.encode_videos(v)
    assert ex.calls == 4 and np.allclose(b[:2], a)
    assert np.allclose(b, ex.encode_videos(v).astype(np.float32))
    assert c.cache.stats == {"hits": 2, "misses": 4, "encoded": 4}
    c.encode_text(["a", "bb"]), c.encode_text(["bb"])
    assert ex.calls == 4 + 4 + 2


def test_identity_changes_the_key_and_damaged_entries_recompute(tmp_path):
    a, b = Counting(), Counting()
    b.weights = "other"
    assert extractor_key(a) != extractor_key(b)
    cache = FeatureCache(tmp_path)
    ca = CachedExtractor(a, cache)
    v = np.zeros((1, 2, 4, 4, 3), np.uint8)
    ca.encode_videos(v)
    entry = next(tmp_path.rglob("*.npy"))
    entry.write_bytes(b"torn")
    assert np.allclose(CachedExtractor(a, cache).encode_videos(v), 0) and a.calls == 2
    off = CachedExtractor(Counting(), FeatureCache(tmp_path, enabled=False))
    off.encode_videos(v), off.encode_videos(v)
    assert off.inner.calls == 2


def test_sequence_extractors_are_cached_per_clip(tmp_path):
    ex = Counting(sequence=True)
    c = CachedExtractor(ex, FeatureCache(tmp_path))
    f = np.random.default_rng(1).integers(0, 255, (5, 4, 4, 3), dtype=np.uint8)
    out = c.encode_frames(f)
    assert out.shape == (5, 3) and np.allclose(out, ex.encode_frames(f))
    assert np.allclose(c.encode_frames(f), out) and ex.calls == 10  # second call: a hit
    assert not np.allclose(c.encode_frames(f[::-1]), out[::-1])  # another order is another input
    assert array_key(f) != array_key(f[::-1]) and array_key(f) != array_key(f.astype(np.int16))
