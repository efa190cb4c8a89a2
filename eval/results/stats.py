"""Statistics for leaderboards: bootstrap confidence intervals, paired checkpoint comparisons,
and a leaderboard that marks ties within noise.

- :func:`bootstrap_ci`: percentile bootstrap (Efron & Tibshirani 1993, ch. 13) of a statistic of
  per-item values, with the standard error of the mean ``s / sqrt(n)`` (``ddof=1``).
- :func:`paired_test`: two checkpoints scored on the *same* items (same prompt, same seed).
  The difference is ``mean(b - a)``; its CI is a paired bootstrap (resampling items, keeping
  pairs together); the two-sided p-value is a sign-flip permutation test of the mean difference
  (under H0 each pair's difference is symmetric about 0): exact over all ``2^n`` sign patterns
  when ``n <= EXACT_MAX_N``, else Monte Carlo with the ``(1 + hits) / (1 + resamples)``
  correction (Phipson & Smyth 2010). It agrees with ``scipy.stats.permutation_test`` and, for
  large ``n``, with the paired t-test ``scipy.stats.ttest_rel``.
- :func:`paired_set_test`: two checkpoints compared on a *set-level* metric (FVD, KVD): a paired
  bootstrap over the items both scored, recomputing the metric on both sides from the same
  resampled items (cached per-item features) against the same reference set; the CI is the
  percentile interval of the resampled differences, the two-sided p-value
  ``2·min(P*(d ≤ 0), P*(d ≥ 0))`` with the ``(1 + hits)/(1 + B)`` correction.
- :func:`verdict`: the one rule that turns a CI of the difference B − A into "a", "b" or "tie"
  (significant iff the interval excludes 0). Every verdict printed (``compare``, leaderboard
  ties, dashboards) comes from it, so a verdict never disagrees with the CI shown beside it.
- :func:`paired_compare`: the same, reading per-item values (or, for set-level metrics, the
  per-item features saved at scoring time) of two evaluations from a
  :class:`skyloom.eval.results.store.ResultsStore`.
- :func:`leaderboard`: one row per checkpoint of a suite, ranked by a primary metric; entries
  whose difference to their group's leader is not significant share a ``tie_group``.

Example:
    >>> import numpy as np
    >>> ci = bootstrap_ci(np.arange(10.0), seed=0)
    >>> round(ci.estimate, 2), ci.low < 4.5 < ci.high
    (4.5, True)
    >>> r = paired_test([0.1, 0.2, 0.3, 0.4], [0.2, 0.3, 0.4, 0.5])
    >>> round(r.diff, 3), r.p_value  # 4 pairs: the smallest exact two-sided p is 2/16
    (0.1, 0.125)
"""

from __future__ import annotations

import itertools
import logging
import math
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from skyloom.errors import InvalidInputError
from skyloom.eval.results.store import StoreError

if TYPE_CHECKING:
    from skyloom.eval.results.store import ResultsStore

logger = logging.getLogger(__name__)

DEFAULT_N_BOOT = 2000
DEFAULT_N_PERM = 10000
EXACT_MAX_N = 16


@dataclass(frozen=True)
class CI:
    """An estimate with its bootstrap confidence interval and standard error."""

    estimate: float
    low: float
    high: float
    stderr: float
    n: int
    level: float

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class PairedResult:
    """Result of comparing checkpoint B against A on paired items (difference = B - A)."""

    n: int
    mean_a: float
    mean_b: float
    diff: float
    ci_low: float
    ci_high: float
    p_value: float | None
    method: str
    level: float

    @property
    def significant(self) -> bool:
        """The CI of the difference excludes 0 (:func:`verdict`); the p-value is reported beside it."""
        return verdict(self.ci_low, self.ci_high, True) in ("a", "b")

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["significant"] = self.significant
        return d


def verdict(ci_low: float | None, ci_high: float | None, higher_is_better: bool | None) -> str | None:
    """Which of A and B is better, from the CI of the difference ``B − A``.

    The single decision rule for every comparison skyloom shows: ``"b"`` when the interval lies
    entirely on B's better side of 0, ``"a"`` when entirely on A's, ``"tie"`` when it contains 0,
    ``None`` when there is no interval or no known direction. E.g. a CI of [-10.60, -1.19] on FVD
    (lower is better) is ``"b"``, never "tie".

    Example:
        >>> verdict(-10.60, -1.19, higher_is_better=False), verdict(-0.2, 0.3, True)
        ('b', 'tie')
    """
    if ci_low is None or ci_high is None or higher_is_better is None:
        return None
    if not (math.isfinite(ci_low) and math.isfinite(ci_high)):
        return None
    if ci_low > 0:
        return "b" if higher_is_better else "a"
    if ci_high < 0:
        return "a" if higher_is_better else "b"
    return "tie"


