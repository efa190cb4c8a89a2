"""Fréchet distance and KVD against the scipy sqrtm reference and hand computations."""

from __future__ import annotations

import numpy as np
import pytest

from skyloom.eval.functional import frechet


def _sets(n: int, d: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    a = rng.normal(size=(d, d)) / np.sqrt(d)
    x = rng.normal(size=(n, d)) @ a
    y = rng.normal(size=(n, d)) @ (a + 0.1 * rng.normal(size=(d, d)) / np.sqrt(d)) * 1.2 + 0.3
    return x, y


@pytest.mark.parametrize("n,d", [(300, 16), (1000, 400)])
def test_frechet_matches_scipy_sqrtm(n, d):
    x, y = _sets(n, d)
    s1, s2 = frechet.gaussian_stats(x), frechet.gaussian_stats(y)
    ours = frechet.frechet_distance(*s1, *s2)
    ref = frechet.frechet_distance_sqrtm(*s1, *s2)
    assert ref > 1.0
    assert abs(ours - ref) / ref < 1e-6


def test_frechet_singular_covariance_falls_back():
    x, y = _sets(50, 80)  # N < D: Σ singular, Cholesky fails
    s1, s2 = frechet.gaussian_stats(x), frechet.gaussian_stats(y)
    ours = frechet.frechet_distance(*s1, *s2)
    ref = frechet.frechet_distance_sqrtm(*s1, *s2)
    assert abs(ours - ref) / ref < 1e-5


def test_identical_sets_zero_and_moments_agree():
    x, _ = _sets(500, 32)
    mu, sig = frechet.gaussian_stats(x)
    assert abs(frechet.frechet_distance(mu, sig, mu, sig)) < 1e-9 * np.trace(sig)
    n = x.shape[0]
    mu2, sig2 = frechet.stats_from_moments(n, x.sum(0), x.T @ x)
    np.testing.assert_allclose(mu2, mu, rtol=1e-12)
    np.testing.assert_allclose(sig2, sig, atol=1e-12)
    np.testing.assert_allclose(frechet.gaussian_stats(x, ddof=1)[1], np.cov(x, rowvar=False), atol=1e-12)


def test_frechet_mean_shift_only():
    x, _ = _sets(400, 8)
    mu, sig = frechet.gaussian_stats(x)
    shift = np.arange(8.0)
    assert frechet.frechet_distance(mu + shift, sig, mu, sig) == pytest.approx(shift @ shift, rel=1e-9)


def test_frechet_bad_input():
    with pytest.raises(ValueError, match="sigma2"):
        frechet.frechet_distance(np.zeros(3), np.eye(3), np.zeros(3), np.eye(4))
    with pytest.raises(ValueError, match="NaN"):
        frechet.frechet_distance(np.zeros(2), np.eye(2) * np.nan, np.zeros(2), np.eye(2))


def _mmd_loop(x, y):
    d = x.shape[1]

    def k(a, b):
        return (a @ b / d + 1.0) ** 3

    m, n = len(x), len(y)
    sxx = sum(k(x[i], x[j]) for i in range(m) for j in range(m) if i != j) / (m * (m - 1))
    syy = sum(k(y[i], y[j]) for i in range(n) for j in range(n) if i != j) / (n * (n - 1))
    sxy = sum(k(x[i], y[j]) for i in range(m) for j in range(n)) / (m * n)
    return sxx + syy - 2 * sxy


def test_mmd_matches_hand_loop():
    rng = np.random.default_rng(1)
    x, y = rng.normal(size=(7, 3)), rng.normal(size=(5, 3)) + 0.5
    assert frechet.mmd2_unbiased(x, y) == pytest.approx(_mmd_loop(x, y), rel=1e-12)


def test_kvd_unbiased_near_zero_same_distribution():
    rng = np.random.default_rng(2)
    same = [frechet.kvd(rng.normal(size=(40, 16)), rng.normal(size=(40, 16)))[0] for _ in range(30)]
    shifted = frechet.kvd(rng.normal(size=(40, 16)), rng.normal(size=(40, 16)) + 0.5)[0]
    assert abs(np.mean(same)) < 0.1 * shifted  # unbiased: averages to ~0 even at N=40
    assert min(same) < 0 < max(same)  # can be negative: no positive bias
    mean, std = frechet.kvd(rng.normal(size=(60, 8)), rng.normal(size=(60, 8)) + 1, num_subsets=5, subset_size=30)
    assert mean > 0 and std >= 0
    with pytest.raises(ValueError, match="at least 2"):
        frechet.mmd2_unbiased(np.zeros((1, 3)), np.zeros((4, 3)))
