"""Pure functions for distribution distances between feature sets: Fréchet distance and KVD.

Fréchet distance between the Gaussians fitted to two feature sets (FVD when the features are
I3D video logits; Heusel et al. 2017, Unterthiner et al. 2018)::

    d² = ‖μ₁ − μ₂‖² + Tr(Σ₁ + Σ₂ − 2 (Σ₁ Σ₂)^½)

The trace of the matrix square root is computed from a symmetric eigenvalue problem instead of
``scipy.linalg.sqrtm``: with Σ₁ = L Lᵀ (Cholesky), Σ₁Σ₂ = L (Lᵀ Σ₂ L) L⁻¹ is similar to the
symmetric PSD matrix Lᵀ Σ₂ L, so ``Tr (Σ₁Σ₂)^½ = Σᵢ √λᵢ(Lᵀ Σ₂ L)``. A Cholesky plus an
eigenvalues-only ``eigh`` in float64 replace a Schur-based ``sqrtm`` (several times faster; the
same value to ~1e-12, see ``bench/metrics_throughput.py``).

KVD / KID (Bińkowski et al. 2018): unbiased MMD² with the polynomial kernel
``k(x, y) = (xᵀy / d + 1)³``::

    MMD²ᵤ = 1/(m(m−1)) Σ_{i≠j} k(xᵢ,xⱼ) + 1/(n(n−1)) Σ_{i≠j} k(yᵢ,yⱼ) − 2/(mn) Σ_{i,j} k(xᵢ,yⱼ)

It is unbiased, so it is ~0 (and can be slightly negative) for two samples of one distribution
even at small N, where FVD is inflated.

Example:
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> x = rng.normal(size=(500, 8))
    >>> mu, sigma = gaussian_stats(x)
    >>> round(frechet_distance(mu, sigma, mu, sigma), 9)
    0.0
"""

from __future__ import annotations

import numpy as np
import scipy.linalg

from skyloom.errors import InvalidInputError


