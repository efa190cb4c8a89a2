"""The boards' SQL path (issue 29) gives the board that main's Python path gave, on randomized stores.

The reference is main's code before the change, kept verbatim in ``tests/eval/board_reference.py``. Every key
of every row is compared exactly (ranks, tie groups and verdicts, coverage, failures, scores, versions), except
the breakdown's per-category numbers: the database averages them, so they agree to rounding (rel 1e-12).
"""

from __future__ import annotations

import math
import random

import numpy as np
import pytest
import sqlalchemy as sa

from skyloom.eval.results import aggregate
from skyloom.eval.results.boards import board
from skyloom.eval.results.inference import (
    DEFAULT_ALPHA,
    DEFAULT_N_PERM,
    EXACT_MAX_N,
    HypothesisTest,
    Sequence,
    _as_1d,
    _threshold,
    min_attainable_p,
    sign_flip,
)
from skyloom.eval.results.stats import leaderboard, suite_versions
from skyloom.eval.results.store import ResultsStore
from tests.eval import board_reference as ref

CATS = ("colour", "motion", None, "", "count")


def _suite_cfg(rng: random.Random, primary: str) -> dict:
    weights = {"m_up": 1.0, "m_down": 0.5, "fvd": 1.0} if rng.random() < 0.8 else {}
    mode = rng.choice(["calibration", "calibration", "none"])
    return {"suite": {"primary_metric": primary, "calibration": {"order": ["ground_truth", "noise"]},
                      "breakdown": {"weights": weights, "normalise": mode}}}


def random_store(path, seed: int) -> ResultsStore:
    """A store as boards meet them: several suite versions, calibration rows, partial entries (items failed),
    failures, re-evaluated checkpoints, running/failed evaluations, exact ties and near ties."""
    rng = random.Random(seed)
    st = ResultsStore(path)
    n_items = rng.choice([6, 12, 16, 20, 40])
    items = [(f"p{i:02d}-s{i % 3}", i % 3, CATS[i % len(CATS)]) for i in range(n_items)]
    primary = rng.choice(["m_up", "m_down", "m_up"])
    versions = ["1+aaaa", "2+bbbb"] if rng.random() < 0.6 else ["1+aaaa"]
    entries = [("calibration", name) for name in ("ground_truth", "noise") if rng.random() < 0.85]
    entries += [("model", f"ck{k}") for k in range(rng.randint(3, 18))]
    entries += [("model", "ck0")] if rng.random() < 0.5 else []  # a checkpoint evaluated twice: the latest counts
    clone_of = None
    for k, (kind, name) in enumerate(entries):
        eid = f"e{k:03d}-{name}"
        version = rng.choice(versions)
        status = rng.choices(["complete", "partial", "running", "failed"], [10, 2, 1, 1])[0]
        st.begin_eval(eid, suite="s", suite_version=version, checkpoint=None if kind == "calibration" else f"/r/{name}",
                      checkpoint_name=name, kind=kind, config=_suite_cfg(rng, primary), status=status,
                      created_at=f"2026-12-01T00:{k // 60:02d}:{k % 60:02d}Z", meta={"who": name})
        quality = {"ground_truth": 1.0, "noise": 0.0}.get(name, rng.random())
        partial = kind == "model" and rng.random() < 0.2
        missing = set(rng.sample(range(n_items), rng.randint(1, 3))) if partial else set()
        for i in missing:
            st.add_failure(eid, items[i][0], "generate", "synthetic")
        if rng.random() < 0.15:
            st.add_failure(eid, "*", "score:fvd", "synthetic")
        tie_copy = clone_of is not None and kind == "model" and rng.random() < 0.25
        for m, up in (("m_up", True), ("m_down", False)):
            rows = []
            for i, (item, s, cat) in enumerate(items):
                if i in missing:
                    continue
                v = 0.5 + 0.1 * quality * (1 if up else -1) + rng.gauss(0, 0.05)
                if tie_copy:  # exactly the values of an earlier entry: every difference is 0
                    v = clone_of[(m, item)]
                if rng.random() < 0.03:
                    v = None  # excluded by the metric's protocol
                rows.append({"item_id": item, "metric": m, "value": v, "seed": s, "prompt": item, "category": cat})
            st.put_items(eid, rows)
            if kind == "model" and clone_of is None:
                clone_of = {(m2, r["item_id"]): r["value"] for m2 in ("m_up", "m_down") for r in rows}
            vals = [r["value"] for r in rows if r["value"] is not None]
            excluded = sum(r["value"] is None for r in rows)
            st.put_scores(eid, [{"metric": m, "value": sum(vals) / len(vals), "ci_low": 0.0, "ci_high": 1.0,
                                 "n": n_items, "higher_is_better": up,
                                 "details": {"n_scored": len(vals), "n_excluded": excluded}}])
        fvd = 100 * (1.2 - quality) + rng.gauss(0, 5)
        st.put_scores(eid, [{"metric": "fvd", "value": fvd, "ci_low": fvd - 9, "ci_high": fvd + 9, "n": n_items,
                             "higher_is_better": False, "details": {"n_scored": n_items - len(missing)}}])
    return st


