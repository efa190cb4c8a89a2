"""The one verdict rule of skyloom's boards, its tests, and the intervals of set-level scores.

**Per-item metrics** (:func:`sign_flip`). Two entries scored on the same items give differences
``d_i = b_i - a_i``. Under H0 (no difference) each ``d_i`` is symmetric about 0, so flipping the
signs of any subset ``S`` of the differences is as likely as the data (Fisher's randomisation
test). Flipping ``S`` changes the mean difference by ``-2 sum_S d_i / n``, so the upper tail
``U(δ) = P_s(mean(s·(d-δ)) >= mean(d-δ))`` counts the subsets whose mean ``mean_S(d) <= δ``:

    U(δ) = (1 + #{S ≠ ∅ : mean_S(d) <= δ}) / 2^n,    L(δ) = (1 + #{S ≠ ∅ : mean_S(d) >= δ}) / 2^n

(the 1 is the empty set, the data themselves). The two-sided p-value is ``min(1, 2 min(U(0), L(0)))``
(for the symmetric null this equals ``P_s(|mean(s·d)| >= |mean(d)|)``, the form
``scipy.stats.permutation_test`` computes); the CI of the mean difference is the set of shifts δ
the test does not reject, which is an interval between two order statistics of the subset means
(Hartigan 1969, "Using subsample values as typical values", JASA 64). So the CI excludes 0 exactly
when ``p < alpha``: the verdict and the interval shown beside it cannot disagree. All ``2^n`` sign
patterns are enumerated for ``n <= EXACT_MAX_N``; above, ``n_perm`` random ones, counted with the
``(1 + hits) / (1 + n_perm)`` correction (Phipson & Smyth 2010).

**Too few items.** The smallest p-value the exact test can give on ``n`` items is ``2 / 2^n``; when
it is ``>= alpha`` no data could be significant (n <= 5 at alpha = 0.05), and the verdict is
``"too few items"`` instead of "tie".

**Set-level metrics** (FVD, KVD; :func:`paired_set_permutation`): no per-item values, but per-item
features of both entries. Under H0 item i's two videos are exchangeable, so swapping them between
A and B is a valid permutation: the metric is recomputed on ``n_perm`` random swaps, ``p = (1 +
#{|t_b| >= |t|}) / (1 + n_perm)``, and the interval is ``t ± q`` with ``q`` the permutation
quantile at which the test rejects (a shift-model inversion): again 0 is outside it iff ``p < alpha``.

**Verdict** (:func:`verdict`): ``"a"``, ``"b"``, ``"tie"``, ``"too few items"`` or ``None`` (no
test: no per-item values or features, or no known direction): significant iff ``p < alpha``, never
otherwise. A board that compares ``m`` pairs tests each at ``alpha / m`` (Bonferroni) and says so.

**Set-level score intervals** (:func:`set_interval`): FVD is biased upward in small samples (by about
``tr Σ_r / N_r + tr Σ_g / N_g``), and resampling with replacement inflates it again, so a
percentile bootstrap of the generated set misses the value it describes. The interval is the
*basic* bootstrap (Davison & Hinkley 1997, eq. 5.6) ``[2θ̂ - q_hi, 2θ̂ - q_lo]`` over resamples of
both the generated and the reference set, which removes the bootstrap's estimate of the bias; where
the bias is larger than the spread the interval is widened to include the stored estimate θ̂, so
every stored interval contains its value (coverage measured in tests/eval/test_inference.py).

Example:
    >>> r = sign_flip([0.1, 0.1, 0.1, 0.1])  # 4 items, all better: the smallest exact p is 2/16
    >>> round(r.p_value, 3), r.too_few, verdict(r, higher_is_better=True)
    (0.125, True, 'too few items')
    >>> r = sign_flip([0.3, 0.1, 0.2, 0.4, 0.2, 0.1, 0.3, 0.2])
    >>> r.p_value, r.ci_low > 0, verdict(r, higher_is_better=True)
    (0.0078125, True, 'b')
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from skyloom.errors import InvalidInputError

EXACT_MAX_N = 16
DEFAULT_N_PERM = 10000
DEFAULT_ALPHA = 0.05
TOO_FEW = "too few items"
VERDICTS = ("a", "b", "tie", TOO_FEW)


@dataclass(frozen=True)
class HypothesisTest:
    """A two-sided test of "B − A = 0" with the interval it implies (0 outside it iff ``p < alpha``)."""

    p_value: float | None
    ci_low: float | None
    ci_high: float | None
    alpha: float
    min_p: float | None  # the smallest p-value this test could give on these items
    method: str

    @property
    def too_few(self) -> bool:
        """No data could be significant: the smallest attainable p-value is ``>= alpha``."""
        return self.min_p is not None and self.min_p >= self.alpha

    @property
    def significant(self) -> bool:
        """``p < alpha`` (never when ``p >= alpha``, never without a test)."""
        return self.p_value is not None and self.p_value < self.alpha and not self.too_few


def min_attainable_p(n: int) -> float:
    """Smallest two-sided p-value of the exact sign-flip test on ``n`` items: ``2 / 2^n`` (1 for n = 0)."""
    return min(1.0, 2.0 / 2.0 ** n) if n > 0 else 1.0


def _as_1d(values: Sequence[float] | np.ndarray, what: str) -> np.ndarray:
    x = np.asarray(values, dtype=np.float64).reshape(-1)
    if x.size == 0:
        raise InvalidInputError(f"{what}: no values")
    if not np.all(np.isfinite(x)):
        raise InvalidInputError(f"{what}: {int((~np.isfinite(x)).sum())} value(s) are NaN or infinite")
    return x


def _threshold(always: int, total: int, alpha: float) -> int:
    """Smallest count c with ``2 (always + c) / total >= alpha`` (the same float test as the p-value)."""
    k = max(0, math.ceil(alpha * total / 2 - always))
    while k > 0 and 2 * (always + k - 1) / total >= alpha:
        k -= 1
    while 2 * (always + k) / total < alpha:
        k += 1
    return k


_CACHED_PATTERN_BYTES = 8 * 2**20  # sign patterns kept between calls only up to this size (each)


def _sign_patterns(n: int, n_perm: int, seed: int, exact_max_n: int
                   ) -> tuple[tuple[tuple[np.ndarray, np.ndarray], ...], int, int, str, float]:
    """The sign patterns :func:`sign_flip` averages over for ``n`` items, as (mask chunk (b, n) bool, items
    flipped (b,)) pairs, with ``always``, ``total``, the method and the smallest attainable p. They depend on
    ``n``, ``n_perm`` and ``seed`` only, so a board testing a thousand pairs on the same items draws them once
    (the arrays are read-only; up to :data:`_CACHED_PATTERN_BYTES` each, larger ones are drawn per call)."""
    rows = 2 ** n - 1 if n <= exact_max_n else n_perm
    if rows * n <= _CACHED_PATTERN_BYTES:
        return _cached_sign_patterns(n, n_perm, seed, exact_max_n)
    return _draw_sign_patterns(n, n_perm, seed, exact_max_n)


@functools.lru_cache(maxsize=16)
def _cached_sign_patterns(n: int, n_perm: int, seed: int, exact_max_n: int
                          ) -> tuple[tuple[tuple[np.ndarray, np.ndarray], ...], int, int, str, float]:
    return _draw_sign_patterns(n, n_perm, seed, exact_max_n)


def _draw_sign_patterns(n: int, n_perm: int, seed: int, exact_max_n: int
                        ) -> tuple[tuple[tuple[np.ndarray, np.ndarray], ...], int, int, str, float]:
    if n <= exact_max_n:
        masks = ((np.arange(1, 2 ** n)[:, None] >> np.arange(n)) & 1).astype(bool)  # (2^n - 1, n): every S ≠ ∅
        always, total, method = 1, 2 ** n, "sign-flip exact"
        min_p = min_attainable_p(n)
    else:
        rng = np.random.default_rng(seed)
        masks = rng.integers(0, 2, size=(n_perm, n), dtype=np.int8).astype(bool)  # (B, n): S = the flipped items
        empty = ~masks.any(axis=1)
        masks = masks[~empty]
        always, total, method = 1 + int(empty.sum()), 1 + n_perm, f"sign-flip monte-carlo ({n_perm})"
        min_p = 2.0 / total
    chunks = tuple((m, m.sum(axis=1)) for m in np.array_split(masks, max(1, len(masks) // 4096))) if len(masks) else ()
    for m, k in chunks:
        m.flags.writeable = k.flags.writeable = False
    return chunks, always, total, method, min_p


def sign_flip(diffs: Sequence[float] | np.ndarray, *, alpha: float = DEFAULT_ALPHA, n_perm: int = DEFAULT_N_PERM,
              seed: int = 0, exact_max_n: int = EXACT_MAX_N) -> HypothesisTest:
    """Sign-flip test of ``mean(diffs) = 0`` and its inverted interval (module docstring).

    Args:
        diffs: per-item differences ``b_i - a_i``.
        alpha: the test's level (the interval is the ``1 - alpha`` one).
        n_perm: random sign patterns when ``n > exact_max_n``.
        seed: RNG seed of the Monte Carlo patterns.
    """
    d = _as_1d(diffs, "sign_flip")
    n = d.size
    chunks, always, total, method, min_p = _sign_patterns(n, n_perm, seed, exact_max_n)
    means = np.concatenate([(m @ d) / k for m, k in chunks]) if chunks else np.zeros(0)
    means = np.sort(means)  # subset means, ascending
    upper = always + int(np.sum(means <= 0))  # U(0) * total
    lower = always + int(np.sum(means >= 0))  # L(0) * total
    p = min(1.0, 2 * min(upper, lower) / total)
    k = _threshold(always, total, alpha)
    if k <= 0:  # every shift is accepted: no interval
        lo, hi = -math.inf, math.inf
    else:
        lo, hi = float(means[k - 1]), float(means[-k])
    return HypothesisTest(p_value=float(p), ci_low=lo, ci_high=hi, alpha=alpha, min_p=min_p, method=method)


def paired_set_permutation(real: np.ndarray, fake_a: np.ndarray, fake_b: np.ndarray,
                           value_fn: Callable[[np.ndarray, np.ndarray], float], *, alpha: float = DEFAULT_ALPHA,
                           n_perm: int = 200, seed: int = 0) -> tuple[float, float, HypothesisTest]:
    """Permutation test of a set-level metric between A and B on the same items (module docstring).

    Args:
        real: (M, D) reference features, the same for both sides.
        fake_a, fake_b: (n, D) features of A's and B's videos of the same items (row i = item i).
        value_fn: ``f(real, fake) -> value``.
        n_perm: random swaps (swaps where the metric fails, e.g. a degenerate KVD, are skipped).

    Returns:
        (value A, value B, :class:`HypothesisTest` of ``value(B) - value(A)``).
    """
    fa, fb = np.asarray(fake_a, np.float64), np.asarray(fake_b, np.float64)
    if fa.shape != fb.shape or fa.ndim != 2:
        raise ValueError(f"paired set test: A features {fa.shape} and B features {fb.shape} must be the same (n, D)")
    n = fa.shape[0]
    if n < 2:
        raise InvalidInputError(f"paired set test: {n} common item(s); need >= 2")
    va, vb = float(value_fn(real, fa)), float(value_fn(real, fb))
    obs = vb - va
    rng = np.random.default_rng(seed)
    null = []
    for _ in range(n_perm):
        swap = rng.integers(0, 2, n).astype(bool)[:, None]  # (n, 1)
        try:
            null.append(float(value_fn(real, np.where(swap, fa, fb))) - float(value_fn(real, np.where(swap, fb, fa))))
        except (ValueError, np.linalg.LinAlgError):  # a degenerate permutation
            continue
    if len(null) < 1:
        raise ValueError(f"paired set test: no usable permutation of {n_perm}")
    u = np.sort(np.abs(np.asarray(null)))[::-1]  # descending
    total = 1 + u.size
    tol = 1e-12 * max(1.0, abs(obs), float(u[0]))
    p = min(1.0, (1 + int(np.sum(u >= abs(obs) - tol))) / total)
    j = -1  # largest j with (1 + j) / total < alpha: significant iff #{u >= |t|} <= j
    while (1 + j + 1) / total < alpha and j + 1 <= u.size:
        j += 1
    if j < 0 or j >= u.size:
        lo, hi = -math.inf, math.inf
    else:
        q = float(u[j]) + tol
        lo, hi = obs - q, obs + q
    return va, vb, HypothesisTest(p_value=p, ci_low=lo, ci_high=hi, alpha=alpha, min_p=1.0 / total,
                        method=f"paired permutation of items between A and B ({u.size} swaps; set metric recomputed)")


def verdict(test: HypothesisTest | None, higher_is_better: bool | None) -> str | None:
    """The one verdict rule: which of A and B is better, from a :class:`HypothesisTest` of ``B − A``.

    Returns ``"too few items"`` when no data could reach ``alpha`` on these items, ``"tie"`` when
    ``p >= alpha``, ``"b"``/``"a"`` (the better side) when ``p < alpha``, ``None`` without a test
    or a direction.

    Example:
        >>> t = HypothesisTest(p_value=0.01, ci_low=-10.6, ci_high=-1.2, alpha=0.05, min_p=0.002, method="x")
        >>> verdict(t, higher_is_better=False), verdict(t, higher_is_better=True)
        ('b', 'a')
    """
    if test is None or test.p_value is None or higher_is_better is None:
        return None
    if test.too_few:
        return TOO_FEW
    if not test.significant:
        return "tie"
    b_higher = test.ci_low is not None and test.ci_low > 0  # significant: the interval lies on one side of 0
    return "b" if b_higher == bool(higher_is_better) else "a"


def set_interval(real: np.ndarray, fake: np.ndarray, value_fn: Callable[[np.ndarray, np.ndarray], float], *,
                 n_boot: int = 200, level: float = 0.95, seed: int = 0,
                 floor: float | None = None) -> dict[str, float | int | None]:
    """Basic-bootstrap interval of a set-level metric, resampling both sides (module docstring).

    Returns:
        ``{"value", "ci_low", "ci_high", "stderr", "bias", "resamples"}``; ``ci_low <= value <= ci_high``
        always (None bounds with fewer than 2 usable resamples). ``floor``: the metric's smallest
        possible population value (0 for FVD and KVD), below which the lower bound is not extended.
    """
    real, fake = np.asarray(real, np.float64), np.asarray(fake, np.float64)
    value = float(value_fn(real, fake))
    rng = np.random.default_rng(seed)
    boots = []
    for _ in range(n_boot):
        r = real[rng.permutation(len(real))[: max(2, len(real) // 2)]]  # half-samples, no duplicates
        f = fake[rng.permutation(len(fake))[: max(2, len(fake) // 2)]]
        try:
            boots.append(float(value_fn(r, f)))
        except (ValueError, np.linalg.LinAlgError):  # a degenerate resample (e.g. KVD with one unique row)
            continue
    if len(boots) < 2:
        return {"value": value, "ci_low": None, "ci_high": None, "stderr": None, "bias": None,
                "resamples": len(boots)}
    b = np.asarray(boots)
    q_lo, q_hi = np.quantile(b, [(1 - level) / 2, 1 - (1 - level) / 2])
    lo, hi = 2 * value - q_hi, 2 * value - q_lo
    if floor is not None:
        lo = max(lo, floor)
    return {"value": value, "ci_low": float(min(lo, value)), "ci_high": float(max(hi, value)),
            "stderr": float(b.std(ddof=1)), "bias": float(b.mean() - value), "resamples": int(b.size)}
