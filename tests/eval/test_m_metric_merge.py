"""Metric state: shards merge exactly (any split, any order, through pickle and Ray), results
record how they were computed, reference statistics survive resets and round-trip to disk."""

from __future__ import annotations

import pickle

import numpy as np
import pytest

from skyloom.eval.features.base import get_extractor
from skyloom.eval.functional import frechet
from skyloom.eval.metrics import FVD, KVD, METRICS, TemporalFlickering
from skyloom.eval.metrics.fvd import FVDConfig
from skyloom.eval.metrics.temporal import TemporalFlickeringConfig
from tests.conftest import moving_square_video

EVERY = TemporalFlickeringConfig(protocol="all")  # every video scored (the static-only default leaves NaNs)


def _videos(n: int, seed: int, colour=(255, 40, 40), T: int = 16) -> np.ndarray:
    return np.stack([moving_square_video(T, 24, 24, colour=colour, seed=seed * 100 + i) for i in range(n)])


def _feats(n: int, d: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).normal(size=(n, d)) * np.linspace(0.5, 2, d) + seed


def test_fvd_shards_merge_exactly():
    real, fake = _feats(90, 12, 1), _feats(90, 12, 2)
    batches = [slice(i, i + 10) for i in range(0, 90, 10)]
    single = FVD(extractor="pixels")
    for b in batches:
        single.update_features(real[b], real=True)
        single.update_features(fake[b])
    shards = [FVD(extractor="pixels") for _ in range(3)]
    for i, b in enumerate(batches):  # batches dealt round-robin to 3 "workers"
        shards[i % 3].update_features(real[b], real=True)
        shards[(i + 1) % 3].update_features(fake[b])
    shards = [pickle.loads(pickle.dumps(s)) for s in shards]  # as Ray ships them
    a = pickle.loads(pickle.dumps(shards[2])).merge(shards[0]).merge(shards[1])

    def cp(m):
        return pickle.loads(pickle.dumps(m))

    b = cp(shards[0]).merge(cp(shards[1]).merge(cp(shards[2])))  # another merge tree
    assert a.compute().value == single.compute().value  # bitwise: split and order do not matter
    assert b.compute().value == single.compute().value
    direct = frechet.frechet_distance_features(fake, real)
    assert a.compute().value == pytest.approx(direct, rel=1e-10)
    r = a.compute()
    assert (r.n, r.details["n_real"], r.details["protocol"]) == (90, 90, "fvd90_16f")
    assert r.details["duplicates_generated"] == 0 and not r.details["rank_deficient"]


def test_fvd_reports_duplicated_samples():
    m = FVD(extractor="pixels")
    real, fake = _feats(50, 4, 1), _feats(25, 4, 2)
    m.update_features(real, real=True)
    m.update_features(np.concatenate([fake, fake[:10]]))  # 10 clips submitted twice
    assert m.compute().details["duplicates_generated"] == 10


def test_fvd_identical_sets_zero_and_colour_swap_moves_it():
    m = FVD(extractor="pixels")
    vids = _videos(40, 0)
    m.update(vids, real=True)
    m.update(vids)
    assert m.compute().value == pytest.approx(0.0, abs=1e-9)
    m.reset()  # keeps the reference statistics
    m.update(_videos(40, 1))
    same_kind = m.compute().value
    m.reset()
    m.update(_videos(40, 1)[..., ::-1].copy())  # RGB -> BGR
    assert m.compute().value > 5 * same_kind
    m.reset(keep_reference=False)
    with pytest.raises(ValueError, match="real"):
        m.update(vids) or m.compute()


def test_fvd_reference_cache_round_trip(tmp_path):
    m = FVD(FVDConfig(num_frames=12), extractor="pixels")
    m.update(_videos(12, 3), real=True)
    m.update(_videos(12, 4))
    path = m.save_reference(tmp_path / "ref.npz")
    m2 = FVD(FVDConfig(num_frames=12), extractor="pixels")
    m2.load_reference(path)
    m2.update(_videos(12, 4))
    assert m2.compute().value == m.compute().value
    with pytest.raises(ValueError, match="computed differently"):
        FVD(FVDConfig(num_frames=16), extractor="pixels").load_reference(path)