@dataclass(frozen=True)
class Comparison:
    """:class:`PairedResult` of one metric between two stored evaluations, with context."""

    metric: str
    eval_a: str
    eval_b: str
    result: PairedResult
    higher_is_better: bool | None
    extractor: str | None
    unpaired_items: int

    @property
    def verdict(self) -> str | None:
        """:func:`verdict` of this comparison's CI: ``"a"``, ``"b"``, ``"tie"`` or ``None``."""
        return verdict(self.result.ci_low, self.result.ci_high, self.higher_is_better)

    @property
    def better(self) -> str | None:
        """``"a"``, ``"b"`` or ``None`` (the CI contains 0, or direction unknown)."""
        v = self.verdict
        return v if v in ("a", "b") else None

    def to_dict(self) -> dict[str, Any]:
        d = {"metric": self.metric, "eval_a": self.eval_a, "eval_b": self.eval_b,
             "higher_is_better": self.higher_is_better, "extractor": self.extractor,
             "unpaired_items": self.unpaired_items, "better": self.better, "verdict": self.verdict}
        d.update(self.result.to_dict())
        return d


def _as_1d(values: Sequence[float] | np.ndarray, what: str) -> np.ndarray:
    x = np.asarray(values, dtype=np.float64).reshape(-1)
    if x.size == 0:
        raise InvalidInputError(f"{what}: no values")
    if not np.all(np.isfinite(x)):
        raise InvalidInputError(f"{what}: {int((~np.isfinite(x)).sum())} value(s) are NaN or infinite")
    return x


def stderr_of_mean(values: Sequence[float] | np.ndarray) -> float:
    """``std(x, ddof=1) / sqrt(n)``; 0 for a single value."""
    x = np.asarray(values, dtype=np.float64)
    return float(x.std(ddof=1) / math.sqrt(x.size)) if x.size > 1 else 0.0


def bootstrap_ci(values: Sequence[float] | np.ndarray, *, statistic: Callable[[np.ndarray], Any] | None = None,
                 n_boot: int = DEFAULT_N_BOOT, level: float = 0.95, seed: int = 0) -> CI:
    """Percentile bootstrap confidence interval of ``statistic`` (default: the mean).

    Args:
        values: per-item values (1-D).
        statistic: ``f(x (B, n)) -> (B,)`` applied along axis 1; ``None`` = mean.
        n_boot: bootstrap resamples.
        level: confidence level (0.95 -> 2.5th and 97.5th percentiles).
        seed: seed of the resampling RNG (results are reproducible).

    Returns:
        :class:`CI`; for a single value the interval collapses to the value.
    """
    x = _as_1d(values, "bootstrap_ci")
    if not 0 < level < 1:
        raise InvalidInputError(f"level must be in (0, 1), got {level}")
    stat = statistic or (lambda a: a.mean(axis=1))
    est = float(np.asarray(stat(x[None, :])).reshape(-1)[0])
    if x.size == 1:
        return CI(est, est, est, 0.0, 1, level)
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, x.size, size=(n_boot, x.size))  # (B, n)
    boots = np.asarray(stat(x[idx]), dtype=np.float64).reshape(-1)  # (B,)
    lo, hi = np.quantile(boots, [(1 - level) / 2, 1 - (1 - level) / 2])
    return CI(est, float(lo), float(hi), stderr_of_mean(x), int(x.size), level)