def gaussian_stats(features: np.ndarray, ddof: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Mean and covariance of ``features`` (N, D) in float64.

    Args:
        features: one row per sample.
        ddof: 0 divides the covariance by N (StyleGAN-V's FVD), 1 by N−1 (``np.cov``).
    """
    x = np.asarray(features, dtype=np.float64)  # (N, D)
    if x.ndim != 2 or x.shape[0] < 1 + ddof:
        raise ValueError(f"features must be (N, D) with N > {ddof}, got shape {x.shape}")
    mu = x.mean(axis=0)  # (D,)
    xc = x - mu  # (N, D)
    sigma = xc.T @ xc / (x.shape[0] - ddof)  # (D, D)
    return mu, sigma


def stats_from_moments(n: float, s1: np.ndarray, s2: np.ndarray, ddof: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Mean and covariance from sufficient statistics: count, Σx (D,), Σxxᵀ (D, D).

    ``Σ = (Σxxᵀ − N μμᵀ) / (N − ddof)``; used by the mergeable FVD metric.
    """
    if n <= ddof:
        raise InvalidInputError(f"need more than {ddof} samples for a covariance, got {n}")
    mu = np.asarray(s1, np.float64) / n  # (D,)
    sigma = (np.asarray(s2, np.float64) - n * np.outer(mu, mu)) / (n - ddof)  # (D, D)
    return mu, (sigma + sigma.T) / 2


def _check_stats(mu1: np.ndarray, sigma1: np.ndarray, mu2: np.ndarray, sigma2: np.ndarray) -> None:
    d = mu1.shape[0]
    for name, arr, shape in (("mu2", mu2, (d,)), ("sigma1", sigma1, (d, d)), ("sigma2", sigma2, (d, d))):
        if arr.shape != shape:
            raise ValueError(f"{name} has shape {arr.shape}, expected {shape} (mu1 is ({d},))")
    for name, arr in (("mu1", mu1), ("mu2", mu2), ("sigma1", sigma1), ("sigma2", sigma2)):
        if not np.all(np.isfinite(arr)):
            raise ValueError(f"{name} contains NaN or inf: the features are broken")


def trace_sqrt_product(sigma1: np.ndarray, sigma2: np.ndarray) -> float:
    """``Tr (Σ₁ Σ₂)^½`` for symmetric PSD Σ₁, Σ₂ from one symmetric eigenvalue problem.

    With Σ₁ = L Lᵀ (Cholesky), Σ₁Σ₂ is similar to the symmetric PSD matrix Lᵀ Σ₂ L, whose
    eigenvalues (values only, no vectors) give the trace. A singular Σ₁ (fewer samples than
    dimensions) falls back to Σ₁^½ from ``eigh`` with negative eigenvalues clipped to 0.
    """
    try:
        low = scipy.linalg.cholesky(sigma1, lower=True, check_finite=False)  # (D, D) lower-triangular
        a = scipy.linalg.blas.dtrmm(1.0, low, sigma2, side=1, lower=1)  # Σ₂ L, triangular multiply
        m = scipy.linalg.blas.dtrmm(1.0, low, a, side=0, lower=1, trans_a=1)  # Lᵀ Σ₂ L, similar to Σ₁Σ₂
    except np.linalg.LinAlgError:
        lam, u = scipy.linalg.eigh(sigma1, check_finite=False)  # (D,), (D, D)
        s = (u * np.sqrt(np.clip(lam, 0.0, None))) @ u.T  # Σ₁^½, (D, D)
        m = s @ sigma2 @ s
    # eigenvalues only; LAPACK reads the lower triangle of the (numerically) symmetric m
    ev = scipy.linalg.eigh(m, eigvals_only=True, driver="evr", check_finite=False)  # (D,)
    return float(np.sqrt(np.clip(ev, 0.0, None)).sum())


def frechet_distance(mu1: np.ndarray, sigma1: np.ndarray, mu2: np.ndarray, sigma2: np.ndarray) -> float:
    """Fréchet distance ``‖μ₁−μ₂‖² + Tr(Σ₁ + Σ₂ − 2(Σ₁Σ₂)^½)`` (eigen-based, float64).

    Agrees with the ``scipy.linalg.sqrtm`` formulation (StyleGAN-V, cd-fvd) to ~1e-12 relative
    on well-conditioned covariances; exact 0 for identical statistics up to rounding.

    Raises:
        ValueError: mismatched shapes or non-finite statistics.
    """
    mu1, mu2 = np.asarray(mu1, np.float64), np.asarray(mu2, np.float64)
    sigma1, sigma2 = np.asarray(sigma1, np.float64), np.asarray(sigma2, np.float64)
    _check_stats(mu1, sigma1, mu2, sigma2)
    diff = mu1 - mu2
    tr = np.trace(sigma1) + np.trace(sigma2) - 2.0 * trace_sqrt_product(sigma1, sigma2)
    return float(diff @ diff + tr)


def frechet_distance_sqrtm(mu1: np.ndarray, sigma1: np.ndarray, mu2: np.ndarray, sigma2: np.ndarray) -> float:
    """Reference formulation with ``scipy.linalg.sqrtm`` (real part), as StyleGAN-V computes it.

    Kept for tests and the benchmark; use :func:`frechet_distance`.
    """
    mu1, mu2 = np.asarray(mu1, np.float64), np.asarray(mu2, np.float64)
    sigma1, sigma2 = np.asarray(sigma1, np.float64), np.asarray(sigma2, np.float64)
    _check_stats(mu1, sigma1, mu2, sigma2)
    covmean = scipy.linalg.sqrtm(sigma1 @ sigma2)
    diff = mu1 - mu2
    return float(np.real(diff @ diff + np.trace(sigma1 + sigma2 - 2.0 * covmean)))


def frechet_distance_features(x: np.ndarray, y: np.ndarray, ddof: int = 0) -> float:
    """Fréchet distance between two feature sets (N, D) and (M, D)."""
    return frechet_distance(*gaussian_stats(x, ddof), *gaussian_stats(y, ddof))


def polynomial_kernel(x: np.ndarray, y: np.ndarray, degree: int = 3, gamma: float | None = None,
                      coef0: float = 1.0) -> np.ndarray:
    """``k(x, y) = (γ xᵀy + c)^degree`` with γ = 1/D by default; returns (N, M) float64."""
    x, y = np.asarray(x, np.float64), np.asarray(y, np.float64)
    g = 1.0 / x.shape[1] if gamma is None else gamma
    return (g * (x @ y.T) + coef0) ** degree  # (N, M)


def mmd2_unbiased(x: np.ndarray, y: np.ndarray, degree: int = 3, gamma: float | None = None,
                  coef0: float = 1.0) -> float:
    """Unbiased MMD² with a polynomial kernel (the KID/KVD estimator; formula in the module doc).

    Raises:
        ValueError: fewer than 2 samples in a set or mismatched feature dimensions.
    """
    x, y = np.asarray(x, np.float64), np.asarray(y, np.float64)
    if x.ndim != 2 or y.ndim != 2 or x.shape[1] != y.shape[1]:
        raise ValueError(f"features must be (N, D) and (M, D); got {x.shape} and {y.shape}")
    m, n = x.shape[0], y.shape[0]
    if m < 2 or n < 2:
        raise InvalidInputError(f"unbiased MMD needs at least 2 samples per set, got {m} and {n}")
    kxx = polynomial_kernel(x, x, degree, gamma, coef0)  # (m, m)
    kyy = polynomial_kernel(y, y, degree, gamma, coef0)  # (n, n)
    kxy = polynomial_kernel(x, y, degree, gamma, coef0)  # (m, n)
    sxx = (kxx.sum() - np.trace(kxx)) / (m * (m - 1))
    syy = (kyy.sum() - np.trace(kyy)) / (n * (n - 1))
    return float(sxx + syy - 2.0 * kxy.mean())


def kvd(x: np.ndarray, y: np.ndarray, num_subsets: int = 0, subset_size: int = 1000, seed: int = 0,
        degree: int = 3) -> tuple[float, float]:
    """Kernel video distance: unbiased polynomial MMD² between feature sets; returns (mean, std).

    With ``num_subsets == 0`` (default) one estimate on all samples (std 0). Otherwise the KID
    protocol: the mean over ``num_subsets`` random subsets of ``min(subset_size, N, M)`` samples
    each (seeded), and their standard deviation.
    """
    x, y = np.asarray(x, np.float64), np.asarray(y, np.float64)
    if num_subsets <= 0:
        return mmd2_unbiased(x, y, degree=degree), 0.0
    rng = np.random.default_rng(seed)
    k = min(subset_size, x.shape[0], y.shape[0])
    vals = [mmd2_unbiased(x[rng.choice(x.shape[0], k, replace=False)],
                          y[rng.choice(y.shape[0], k, replace=False)], degree=degree) for _ in range(num_subsets)]
    return float(np.mean(vals)), float(np.std(vals))