def _same_board(got: dict, want: dict) -> None:
    assert set(got) == set(want)
    for k in want:
        if k != "rows":
            assert got[k] == want[k], k
    assert [r["eval_id"] for r in got["rows"]] == [r["eval_id"] for r in want["rows"]]
    for g, w in zip(got["rows"], want["rows"]):
        assert set(g) == set(w)
        for k in w:
            if k != "breakdown":
                assert g[k] == w[k], (g["eval_id"], k)
        gb, wb = g["breakdown"], w["breakdown"]
        assert (gb is None) == (wb is None)
        if wb is None:
            continue
        assert gb["total"] == wb["total"] and gb["metrics"] == wb["metrics"]  # stored scores: exact
        assert set(gb["categories"]) == set(wb["categories"])
        for c, wv in wb["categories"].items():
            gv = gb["categories"][c]
            assert (gv is None) == (wv is None), (g["eval_id"], c)
            if wv is not None:
                assert math.isclose(gv, wv, rel_tol=1e-12, abs_tol=1e-12), (g["eval_id"], c, gv, wv)


@pytest.mark.parametrize("seed", range(8))
def test_sql_board_equals_python_board_on_random_stores(tmp_path, seed):
    st = random_store(tmp_path / "results.sqlite", seed)
    versions = [v["version"] for v in ref.suite_versions(st, "s")]
    assert suite_versions(st, "s") == ref.suite_versions(st, "s")
    for version in [None, *versions]:
        for metric in (None, "m_up", "m_down", "fvd"):
            want = ref.board(st, "s", metric, suite_version=version)
            _same_board(board(st, "s", metric, suite_version=version), want)
    for inc in (False, True):
        assert leaderboard(st, "s", include_incomplete=inc) == ref.leaderboard(st, "s", include_incomplete=inc)
    st.close()


def test_random_stores_exercise_what_they_claim(tmp_path):
    """The randomized stores hold partial entries, ties, several versions, failures and both normalisations:
    the equivalence test above is not passing on trivial boards."""
    seen = {"partial": 0, "tie": 0, "versions": 0, "failures": 0, "exact": 0, "monte-carlo": 0, "categories": 0}
    for seed in range(8):
        st = random_store(tmp_path / f"r{seed}.sqlite", seed)
        bd = ref.board(st, "s")
        rows = bd["rows"]
        seen["partial"] += sum(bool(r["partial"]) for r in rows)
        seen["tie"] += sum(r["tie_verdict"] in ("tie", "too few items") for r in rows)
        seen["versions"] += len(bd["versions"]) > 1
        seen["failures"] += sum(r["failures"] > 0 for r in rows)
        seen["categories"] += any((r.get("breakdown") or {}).get("categories") for r in rows)
        n = max(r["n"] for r in rows)
        seen["exact" if n <= 16 else "monte-carlo"] += 1
        st.close()
    assert all(v > 0 for v in seen.values()), seen


