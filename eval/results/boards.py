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


def _category_means(items: list[dict[str, Any]], category_of: dict[str, str]) -> dict[str, dict[str, dict[str, float]]]:
    """metric -> category -> item id -> value."""
    out: dict[str, dict[str, dict[str, float]]] = {}
    for r in items:
        if r.get("value") is None:
            continue
        cat = r.get("category") or category_of.get(r["item_id"]) or "general"
        out.setdefault(r["metric"], {}).setdefault(cat, {})[r["item_id"]] = float(r["value"])
    return out


def _mean(xs: list[float]) -> float | None:
    return sum(xs) / len(xs) if xs else None


def attach(store: Any, rows: list[dict[str, Any]], evals: list[dict[str, Any]]) -> dict[str, Any]:
    """Add ``breakdown`` (total, per category, per metric) to each leaderboard row; the board's info.

    Args:
        store: the :class:`skyloom.eval.results.store.ResultsStore` the rows come from.
        rows: :func:`skyloom.eval.results.stats.leaderboard` rows (one suite version), with ``kind``.
        evals: the ``evals`` rows of that suite version (their recorded suite declares the breakdown).

    Returns:
        ``{"flags": order_flags(...), "flagged": [metrics], "weights", "normalise", "low", "high",
        "categories": [...], "calibration_rows": [...]}``.
    """
    spec = suite_spec(evals)
    cal_spec, bd = spec["calibration"], spec["breakdown"]
    cal_rows = {r["checkpoint_name"]: r for r in rows if r.get("kind") == "calibration"}
    hib: dict[str, bool | None] = {}
    cal_names = {r["eval_id"]: name for name, r in cal_rows.items()}
    cis: dict[str, dict[str, tuple[float | None, float | None]]] = {}
    for s in store.scores(eval_ids=[r["eval_id"] for r in rows]):
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
    per_item = {r["eval_id"]: _category_means(store.items(r["eval_id"]), {}) for r in rows}
    low, high = cal_rows.get(low_name), cal_rows.get(high_name)
    cats = sorted({c for d in per_item.values() for m in d.values() for c in m})
    info["categories"] = cats
    if mode == "calibration" and (low is None or high is None):
        info["note"] = (f"the total needs the {low_name!r} and {high_name!r} calibration rows: run "
                        "skyloom eval --suite S --calibrate")
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
                mine = per_item[r["eval_id"]].get(m, {}).get(c, {})
                if not mine:
                    continue
                v = _mean(list(mine.values()))
                if mode == "none":
                    cn[m] = v
                    continue
                if low is None or high is None:
                    continue
                lo_items = per_item[low["eval_id"]].get(m, {}).get(c, {})
                hi_items = per_item[high["eval_id"]].get(m, {}).get(c, {})
                common = sorted(set(mine) & set(lo_items) & set(hi_items))  # the same items on all three sides
                if common:
                    cn[m] = normalise(_mean([mine[i] for i in common]), _mean([lo_items[i] for i in common]),
                                      _mean([hi_items[i] for i in common]))
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
    version = rows[0]["suite_version"]
    evals = [e for e in store.evals(suite=suite) if e["suite_version"] == version]
    info = attach(store, rows, evals)
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