def test_fvd_real_window_and_short_clip():
    m = FVD(FVDConfig(num_frames=16), extractor="pixels")
    long = _videos(1, 5, T=30)[0]
    w = m.clip(long, real=True)
    assert w.shape[0] == 16 and any(np.array_equal(w, long[o:o + 16]) for o in range(15))
    assert np.array_equal(m.clip(long, real=False), long[:16])
    mixed = [_videos(1, 6)[0], np.zeros((16, 20, 30, 3), np.uint8)]  # different frame sizes in one update
    m.update(mixed)
    assert m._sides["fake"]["n"] == 2
    with pytest.raises(ValueError, match="needs 16"):
        m.update(_videos(1, 5, T=8))


def test_per_item_metric_merge_and_record():
    vids = list(_videos(6, 7)) + [np.repeat(_videos(1, 8)[:, :1], 16, axis=1)[0]]
    ids = [f"v{i}" for i in range(7)]
    single = TemporalFlickering(EVERY)  # every video scored (the static-only default leaves NaNs)
    single.update(vids, item_ids=ids)
    parts = [TemporalFlickering(EVERY), TemporalFlickering(EVERY)]
    parts[0].update(vids[4:], item_ids=ids[4:])
    parts[1].update(vids[:4], item_ids=ids[:4])
    merged = pickle.loads(pickle.dumps(parts[0])).merge(parts[1])
    r1, r2 = single.compute(), merged.compute()
    assert r1.value == r2.value and r1.per_item == r2.per_item
    assert r1.per_item["v6"] == 1.0  # static video
    d = r1.to_dict()
    for k in ("value", "n", "higher_is_better", "metric_version", "extractor", "weights", "preprocessing",
              "per_item", "details", "stderr"):
        assert k in d
    assert d["weights"] == "none" and d["n"] == 7


def test_kvd_merge_and_direction():
    real, fake = _feats(40, 6, 1), _feats(40, 6, 1)[::-1] + 0.0
    a, b, single = KVD(extractor="pixels"), KVD(extractor="pixels"), KVD(extractor="pixels")
    single.update_features(real, real=True)
    single.update_features(fake)
    a.update_features(real[:25], real=True)
    b.update_features(real[25:], real=True)
    b.update_features(fake[:10])
    a.update_features(fake[10:])
    assert b.merge(a).compute().value == single.compute().value
    rng = np.random.default_rng(3)
    near, far = KVD(extractor="pixels"), KVD(extractor="pixels")
    for m, shift in ((near, 0.0), (far, 1.0)):
        m.update_features(rng.normal(size=(40, 6)), real=True)
        m.update_features(rng.normal(size=(40, 6)) + shift)
    assert far.compute().value > 0.1 > abs(near.compute().value)


def test_merge_refuses_different_extractors():
    a, b = FVD(extractor=get_extractor("pixels", size=8)), FVD(extractor=get_extractor("pixels", size=4))
    with pytest.raises(ValueError, match="extractor differs"):
        a.merge(b)
    with pytest.raises(ValueError, match="cannot merge"):
        a.merge(TemporalFlickering())


def test_registry_names_and_errors():
    for n in ("fvd", "kvd", "clipsim", "clipsim_x100", "subject_consistency", "background_consistency",
              "temporal_flickering", "clip_temp", "warping_error", "physics_iq", "physics_trajectory",
              "dynamic_degree"):
        assert n in METRICS
    with pytest.raises(ValueError, match="Did you mean 'fvd'"):
        METRICS.get("fdv")


def test_shards_through_ray(ray_local):
    ray = ray_local

    @ray.remote
    def shard(seed: int):
        m = METRICS.build("temporal_flickering", options={"protocol": "all"})
        m.update(_videos(2, seed), item_ids=[f"{seed}-{i}" for i in range(2)])
        return m

    parts = ray.get([shard.remote(s) for s in range(3)])
    merged = parts[0]
    for p in parts[1:]:
        merged.merge(p)
    single = TemporalFlickering(EVERY)
    for s in range(3):
        single.update(_videos(2, s), item_ids=[f"{s}-{i}" for i in range(2)])
    assert merged.compute().value == single.compute().value and merged.compute().n == 6