def sign_flip_pvalue(diffs: Sequence[float] | np.ndarray, *, n_perm: int = DEFAULT_N_PERM, seed: int = 0,
                     exact_max_n: int = EXACT_MAX_N) -> tuple[float, str]:
    """Two-sided sign-flip permutation p-value of ``mean(diffs) = 0``.

    ``p = P(|mean(s * d)| >= |mean(d)|)`` over sign vectors ``s``; exact enumeration for
    ``n <= exact_max_n``, else ``(1 + hits) / (1 + n_perm)`` with random signs.

    Returns:
        (p-value, method name).
    """
    d = _as_1d(diffs, "sign_flip_pvalue")
    n = d.size
    obs = abs(d.mean())
    tol = 1e-12 * max(1.0, float(np.abs(d).max()))
    if n <= exact_max_n:
        signs = np.array(list(itertools.product((1.0, -1.0), repeat=n)))  # (2^n, n)
        null = np.abs(signs @ d) / n  # (2^n,)
        return float(np.mean(null >= obs - tol)), "sign-flip exact"
    rng = np.random.default_rng(seed)
    hits = 0
    for start in range(0, n_perm, 2048):
        b = min(2048, n_perm - start)
        signs = rng.choice((-1.0, 1.0), size=(b, n))  # (b, n)
        hits += int(np.sum(np.abs(signs @ d) / n >= obs - tol))
    return float((1 + hits) / (1 + n_perm)), f"sign-flip monte-carlo ({n_perm})"


def paired_test(a: Sequence[float] | np.ndarray, b: Sequence[float] | np.ndarray, *, n_boot: int = DEFAULT_N_BOOT,
                n_perm: int = DEFAULT_N_PERM, level: float = 0.95, seed: int = 0) -> PairedResult:
    """Compare paired values ``b[i]`` vs ``a[i]`` (same item, same seed): difference ``mean(b - a)``.

    Args:
        a, b: per-item values of checkpoint A and B, in the same item order.
        n_boot: bootstrap resamples for the CI of the mean difference.
        n_perm: sign-flip resamples when ``n > EXACT_MAX_N``.
        level: confidence level of the CI; ``significant`` means ``p < 1 - level``.
        seed: RNG seed.
    """
    xa, xb = _as_1d(a, "paired_test a"), _as_1d(b, "paired_test b")
    if xa.shape != xb.shape:
        raise ValueError(f"paired_test: a has {xa.size} values, b has {xb.size}; pairs must match")
    d = xb - xa
    ci = bootstrap_ci(d, n_boot=n_boot, level=level, seed=seed)
    if d.size < 2:
        p, method = None, "single pair (no test)"
    elif np.all(d == 0):
        p, method = 1.0, "identical"
    else:
        p, method = sign_flip_pvalue(d, n_perm=n_perm, seed=seed)
    return PairedResult(n=int(d.size), mean_a=float(xa.mean()), mean_b=float(xb.mean()), diff=float(d.mean()),
                        ci_low=ci.low, ci_high=ci.high, p_value=p, method=method, level=level)


def paired_set_test(real: np.ndarray, fake_a: np.ndarray, fake_b: np.ndarray,
                    value_fn: Callable[[np.ndarray, np.ndarray], float], *, n_boot: int = 200, level: float = 0.95,
                    seed: int = 0) -> PairedResult:
    """Paired bootstrap of a set-level metric (FVD, KVD) between checkpoints A and B.

    Args:
        real: (M, D) reference features, the same for both sides and kept fixed.
        fake_a, fake_b: (n, D) features of A's and B's videos of the *same* items, row i = item i.
        value_fn: ``f(real, fake) -> value`` (the metric recomputed from features).
        n_boot: resamples; each draws n item indices with replacement and recomputes both sides
            on the same indices (resamples where the metric fails, e.g. a degenerate KVD, are skipped).
        level: CI level; seed: RNG seed.

    Returns:
        :class:`PairedResult` with ``diff = value(B) − value(A)`` on all items, the percentile CI of
        the resampled differences and the bootstrap p-value ``min(1, 2·min(P*(d ≤ 0), P*(d ≥ 0)))``
        (``(1 + hits)/(1 + B)`` corrected).
    """
    fa, fb = np.asarray(fake_a, np.float64), np.asarray(fake_b, np.float64)
    if fa.shape != fb.shape or fa.ndim != 2:
        raise ValueError(f"paired_set_test: A features {fa.shape} and B features {fb.shape} must be the same (n, D)")
    n = fa.shape[0]
    if n < 2:
        raise InvalidInputError(f"paired_set_test: {n} common item(s); need >= 2")
    va, vb = float(value_fn(real, fa)), float(value_fn(real, fb))
    rng = np.random.default_rng(seed)
    diffs = []
    for _ in range(n_boot):
        idx = rng.integers(0, n, n)
        try:
            diffs.append(float(value_fn(real, fb[idx])) - float(value_fn(real, fa[idx])))
        except (ValueError, np.linalg.LinAlgError) as e:  # a degenerate resample
            logger.debug("paired_set_test: resample skipped (%s)", e)
    if len(diffs) < 2:
        raise ValueError(f"paired_set_test: only {len(diffs)} usable resample(s) of {n_boot}")
    d = np.asarray(diffs)
    lo, hi = np.quantile(d, [(1 - level) / 2, 1 - (1 - level) / 2])
    p = min(1.0, 2 * min((1 + np.sum(d <= 0)) / (1 + d.size), (1 + np.sum(d >= 0)) / (1 + d.size)))
    return PairedResult(n=n, mean_a=va, mean_b=vb, diff=vb - va, ci_low=float(lo), ci_high=float(hi),
                        p_value=float(p), method=f"paired bootstrap over common items ({d.size} resamples; "
                        "set metric recomputed on both sides)", level=level)


