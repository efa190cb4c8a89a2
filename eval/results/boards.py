"""What a board says beyond the ranking: calibration-order flags and a VBench-style score breakdown.

**Order flags.** A suite declares the order its calibration rows (:mod:`skyloom.eval.harness.calibration`)
must come out in, best first (``calibration.order``, per metric ``calibration.metric_order``).
For each metric, every pair of declared rows is checked in the metric's direction; a pair that
comes out the wrong way round (the worse row strictly better) flags the metric: its numbers do
not separate real data from the trivial baseline, whatever they say about models.

**Breakdown.** As VBench reports per-dimension scores and a weighted total, a suite declares
``breakdown.weights`` (metric -> weight) and a normalisation: with ``normalise: calibration``,

    norm_m = (v_m - low_m) / (high_m - low_m)

where ``low_m``/``high_m`` are the values of the ``low`` (default ``noise``) and ``high``
(``ground_truth``) calibration rows on metric ``m``, so 0 is "as good as noise" and 1 "as good
as the ground truth" in either metric direction (values outside [0, 1] are kept: better than
the ground truth, or worse than noise). The total is ``sum_m w_m norm_m / sum_m w_m`` over the
metrics that have a value. Per category (the suite's prompt categories, ``physics``) the same
is computed from per-item values of that category's items, normalised by the calibration rows'
values on the same items; set-level metrics (FVD, KVD) have no per-item values and enter only
the total.

Example:
    >>> normalise(0.5, low=0.0, high=2.0)
    0.25
    >>> normalise(30.0, low=100.0, high=10.0)  # lower is better: noise 100, ground truth 10
    0.7777777777777778
"""

from __future__ import annotations

import itertools
import logging
from typing import Any

logger = logging.getLogger(__name__)


def normalise(value: float | None, low: float | None, high: float | None) -> float | None:
    """``(value - low) / (high - low)``; ``None`` when any is missing or ``high == low``."""
    if value is None or low is None or high is None or high == low:
        return None
    return (value - low) / (high - low)


def _weighted(norms: dict[str, float | None], weights: dict[str, float]) -> float | None:
    used = {m: w for m, w in weights.items() if w > 0 and norms.get(m) is not None}
    total = sum(used.values())
    if not used or total <= 0:
        return None
    return sum(w * float(norms[m] or 0.0) for m, w in used.items()) / total  # every used norm is not None


def suite_spec(evals: list[dict[str, Any]]) -> dict[str, Any]:
    """The ``calibration`` and ``breakdown`` sections recorded in the latest of ``evals`` (the suite as run)."""
    for e in reversed(evals):
        s = (e.get("config") or {}).get("suite") or {}
        if s:
            return {"calibration": s.get("calibration") or {}, "breakdown": s.get("breakdown") or {}}
    return {"calibration": {}, "breakdown": {}}


def order_flags(values: dict[str, dict[str, float | None]], hib: dict[str, bool | None],
                calibration: dict[str, Any],
                cis: dict[str, dict[str, tuple[float | None, float | None]]] | None = None,
                ) -> dict[str, dict[str, Any]]:
    """Per metric: the declared order, the calibration rows' values, and the pairs out of order.

    A pair out of order flags the metric; when the two rows' confidence intervals overlap the
    violation says so ("within the CIs"): the metric cannot tell the two apart on this suite.

    Args:
        values: calibration row name -> metric -> value.
        hib: metric -> higher is better.
        calibration: the suite's ``calibration`` section (``order``, ``metric_order``).
        cis: calibration row name -> metric -> (ci_low, ci_high), when known.

    Returns:
        metric -> ``{"order": [...], "values": {row: v}, "violations": ["x better than y"], "flagged": bool}``
        for metrics with at least two declared rows present.
    """
    out: dict[str, dict[str, Any]] = {}
    default = list(calibration.get("order") or ("ground_truth", "noise"))
    per_metric = calibration.get("metric_order") or {}
    metrics = sorted({m for v in values.values() for m in v})
    for m in metrics:
        order = [r for r in per_metric.get(m, default) if values.get(r, {}).get(m) is not None]
        if len(order) < 2:
            continue
        up = hib.get(m)
        up = True if up is None else bool(up)
        vals = {r: values[r][m] for r in order}
        bad = []
        for better, worse in itertools.combinations(order, 2):
            vb, vw = vals[better], vals[worse]
            if vb is None or vw is None:
                continue
            if (vw > vb) if up else (vw < vb):
                (bl, bh), (wl, wh) = ((cis or {}).get(r, {}).get(m, (None, None)) for r in (better, worse))
                within = (bl is not None and bh is not None and wl is not None and wh is not None
                          and not (bh < wl or wh < bl))
                bad.append(f"{worse} ({vw:.4g}) scores better than {better} ({vb:.4g})"
                           + (", within the CIs" if within else ""))
        out[m] = {"order": order, "values": vals, "violations": bad, "flagged": bool(bad),
                  "higher_is_better": up}
    return out