def test_board_reads_a_fixed_number_of_statements_whatever_the_entries(tmp_path):
    """Bulk reads: the statements a board runs do not grow with its entries (per-item primary metric)."""
    counts = []
    for k, n in enumerate((4, 16)):
        st = ResultsStore(tmp_path / f"b{k}.sqlite")
        for e in range(n):
            st.begin_eval(f"e{e}", suite="s", suite_version="1+a", checkpoint=f"/c{e}", status="complete",
                          config={"suite": {"primary_metric": "m", "breakdown": {"weights": {"m": 1.0}}}},
                          created_at=f"2026-12-01T00:00:{e:02d}Z")
            st.put_items(f"e{e}", [{"item_id": f"i{i}", "metric": "m", "value": 0.01 * e + 0.001 * i,
                                    "category": "c"} for i in range(20)])
            st.put_scores(f"e{e}", [{"metric": "m", "value": 0.01 * e, "n": 20, "higher_is_better": True}])
        seen: list[str] = []
        sa.event.listen(st.engine, "before_cursor_execute", lambda *a, seen=seen: seen.append(a[2]))
        assert len(board(st, "s")["rows"]) == n
        counts.append(len(seen))
        st.close()
    assert counts[0] == counts[1], counts


# Copied from skyloom commit 8cd5571 (eval/results/inference.py): the sign patterns drawn on every call.
def _old_sign_flip(diffs: Sequence[float] | np.ndarray, *, alpha: float = DEFAULT_ALPHA, n_perm: int = DEFAULT_N_PERM,
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
    means = np.concatenate([(m @ d) / m.sum(axis=1) for m in np.array_split(masks, max(1, len(masks) // 4096))]
                           ) if len(masks) else np.zeros(0)
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


@pytest.mark.parametrize("n", [3, 16, 17, 64])
def test_cached_sign_patterns_give_bit_identical_tests(n):
    """Drawing the sign patterns once per (n, n_perm, seed) changes no bit of any p-value or interval."""
    rng = np.random.default_rng(n)
    for trial in range(4):
        d = rng.normal(0.3 * (trial - 1), 1.0, n)
        for alpha in (0.05, 0.05 / 999):
            want = _old_sign_flip(d, alpha=alpha, n_perm=500, seed=trial % 2)
            assert sign_flip(d, alpha=alpha, n_perm=500, seed=trial % 2) == want
            assert sign_flip(d, alpha=alpha, n_perm=500, seed=trial % 2) == want  # from the cache


def test_category_means_match_python_means(tmp_path):
    st = random_store(tmp_path / "c.sqlite", 3)
    ids = [e["eval_id"] for e in st.evals()]
    _, got = aggregate.category_means(st, ids, ["m_up", "m_down"])
    want: dict = {}
    for e in ids:
        for r in st.items(e):
            if r["value"] is not None:
                want.setdefault((e, r["metric"], r["category"] or "general"), []).append(r["value"])
    assert set(got) == set(want)
    for k, vs in want.items():
        assert math.isclose(got[k][0], sum(vs) / len(vs), rel_tol=1e-12)
    st.close()


@pytest.mark.postgres
@pytest.mark.parametrize("seed", [0, 3, 6])
def test_sql_board_equals_python_board_on_postgres(pg_url, seed):
    """The same queries on a PostgreSQL server (tests/pgserver.py; its collation is not bytewise by default):
    the board equals the Python reference computed on the same server."""
    st = random_store(pg_url, seed)
    for version in [None, *[v["version"] for v in ref.suite_versions(st, "s")]]:
        for metric in (None, "m_down"):
            want = ref.board(st, "s", metric, suite_version=version)
            _same_board(board(st, "s", metric, suite_version=version), want)
    st.close()


@pytest.mark.postgres
def test_sqlite_and_postgres_give_the_same_board(tmp_path, pg_url):
    lite, pg = random_store(tmp_path / "s.sqlite", 7), random_store(pg_url, 7)
    a, b = board(lite, "s"), board(pg, "s")
    for row in (*a["rows"], *b["rows"]):
        row.pop("breakdown")  # database sums: equal to rounding (compared in _same_board)
    assert a["rows"] == b["rows"] and a["versions"] == b["versions"] and a["correction"] == b["correction"]
    lite.close()
    pg.close()