def load_set_features(details: dict[str, Any]) -> tuple[np.ndarray, np.ndarray, list[str]] | None:
    """(real, fake, item ids) saved by the scorer for a set-level score (``details.features``), or None."""
    path = (details or {}).get("features")
    if not path:
        return None
    try:
        with np.load(path) as z:
            return z["real"], z["fake"], [str(x) for x in z["item_ids"]]
    except (OSError, KeyError, ValueError) as e:
        logger.warning("set features %s unreadable (%s)", path, e)
        return None


def _set_value_fn(details: dict[str, Any]) -> Callable[[np.ndarray, np.ndarray], float]:
    from skyloom.eval.metrics import METRICS

    name, settings = str(details.get("metric")), dict(details.get("settings") or {})

    def value(real: np.ndarray, fake: np.ndarray) -> float:
        m = METRICS.build(name, options=settings, where=f"metric {name} settings", extractor=None)
        m.update_features(real, real=True)
        m.update_features(fake, real=False)
        return m.compute().value

    return value


def _score_row(store: ResultsStore, eval_id: str, metric: str) -> dict[str, Any] | None:
    rows = store.scores(eval_ids=[eval_id], metric=metric)
    return rows[0] if rows else None


def paired_compare(store: ResultsStore, eval_a: str, eval_b: str, metric: str, *, n_boot: int = DEFAULT_N_BOOT,
                   n_perm: int = DEFAULT_N_PERM, level: float = 0.95, seed: int = 0) -> Comparison:
    """Paired per-item comparison of two stored evaluations on ``metric`` (difference = B - A).

    Items are matched by ``item_id`` (the suite's prompt id x seed, or probe-scene id). A set-level
    metric (FVD, KVD) is compared with :func:`paired_set_test` on the per-item features the scorer
    saved (``details.features``), over the items both evaluations scored, against the same reference
    features. Only when those are missing (older results) or the references differ does it fall
    back to the stored CIs: ``p_value=None`` and a CI from the two intervals (conservative sum of
    half-widths), with the reason in ``method``.

    Raises:
        ValueError: the metric is missing from either evaluation, or pairs disagree on seed/prompt.
    """
    sa_, sb = _score_row(store, eval_a, metric), _score_row(store, eval_b, metric)
    for eid, s in ((eval_a, sa_), (eval_b, sb)):
        if s is None:
            have = sorted({r["metric"] for r in store.scores(eval_ids=[eid])})
            raise StoreError(f"evaluation {eid!r} has no score for metric {metric!r}; "
                             f"it has: {', '.join(have) or '(none)'}")
    assert sa_ is not None and sb is not None  # both checked just above (for mypy)
    hib = sa_["higher_is_better"] if sa_["higher_is_better"] is not None else sb["higher_is_better"]
    ia = {r["item_id"]: r for r in store.items(eval_a, metric) if r["value"] is not None}
    ib = {r["item_id"]: r for r in store.items(eval_b, metric) if r["value"] is not None}
    common = sorted(set(ia) & set(ib))
    unpaired = len(set(ia) ^ set(ib))
    for k in common:
        ra, rb = ia[k], ib[k]
        if ra["seed"] is not None and rb["seed"] is not None and ra["seed"] != rb["seed"]:
            raise InvalidInputError(f"item {k!r}: seed {ra['seed']} in {eval_a} but {rb['seed']} in {eval_b}; "
                                    "a paired comparison needs the same seeds")
    fa_, fb_ = load_set_features(sa_["details"]), load_set_features(sb["details"])
    res = None
    if len(common) >= 1:
        res = paired_test([ia[k]["value"] for k in common], [ib[k]["value"] for k in common],
                          n_boot=n_boot, n_perm=n_perm, level=level, seed=seed)
    elif fa_ is not None and fb_ is not None:
        (real_a, xa, ida), (real_b, xb, idb) = fa_, fb_
        pos_a, pos_b = {k: i for i, k in enumerate(ida)}, {k: i for i, k in enumerate(idb)}
        both = sorted(set(pos_a) & set(pos_b))
        unpaired = len(set(pos_a) ^ set(pos_b))
        if real_a.shape == real_b.shape and np.array_equal(real_a, real_b) and len(both) >= 2:
            try:
                res = paired_set_test(real_a, xa[[pos_a[k] for k in both]], xb[[pos_b[k] for k in both]],
                                      _set_value_fn(sa_["details"]), n_boot=min(n_boot, 200), level=level, seed=seed)
            except ValueError as e:  # e.g. a metric this process cannot build: fall back to the stored CIs
                logger.debug("%s: paired bootstrap unavailable (%s); using the stored intervals", metric, e)
    if res is None:
        va, vb = float(sa_["value"]), float(sb["value"])
        half = 0.0
        for s in (sa_, sb):
            if s["ci_low"] is not None and s["ci_high"] is not None:
                half += (s["ci_high"] - s["ci_low"]) / 2
        why = "no saved per-item features" if fa_ is None or fb_ is None else \
            "different reference features or metric unavailable"
        res = PairedResult(n=0, mean_a=va, mean_b=vb, diff=vb - va, ci_low=vb - va - half, ci_high=vb - va + half,
                           p_value=None, method=f"set-level, unpaired ({why}; CI from the stored intervals)",
                           level=level)
    return Comparison(metric=metric, eval_a=eval_a, eval_b=eval_b, result=res, higher_is_better=hib,
                      extractor=sa_["extractor"] or sb["extractor"], unpaired_items=unpaired)


