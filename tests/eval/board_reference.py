"""The boards as main computed them before issue 29, in Python over per-row reads: the reference that the
SQL path (:mod:`skyloom.eval.results.aggregate`) must reproduce.

Copied on purpose from skyloom commit 8cd5571 (``eval/results/stats.py``: ``primary_metric``, ``_tied``,
``suite_versions``, ``leaderboard``; ``eval/results/boards.py``: ``_category_means``, ``_mean``, ``attach``,
``board``), unchanged except that ``board`` calls the functions of this module. Do not "fix" it: it is the
reference.
"""
# ruff: noqa
from __future__ import annotations

from typing import Any

from skyloom.eval.results.boards import _weighted, normalise, order_flags, suite_spec, total_flags
from skyloom.eval.results.inference import TOO_FEW
from skyloom.eval.results.stats import paired_compare, tie_alpha
from skyloom.eval.results.store import ResultsStore, StoreError


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
    out: dict[str, dict[str, Any]] = {}
    for e in store.evals(suite=suite):
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
    statuses = ("complete", "partial") + (("running", "failed") if include_incomplete else ())
    evals = [e for e in store.evals(suite=suite) if e["status"] in statuses]
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
    alpha, _ = tie_alpha(level, sum(1 for r in rows if r["kind"] != "calibration" and not r["partial"]))
    group, leader, rank = 0, None, 0
    for r in rows:
        if r["kind"] == "calibration" or r["partial"]:  # references and partial entries: listed, unranked
            r["rank"] = r["tie_group"] = None
            continue
        rank += 1
        r["rank"] = rank
        tied, r["tie_verdict"] = (False, None) if leader is None else _tied(store, leader, r, metric, level, alpha,
                                                                             seed)
        if not tied:
            group += 1
            leader = r
        r["tie_group"] = group
    return rows


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


def board(store: Any, suite: str, metric: str | None = None, *, suite_version: str | None = None,
          level: float = 0.95, **kwargs: Any) -> dict[str, Any]:
    """:func:`skyloom.eval.results.stats.leaderboard` rows with their breakdown, and the board's flags.

    Returns:
        ``{"suite", "suite_version", "versions", "metric", "rows", "correction", "total_flags", **attach(...)}``
        (rows empty when nothing is finished); ``versions`` lists every version of the suite with
        its entry count (:func:`skyloom.eval.results.stats.suite_versions`), ``correction`` states
        how tie groups control for the board's many comparisons.
    """
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