def attach(store: Any, rows: list[dict[str, Any]], evals: list[dict[str, Any]],
           spec: dict[str, Any] | None = None) -> dict[str, Any]:
    """Add ``breakdown`` (total, per category, per metric) to each leaderboard row; the board's info.

    Args:
        store: the :class:`skyloom.eval.results.store.ResultsStore` the rows come from.
        rows: :func:`skyloom.eval.results.stats.leaderboard` rows (one suite version), with ``kind``.
        evals: the ``evals`` rows of that suite version (their recorded suite declares the breakdown).
        spec: :func:`suite_spec` of them when already known (``evals`` is then not read).

    The per-category means are one ``GROUP BY`` in the database
    (:func:`skyloom.eval.results.aggregate.category_means`), not a read of every item.

    Returns:
        ``{"flags": order_flags(...), "flagged": [metrics], "weights", "normalise", "low", "high",
        "categories": [...], "calibration_rows": [...]}``.
    """
    from skyloom.eval.results.aggregate import category_means, score_rows

    spec = suite_spec(evals) if spec is None else spec
    cal_spec, bd = spec["calibration"], spec["breakdown"]
    cal_rows = {r["checkpoint_name"]: r for r in rows if r.get("kind") == "calibration"}
    hib: dict[str, bool | None] = {}
    cal_names = {r["eval_id"]: name for name, r in cal_rows.items()}
    cis: dict[str, dict[str, tuple[float | None, float | None]]] = {}
    for s in score_rows(store, [r["eval_id"] for r in rows]):
        if hib.get(s["metric"]) is None:
            hib[s["metric"]] = s["higher_is_better"]
        if s["eval_id"] in cal_names:
            cis.setdefault(cal_names[s["eval_id"]], {})[s["metric"]] = (s["ci_low"], s["ci_high"])
    cal_values = {name: dict(r["scores"]) for name, r in cal_rows.items()}
    flags = order_flags(cal_values, hib, cal_spec, cis)
    weights = {m: float(w) for m, w in (bd.get("weights") or {}).items()}
    mode = bd.get("normalise") or "calibration"
    low_name, high_name = bd.get("low") or "noise", bd.get("high") or "ground_truth"
    info = {"flags": flags, "flagged": sorted(m for m, f in flags.items() if f["flagged"]), "weights": weights,
            "normalise": mode, "low": low_name, "high": high_name, "categories": [],
            "calibration_rows": sorted(cal_rows)}
    if not weights:
        for r in rows:
            r["breakdown"] = None
        return info
    low, high = cal_rows.get(low_name), cal_rows.get(high_name)
    ids = [r["eval_id"] for r in rows]
    if mode == "calibration" and (low is None or high is None):
        info["note"] = (f"the total needs the {low_name!r} and {high_name!r} calibration rows: run "
                        "skyloom eval --suite S --calibrate")
    if mode == "none":
        cats, means = category_means(store, ids, list(weights))
    elif low is not None and high is not None:
        cats, means = category_means(store, ids, list(weights), low=low["eval_id"], high=high["eval_id"])
    else:
        cats, _ = category_means(store, ids, [])
        means = {}
    info["categories"] = cats
    for r in rows:
        norms: dict[str, float | None] = {}
        cat_scores: dict[str, float | None] = {}
        for m in weights:
            v = r["scores"].get(m)
            if mode == "none":
                norms[m] = v
            else:
                norms[m] = normalise(v, None if low is None else low["scores"].get(m),
                                     None if high is None else high["scores"].get(m))
        for c in cats:
            cn: dict[str, float | None] = {}
            for m in weights:
                got = means.get((r["eval_id"], m, c))
                if got is None:  # no item of this category (on all three sides when normalised)
                    continue
                v, lo_mean, hi_mean = got
                cn[m] = v if mode == "none" else normalise(v, lo_mean, hi_mean)
            cat_scores[c] = _weighted(cn, weights)
        r["breakdown"] = {"total": _weighted(norms, weights), "categories": cat_scores, "metrics": norms}
    return info


