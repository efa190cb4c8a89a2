"""Statistics for leaderboards: bootstrap confidence intervals, paired checkpoint comparisons,
and a leaderboard that marks ties within noise.

- :func:`bootstrap_ci`: percentile bootstrap (Efron & Tibshirani 1993, ch. 13) of a statistic of
  per-item values, with the standard error of the mean ``s / sqrt(n)`` (``ddof=1``).
- :func:`paired_test`: two checkpoints scored on the *same* items (same prompt, same seed).
  The difference is ``mean(b - a)``; its p-value and CI come from one sign-flip test
  (:func:`skyloom.eval.results.inference.sign_flip`: exact over all ``2^n`` sign patterns when
  ``n <= EXACT_MAX_N``, else Monte Carlo), the CI being the test's inversion, so it excludes 0
  exactly when ``p < alpha``. It agrees with ``scipy.stats.permutation_test`` and, for large
  ``n``, with the paired t-test ``scipy.stats.ttest_rel``.
- :func:`paired_set_test`: two checkpoints compared on a *set-level* metric (FVD, KVD): a
  permutation test swapping each item's two videos between A and B, recomputing the metric
  from the per-item features against the same reference set
  (:func:`skyloom.eval.results.inference.paired_set_permutation`).
- :func:`verdict` (from :mod:`skyloom.eval.results.inference`): the one rule that turns a test of
  B − A into "a", "b", "tie" or "too few items" (significant iff ``p < alpha``). Every verdict
  printed (``compare``, leaderboard ties, dashboards) comes from it.
- :func:`paired_compare`: the same, reading per-item values (or, for set-level metrics, the
  per-item features saved at scoring time) of two evaluations from a
  :class:`skyloom.eval.results.store.ResultsStore`.
- :func:`leaderboard`: one row per checkpoint of a suite, ranked by a primary metric; entries
  whose difference to their group's leader is not significant at ``alpha / m`` (Bonferroni over
  the ``m`` comparisons the board makes) share a ``tie_group``; entries that miss items the
  others scored are listed unranked with their coverage.

Example:
    >>> import numpy as np
    >>> ci = bootstrap_ci(np.arange(10.0), seed=0)
    >>> round(ci.estimate, 2), ci.low < 4.5 < ci.high
    (4.5, True)
    >>> r = paired_test([0.1, 0.2, 0.3, 0.4], [0.2, 0.3, 0.4, 0.5])
    >>> round(r.diff, 3), r.p_value, r.significant  # 4 pairs: the smallest exact two-sided p is 2/16
    (0.1, 0.125, False)
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from skyloom.errors import InvalidInputError
from skyloom.eval.results.inference import (
    DEFAULT_N_PERM,
    EXACT_MAX_N,
    TOO_FEW,
    HypothesisTest,
    _as_1d,
    paired_set_permutation,
    sign_flip,
    verdict,
)
from skyloom.eval.results.store import StoreError

if TYPE_CHECKING:
    from skyloom.eval.results.store import ResultsStore

logger = logging.getLogger(__name__)

DEFAULT_N_BOOT = 2000
__all__ = ["CI", "Comparison", "DEFAULT_N_PERM", "EXACT_MAX_N", "PairedResult", "TOO_FEW", "bootstrap_ci",
           "compare_all", "leaderboard", "paired_compare", "paired_set_test", "paired_test", "primary_metric",
           "sign_flip_pvalue", "stderr_of_mean", "suite_versions", "tie_alpha", "verdict", "verdict_label"]


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
    """Result of comparing checkpoint B against A on paired items (difference = B - A).

    ``ci_low``/``ci_high`` are the inversion of the test that gave ``p_value`` (None without a
    test), so the interval excludes 0 exactly when ``p_value < alpha``.
    """

    n: int
    mean_a: float
    mean_b: float
    diff: float
    ci_low: float | None
    ci_high: float | None
    p_value: float | None
    method: str
    level: float
    alpha: float = 0.05
    min_p: float | None = None

    @property
    def test(self) -> HypothesisTest | None:
        if self.p_value is None:
            return None
        return HypothesisTest(p_value=self.p_value, ci_low=self.ci_low, ci_high=self.ci_high, alpha=self.alpha,
                    min_p=self.min_p, method=self.method)

    @property
    def significant(self) -> bool:
        """``p < alpha`` (:func:`verdict`'s rule); False without a test or with too few items."""
        t = self.test
        return t is not None and t.significant

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        for k in ("ci_low", "ci_high"):  # JSON has no infinity: an unbounded side is None
            if d[k] is not None and not math.isfinite(d[k]):
                d[k] = None
        d["significant"] = self.significant
        return d


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
        """:func:`verdict` of this comparison: ``"a"``, ``"b"``, ``"tie"``, ``"too few items"`` or ``None``."""
        return verdict(self.result.test, self.higher_is_better)

    @property
    def better(self) -> str | None:
        """``"a"``, ``"b"`` or ``None`` (not significant, too few items, no test, or direction unknown)."""
        v = self.verdict
        return v if v in ("a", "b") else None

    def to_dict(self) -> dict[str, Any]:
        d = {"metric": self.metric, "eval_a": self.eval_a, "eval_b": self.eval_b,
             "higher_is_better": self.higher_is_better, "extractor": self.extractor,
             "unpaired_items": self.unpaired_items, "better": self.better, "verdict": self.verdict}
        d.update(self.result.to_dict())
        return d


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
    """Two-sided sign-flip p-value of ``mean(diffs) = 0`` and the method's name
    (:func:`skyloom.eval.results.inference.sign_flip`)."""
    t = sign_flip(diffs, n_perm=n_perm, seed=seed, exact_max_n=exact_max_n)
    return float(t.p_value if t.p_value is not None else math.nan), t.method


def paired_test(a: Sequence[float] | np.ndarray, b: Sequence[float] | np.ndarray, *, n_perm: int = DEFAULT_N_PERM,
                level: float = 0.95, alpha: float | None = None, seed: int = 0, **_unused: Any) -> PairedResult:
    """Compare paired values ``b[i]`` vs ``a[i]`` (same item, same seed): difference ``mean(b - a)``.

    Args:
        a, b: per-item values of checkpoint A and B, in the same item order.
        n_perm: sign-flip resamples when ``n > EXACT_MAX_N``.
        level: confidence level of the CI; the test's ``alpha`` is ``1 - level`` unless given
            (a board making ``m`` comparisons passes ``(1 - level) / m``).
        seed: RNG seed.
    """
    xa, xb = _as_1d(a, "paired_test a"), _as_1d(b, "paired_test b")
    if xa.shape != xb.shape:
        raise ValueError(f"paired_test: a has {xa.size} values, b has {xb.size}; pairs must match")
    alpha = 1 - level if alpha is None else alpha
    d = xb - xa
    t = sign_flip(d, alpha=alpha, n_perm=n_perm, seed=seed)
    method = "identical" if np.all(d == 0) else t.method
    return PairedResult(n=int(d.size), mean_a=float(xa.mean()), mean_b=float(xb.mean()), diff=float(d.mean()),
                        ci_low=t.ci_low, ci_high=t.ci_high, p_value=t.p_value, method=method, level=level,
                        alpha=alpha, min_p=t.min_p)


def paired_set_test(real: np.ndarray, fake_a: np.ndarray, fake_b: np.ndarray,
                    value_fn: Callable[[np.ndarray, np.ndarray], float], *, n_perm: int = 200, level: float = 0.95,
                    alpha: float | None = None, seed: int = 0) -> PairedResult:
    """Paired permutation test of a set-level metric (FVD, KVD) between checkpoints A and B.

    Args:
        real: (M, D) reference features, the same for both sides and kept fixed.
        fake_a, fake_b: (n, D) features of A's and B's videos of the *same* items, row i = item i.
        value_fn: ``f(real, fake) -> value`` (the metric recomputed from features).
        n_perm: random swaps of items between A and B
            (:func:`skyloom.eval.results.inference.paired_set_permutation`).
        level: CI level (``alpha = 1 - level`` unless given); seed: RNG seed.

    Returns:
        :class:`PairedResult` with ``diff = value(B) − value(A)``, the permutation p-value and the
        interval that inverts it (0 outside it iff ``p < alpha``).
    """
    alpha = 1 - level if alpha is None else alpha
    va, vb, t = paired_set_permutation(real, fake_a, fake_b, value_fn, alpha=alpha, n_perm=n_perm, seed=seed)
    return PairedResult(n=int(np.asarray(fake_a).shape[0]), mean_a=va, mean_b=vb, diff=vb - va, ci_low=t.ci_low,
                        ci_high=t.ci_high, p_value=t.p_value, method=t.method, level=level, alpha=alpha,
                        min_p=t.min_p)


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


def paired_compare(store: ResultsStore, eval_a: str, eval_b: str, metric: str, *, n_perm: int = DEFAULT_N_PERM,
                   level: float = 0.95, alpha: float | None = None, seed: int = 0, set_perm: int = 200,
                   **_unused: Any) -> Comparison:
    """Paired per-item comparison of two stored evaluations on ``metric`` (difference = B - A).

    Items are matched by ``item_id`` (the suite's prompt id x seed, or probe-scene id). A set-level
    metric (FVD, KVD) is compared with :func:`paired_set_test` on the per-item features the scorer
    saved (``details.features``), over the items both evaluations scored, against the same reference
    features. When those are missing (older results) or the references differ there is no test:
    ``p_value`` and the CI are None, the verdict is "no verdict" and ``method`` says why (stored
    intervals of two set-level scores do not make a test of their difference).

    Args:
        alpha: the test's level (default ``1 - level``; a board of ``m`` comparisons passes ``(1 - level) / m``).
        set_perm: permutations of a set-level test.

    Raises:
        ValueError: the metric is missing from either evaluation, or pairs disagree on seed/prompt.
    """
    alpha = 1 - level if alpha is None else alpha
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
    res, why = None, "no saved per-item features"
    if len(common) >= 1:
        res = paired_test([ia[k]["value"] for k in common], [ib[k]["value"] for k in common],
                          n_perm=n_perm, level=level, alpha=alpha, seed=seed)
    elif fa_ is not None and fb_ is not None:
        (real_a, xa, ida), (real_b, xb, idb) = fa_, fb_
        pos_a, pos_b = {k: i for i, k in enumerate(ida)}, {k: i for i, k in enumerate(idb)}
        both = sorted(set(pos_a) & set(pos_b))
        unpaired = len(set(pos_a) ^ set(pos_b))
        why = "different reference features"
        if real_a.shape == real_b.shape and np.array_equal(real_a, real_b) and len(both) >= 2:
            try:
                res = paired_set_test(real_a, xa[[pos_a[k] for k in both]], xb[[pos_b[k] for k in both]],
                                      _set_value_fn(sa_["details"]), n_perm=set_perm, level=level, alpha=alpha,
                                      seed=seed)
            except ValueError as e:  # e.g. a metric this process cannot build
                why = f"set test unavailable: {e}"
                logger.debug("%s: paired set test unavailable (%s)", metric, e)
        elif len(both) < 2:
            why = f"{len(both)} item(s) in common"
    if res is None:
        va, vb = float(sa_["value"]), float(sb["value"])
        res = PairedResult(n=0, mean_a=va, mean_b=vb, diff=vb - va, ci_low=None, ci_high=None, p_value=None,
                           method=f"no verdict: set-level, unpaired ({why})", level=level, alpha=alpha)
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
    from skyloom.eval.results.aggregate import suite_config

    pm = suite_config(store, suite, want=lambda s: bool(s.get("primary_metric"))).get("primary_metric")
    if pm:
        return str(pm)
    names = sorted({r["metric"] for r in store.scores(suite=suite)})
    if not names:
        raise StoreError(f"suite {suite!r} has no scores in {store.url}")
    return names[0]


def tie_alpha(level: float, n_ranked: int) -> tuple[float, int]:
    """(per-comparison alpha, number of comparisons) of a board ranking ``n_ranked`` entries:
    ``m = n_ranked - 1`` comparisons, each at ``(1 - level) / m`` (Bonferroni)."""
    m = max(1, n_ranked - 1)
    return (1 - level) / m, m


def _tied(store: ResultsStore, leader: dict[str, Any], other: dict[str, Any], metric: str, level: float,
          alpha: float, seed: int) -> tuple[bool, str]:
    """Whether ``other`` ties with its group's ``leader``, and the verdict that says so."""
    try:
        cmp = paired_compare(store, leader["eval_id"], other["eval_id"], metric, level=level, alpha=alpha,
                             seed=seed, n_perm=4000)
    except ValueError as e:
        return False, f"not comparable ({e})"
    v = cmp.verdict  # the one decision rule
    if v is None:  # no test (set-level metric without saved features): no claim of a difference
        return True, "no verdict"
    return v in ("tie", TOO_FEW), v


def suite_versions(store: ResultsStore, suite: str,
                   statuses: Sequence[str] = ("complete", "partial")) -> list[dict[str, Any]]:
    """The versions of ``suite`` in the store, newest first: ``{"version", "entries", "latest"}``
    (entries: distinct checkpoints/entries with a finished evaluation of that version)."""
    from skyloom.eval.results.aggregate import eval_rows

    out: dict[str, dict[str, Any]] = {}
    for e in eval_rows(store, suite):
        if e["status"] not in statuses:
            continue
        v = out.setdefault(e["suite_version"], {"version": e["suite_version"], "ids": set(), "latest": ""})
        v["ids"].add(e["checkpoint"] or e["eval_id"])
        v["latest"] = max(v["latest"], e["created_at"] or "")
    rows = [{"version": v["version"], "entries": len(v["ids"]), "latest": v["latest"]} for v in out.values()]
    return sorted(rows, key=lambda r: r["latest"], reverse=True)


def leaderboard(store: ResultsStore, suite: str, metric: str | None = None, *, level: float = 0.95,
                seed: int = 0, include_incomplete: bool = False,
                suite_version: str | None = None) -> list[dict[str, Any]]:
    """Rank the checkpoints evaluated on ``suite`` by ``metric`` and mark ties within noise.

    Only evaluations of one suite version are ranked together: ``suite_version`` (the stored
    ``<version>+<content hash>``), by default that of the most recent evaluation
    (:func:`suite_versions` lists them all); a suite whose prompts, seeds, metrics, extractors or
    settings changed is a different leaderboard. One row per checkpoint (its latest
    ``complete``/``partial`` evaluation).

    **Coverage.** An entry whose metric covers fewer items than the board's most complete entry
    (missing videos, items that failed to score: each counted in ``n``) is *partial*: listed after
    the ranked entries with ``rank`` and ``tie_group`` None and ``coverage`` ``"scored/expected"``,
    so leaving out one's worst items never lifts an entry above a complete one.

    **Ties.** Complete entries are sorted best first (direction from ``higher_is_better``);
    ``rank`` is the 1-based position; walking down the list, an entry joins its predecessor's
    ``tie_group`` unless its paired difference to that group's leader is significant
    (:func:`verdict`) at ``alpha = (1 - level) / m`` with ``m`` = ranked entries − 1 (Bonferroni,
    :func:`tie_alpha`); "too few items" and "no verdict" tie. ``tie_verdict`` is that verdict.

    Row keys: rank, tie_group, tie_verdict, eval_id, suite, suite_version, checkpoint,
    checkpoint_name, run_name, step, created_at, status, metric, value, stderr, ci_low, ci_high, n,
    n_scored, coverage, partial, higher_is_better, extractor, scores (every metric of the eval:
    name -> value), failures, kind (model | submission | calibration), meta. Calibration rows are
    listed where their value puts them, with ``rank`` and ``tie_group`` None.
    """
    from skyloom.eval.results.aggregate import eval_rows, failure_counts, item_values, score_rows

    statuses = ("complete", "partial") + (("running", "failed") if include_incomplete else ())
    evals = [e for e in eval_rows(store, suite) if e["status"] in statuses]
    if not evals:
        return []
    version = suite_version or evals[-1]["suite_version"]
    if suite_version is not None and all(e["suite_version"] != suite_version for e in evals):
        have = ", ".join(f"{v['version']} ({v['entries']} entries)" for v in suite_versions(store, suite, statuses))
        raise StoreError(f"suite {suite!r} has no finished evaluation of version {suite_version!r}; versions: {have}")
    evals = [e for e in evals if e["suite_version"] == version]
    latest: dict[str, dict[str, Any]] = {}
    for e in evals:  # oldest first, so the latest wins
        latest[e["checkpoint"] or e["eval_id"]] = e
    metric = metric or primary_metric(store, suite)
    ids = [e["eval_id"] for e in latest.values()]
    all_scores = score_rows(store, ids, details_for=metric)
    by_eval: dict[str, dict[str, dict[str, Any]]] = {}
    for s in all_scores:
        by_eval.setdefault(s["eval_id"], {})[s["metric"]] = s
    known = sorted({s["metric"] for s in all_scores})
    if metric not in known:
        raise StoreError(f"suite {suite!r}: no scores for metric {metric!r}; scored metrics: {', '.join(known)}")
    failures = failure_counts(store, ids)
    rows = []
    for e in latest.values():
        score = by_eval.get(e["eval_id"], {}).get(metric)
        if score is None or score["value"] is None:
            continue
        n = score["n"] or 0
        det = score.get("details") or {}
        scored = int(det.get("n_scored", n)) + int(det.get("n_excluded", 0))  # exclusions by protocol count as covered
        rows.append({
            "rank": 0, "tie_group": 0, "tie_verdict": None, "eval_id": e["eval_id"], "suite": e["suite"],
            "suite_version": e["suite_version"], "checkpoint": e["checkpoint"],
            "checkpoint_name": e["checkpoint_name"], "run_name": e["run_name"], "step": e["step"],
            "created_at": e["created_at"], "status": e["status"], "metric": metric, "value": score["value"],
            "stderr": score["stderr"], "ci_low": score["ci_low"], "ci_high": score["ci_high"], "n": n,
            "n_scored": scored,
            "higher_is_better": score["higher_is_better"], "extractor": score["extractor"],
            "scores": {m: v["value"] for m, v in sorted(by_eval.get(e["eval_id"], {}).items())},
            "failures": failures.get(e["eval_id"], 0), "kind": e.get("kind") or "model", "meta": e.get("meta") or {},
        })
    expected = max((max(r["n"], r["n_scored"]) for r in rows), default=0)
    for r in rows:
        r["coverage"] = f"{r['n_scored']}/{expected}"
        r["partial"] = r["kind"] != "calibration" and r["n_scored"] < expected
    hib = next((r["higher_is_better"] for r in rows if r["higher_is_better"] is not None), True)
    rows.sort(key=lambda r: (r["partial"], -r["value"] if hib else r["value"], r["eval_id"]))
    ranked = [r for r in rows if r["kind"] != "calibration" and not r["partial"]]
    alpha, _ = tie_alpha(level, len(ranked))
    values = item_values(store, metric, [r["eval_id"] for r in ranked])  # every tie test's items, one query
    group, leader, rank = 0, None, 0
    for r in rows:
        if r["kind"] == "calibration" or r["partial"]:  # references and partial entries: listed, unranked
            r["rank"] = r["tie_group"] = None
            continue
        rank += 1
        r["rank"] = rank
        tied, r["tie_verdict"] = (False, None) if leader is None else _tied_items(
            store, leader, r, metric, level, alpha, seed, values)
        if not tied:
            group += 1
            leader = r
        r["tie_group"] = group
    return rows


def _tied_items(store: ResultsStore, leader: dict[str, Any], other: dict[str, Any], metric: str, level: float,
                alpha: float, seed: int, values: dict[str, tuple[list[str], np.ndarray, list[int | None]]]
                ) -> tuple[bool, str]:
    """:func:`_tied` from per-item values fetched in bulk (:func:`skyloom.eval.results.aggregate.item_values`):
    the same pairing, seed check, test and verdict as :func:`paired_compare` on a per-item metric. Pairs with
    no item in common (a set-level metric) go through :func:`_tied` itself."""
    a, b = values.get(leader["eval_id"]), values.get(other["eval_id"])
    if a is None or b is None:
        return _tied(store, leader, other, metric, level, alpha, seed)
    pos_b = {k: j for j, k in enumerate(b[0])}
    common = [(i, pos_b[k]) for i, k in enumerate(a[0]) if k in pos_b]  # both sorted by item id
    if not common:
        return _tied(store, leader, other, metric, level, alpha, seed)
    ia, ib = np.fromiter((i for i, _ in common), np.intp, len(common)), np.fromiter((j for _, j in common), np.intp,
                                                                                      len(common))
    for i, j in common:
        sa_, sb = a[2][i], b[2][j]
        if sa_ is not None and sb is not None and sa_ != sb:
            e = InvalidInputError(f"item {a[0][i]!r}: seed {sa_} in {leader['eval_id']} but {sb} in "
                                  f"{other['eval_id']}; a paired comparison needs the same seeds")
            return False, f"not comparable ({e})"
    try:
        res = paired_test(a[1][ia], b[1][ib], n_perm=4000, level=level, alpha=alpha, seed=seed)
    except ValueError as e:
        return False, f"not comparable ({e})"
    hib = leader["higher_is_better"] if leader["higher_is_better"] is not None else other["higher_is_better"]
    v = verdict(res.test, hib)
    if v is None:
        return True, "no verdict"
    return v in ("tie", TOO_FEW), v


def verdict_label(v: str | None, a: str = "A", b: str = "B") -> str:
    """The words for a :func:`verdict` (``"a"``, ``"b"``, ``"tie"``, ``"too few items"`` or ``None``), as every
    page shows it.

    Example:
        >>> verdict_label("b", "step-0", "step-40"), verdict_label(None)
        ('step-40 better', 'no verdict (no test or no direction)')
    """
    if v == "a":
        return f"{a} better"
    if v == "b":
        return f"{b} better"
    if v == "tie":
        return "tie (p >= alpha; the CI includes 0)"
    if v == TOO_FEW:
        return "too few items (no result could reach alpha)"
    return "no verdict (no test or no direction)"