def compare_all(store: ResultsStore, eval_a: str, eval_b: str, metrics: Sequence[str] | None = None,
                **kwargs: Any) -> list[Comparison]:
    """:func:`paired_compare` for every metric both evaluations have (or the given ones)."""
    ma = {r["metric"] for r in store.scores(eval_ids=[eval_a])}
    mb = {r["metric"] for r in store.scores(eval_ids=[eval_b])}
    names = list(metrics) if metrics else sorted(ma & mb)
    return [paired_compare(store, eval_a, eval_b, m, **kwargs) for m in names]


def primary_metric(store: ResultsStore, suite: str) -> str:
    """The suite's ``primary_metric`` recorded in its latest evaluation's config, else the first metric."""
    evals = store.evals(suite=suite)
    for e in reversed(evals):
        pm = (e.get("config") or {}).get("suite", {}).get("primary_metric")
        if pm:
            return str(pm)
    names = sorted({r["metric"] for r in store.scores(suite=suite)})
    if not names:
        raise StoreError(f"suite {suite!r} has no scores in {store.url}")
    return names[0]


def _tied(store: ResultsStore, leader: dict[str, Any], other: dict[str, Any], metric: str, level: float,
          seed: int) -> bool:
    try:
        cmp = paired_compare(store, leader["eval_id"], other["eval_id"], metric, level=level, seed=seed,
                             n_boot=500, n_perm=4000)
    except ValueError:
        return False
    v = cmp.verdict  # the one decision rule: the CI of the difference
    if v is not None:
        return v == "tie"
    return leader["value"] == other["value"]