def total_flags(rows: list[dict[str, Any]], high: str = "ground_truth") -> list[str]:
    """Calibration rows whose breakdown total is above the ``high`` row's (the ground truth): the
    weighted total cannot then be read as "closer to real data is better"."""
    totals = {r["checkpoint_name"]: (r.get("breakdown") or {}).get("total") for r in rows
              if r.get("kind") == "calibration"}
    top = totals.get(high)
    if top is None:
        return []
    return [f"{name} ({t:.4g}) totals above {high} ({top:.4g})" for name, t in sorted(totals.items())
            if name != high and t is not None and t > top]


def board(store: Any, suite: str, metric: str | None = None, *, suite_version: str | None = None,
          level: float = 0.95, **kwargs: Any) -> dict[str, Any]:
    """:func:`skyloom.eval.results.stats.leaderboard` rows with their breakdown, and the board's flags.

    Returns:
        ``{"suite", "suite_version", "versions", "metric", "rows", "correction", "total_flags", **attach(...)}``
        (rows empty when nothing is finished); ``versions`` lists every version of the suite with
        its entry count (:func:`skyloom.eval.results.stats.suite_versions`), ``correction`` states
        how tie groups control for the board's many comparisons.
    """
    from skyloom.eval.results.stats import leaderboard, suite_versions, tie_alpha

    versions = suite_versions(store, suite)
    rows = leaderboard(store, suite, metric, suite_version=suite_version, level=level, **kwargs)
    if not rows:
        return {"suite": suite, "suite_version": suite_version, "versions": versions, "metric": metric, "rows": [],
                "flags": {}, "flagged": [], "weights": {}, "categories": [], "calibration_rows": [],
                "correction": "", "total_flags": []}
    from skyloom.eval.results.aggregate import suite_config

    version = rows[0]["suite_version"]
    s = suite_config(store, suite, version)  # the latest evaluation of this version that recorded its suite
    spec = {"calibration": s.get("calibration") or {}, "breakdown": s.get("breakdown") or {}}
    info = attach(store, rows, [], spec=spec)
    ranked = sum(1 for r in rows if r["rank"] is not None)
    alpha, m = tie_alpha(level, ranked)
    correction = (f"tie groups: sign-flip/permutation test of each entry against its group's leader at "
                  f"alpha = {1 - level:g}/{m} = {alpha:.3g} (Bonferroni over {m} comparison(s))")
    partial = [r for r in rows if r.get("partial")]
    if partial:
        correction += (f"; {len(partial)} partial entr{'y' if len(partial) == 1 else 'ies'} listed unranked "
                       "(fewer items scored than the complete entries)")
    flags = total_flags(rows, info.get("high") or "ground_truth")
    return {"suite": suite, "suite_version": version, "versions": versions, "metric": rows[0]["metric"],
            "rows": rows, "correction": correction, "total_flags": flags, **info}