def leaderboard(store: ResultsStore, suite: str, metric: str | None = None, *, level: float = 0.95,
                seed: int = 0, include_incomplete: bool = False,
                suite_version: str | None = None) -> list[dict[str, Any]]:
    """Rank the checkpoints evaluated on ``suite`` by ``metric`` and mark ties within noise.

    Only evaluations of one suite version are ranked together: ``suite_version`` (the stored
    ``<version>+<content hash>``), by default that of the most recent evaluation; a suite whose
    prompts, seeds, metrics, extractors or reference changed is a different leaderboard.
    One row per checkpoint (its latest ``complete``/``partial`` evaluation). Rows are sorted
    best first (direction from ``higher_is_better``). ``rank`` is the 1-based position;
    ``tie_group`` numbers groups: walking down the list, an entry joins its predecessor's group
    when its paired difference to that group's leader is not significant at ``1 - level``
    (sign-flip test on per-item values; for set-level metrics, overlapping CIs).

    Row keys: rank, tie_group, eval_id, suite, suite_version, checkpoint, checkpoint_name,
    run_name, step, created_at, status, metric, value, stderr, ci_low, ci_high, n,
    higher_is_better, extractor, scores (every metric of the eval: name -> value), failures,
    kind (model | submission | calibration), meta. Calibration rows are listed where their value
    puts them, with ``rank`` and ``tie_group`` None.
    """
    statuses = ("complete", "partial") + (("running", "failed") if include_incomplete else ())
    evals = [e for e in store.evals(suite=suite) if e["status"] in statuses]
    if not evals:
        return []
    version = suite_version or evals[-1]["suite_version"]
    evals = [e for e in evals if e["suite_version"] == version]
    latest: dict[str, dict[str, Any]] = {}
    for e in evals:  # oldest first, so the latest wins
        latest[e["checkpoint"] or e["eval_id"]] = e
    metric = metric or primary_metric(store, suite)
    ids = [e["eval_id"] for e in latest.values()]
    all_scores = store.scores(eval_ids=ids)
    by_eval: dict[str, dict[str, dict[str, Any]]] = {}
    for s in all_scores:
        by_eval.setdefault(s["eval_id"], {})[s["metric"]] = s
    known = sorted({s["metric"] for s in all_scores})
    if metric not in known:
        raise StoreError(f"suite {suite!r}: no scores for metric {metric!r}; scored metrics: {', '.join(known)}")
    failures: dict[str, int] = {}
    for f in store.failures():
        failures[f["eval_id"]] = failures.get(f["eval_id"], 0) + 1
    rows = []
    for e in latest.values():
        score = by_eval.get(e["eval_id"], {}).get(metric)
        if score is None or score["value"] is None:
            continue
        rows.append({
            "rank": 0, "tie_group": 0, "eval_id": e["eval_id"], "suite": e["suite"],
            "suite_version": e["suite_version"], "checkpoint": e["checkpoint"],
            "checkpoint_name": e["checkpoint_name"], "run_name": e["run_name"], "step": e["step"],
            "created_at": e["created_at"], "status": e["status"], "metric": metric, "value": score["value"],
            "stderr": score["stderr"], "ci_low": score["ci_low"], "ci_high": score["ci_high"], "n": score["n"],
            "higher_is_better": score["higher_is_better"], "extractor": score["extractor"],
            "scores": {m: v["value"] for m, v in sorted(by_eval.get(e["eval_id"], {}).items())},
            "failures": failures.get(e["eval_id"], 0), "kind": e.get("kind") or "model", "meta": e.get("meta") or {},
        })
    hib = next((r["higher_is_better"] for r in rows if r["higher_is_better"] is not None), True)
    rows.sort(key=lambda r: (-r["value"] if hib else r["value"], r["eval_id"]))
    group, leader, rank = 0, None, 0
    for r in rows:
        if r["kind"] == "calibration":  # reference rows sit in place, unranked (skyloom.eval.harness.calibration)
            r["rank"] = r["tie_group"] = None
            continue
        rank += 1
        r["rank"] = rank
        if leader is None or not _tied(store, leader, r, metric, level, seed):
            group += 1
            leader = r
        r["tie_group"] = group
    return rows


def verdict_label(v: str | None, a: str = "A", b: str = "B") -> str:
    """The words for a :func:`verdict` (``"a"``, ``"b"``, ``"tie"`` or ``None``), as every page shows it.

    Example:
        >>> verdict_label("b", "step-0", "step-40"), verdict_label(None)
        ('step-40 better', 'no verdict (no CI or no direction)')
    """
    if v == "a":
        return f"{a} better"
    if v == "b":
        return f"{b} better"
    if v == "tie":
        return "tie (CI includes 0)"
    return "no verdict (no CI or no direction)"
