"""Statistics: bootstrap CIs, paired tests (against scipy), leaderboard ties within noise."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats as sps

from skyloom.eval.results.stats import (
    bootstrap_ci,
    compare_all,
    leaderboard,
    paired_compare,
    paired_test,
    sign_flip_pvalue,
    stderr_of_mean,
)
from skyloom.eval.results.store import ResultsStore


def test_bootstrap_ci_matches_scipy_and_t_interval():
    x = np.random.default_rng(1).normal(2.0, 1.0, 200)
    ci = bootstrap_ci(x, n_boot=5000, seed=3)
    ref = sps.bootstrap((x,), np.mean, n_resamples=5000, method="percentile", random_state=4).confidence_interval
    width = ref.high - ref.low
    assert ci.estimate == pytest.approx(x.mean())
    assert abs(ci.low - ref.low) < 0.05 * width and abs(ci.high - ref.high) < 0.05 * width
    t = sps.t.ppf(0.975, len(x) - 1) * sps.sem(x)
    assert ci.low == pytest.approx(x.mean() - t, abs=0.1 * width)
    assert ci.high == pytest.approx(x.mean() + t, abs=0.1 * width)
    assert ci.stderr == pytest.approx(sps.sem(x)) and stderr_of_mean(x) == pytest.approx(sps.sem(x))
    # reproducible, other statistics, and degenerate inputs
    assert bootstrap_ci(x, seed=3) == bootstrap_ci(x, seed=3)
    med = bootstrap_ci(x, statistic=lambda a: np.median(a, axis=1), seed=0)
    assert med.estimate == pytest.approx(np.median(x)) and med.low < med.estimate < med.high
    one = bootstrap_ci([0.7])
    assert (one.low, one.high, one.stderr) == (0.7, 0.7, 0.0)
    with pytest.raises(ValueError, match="NaN"):
        bootstrap_ci([1.0, float("nan")])
    with pytest.raises(ValueError, match="no values"):
        bootstrap_ci([])


def test_sign_flip_exact_equals_scipy_permutation_test():
    rng = np.random.default_rng(0)
    a = rng.normal(0, 1, 10)
    b = a + rng.normal(0.4, 0.6, 10)
    p, method = sign_flip_pvalue(b - a)
    ref = sps.permutation_test((b, a), lambda x, y: np.mean(x - y), permutation_type="samples",
                               n_resamples=np.inf, alternative="two-sided").pvalue
    assert method == "sign-flip exact"
    assert p == pytest.approx(ref, rel=1e-9)


def test_paired_test_agrees_with_ttest_rel_and_wilcoxon():
    rng = np.random.default_rng(5)
    a = rng.normal(0.3, 0.05, 300)
    b = a + rng.normal(0.006, 0.05, 300)  # a small real improvement: p near 0.05
    r = paired_test(a, b, n_perm=20000, seed=1)
    t = sps.ttest_rel(b, a)
    assert r.diff == pytest.approx(np.mean(b - a))
    assert abs(r.p_value - t.pvalue) < 0.02
    assert r.ci_low < r.diff < r.ci_high
    # a clear improvement: both tests agree it is significant and the CI excludes 0
    strong = paired_test(a, a + rng.normal(0.02, 0.02, 300), seed=1)
    assert strong.significant and strong.ci_low > 0 and sps.wilcoxon(a + 0.02, a).pvalue < 0.05
    # under H0 (no difference) the p-value rejects at about its nominal 5% rate, like ttest_rel, and so
    # does the verdict (CI excludes 0) that ``significant`` reports
    rejections, t_rejections, ci_rejections = 0, 0, 0
    for k in range(300):
        x = rng.normal(0, 1, 25)
        y = x + rng.normal(0, 1, 25)
        r = paired_test(x, y, n_boot=400, n_perm=500, seed=k)
        rejections += r.p_value < 0.05
        ci_rejections += r.significant
        t_rejections += sps.ttest_rel(y, x).pvalue < 0.05
    assert 0.02 < rejections / 300 < 0.09 and abs(rejections - t_rejections) <= 8
    assert 0.02 < ci_rejections / 300 < 0.1
    same = paired_test(a, a)
    assert same.p_value == 1.0 and same.diff == 0.0
    with pytest.raises(ValueError, match="pairs must match"):
        paired_test([1, 2, 3], [1, 2])


def _eval(store, eval_id, values, *, ckpt, suite="smoke", metric="clipsim", hib=True, seeds=None, status="complete",
          ci=None):
    store.begin_eval(eval_id, suite=suite, suite_version="1+old", checkpoint=ckpt, checkpoint_name=ckpt, step=0,
                     config={"suite": {"primary_metric": metric}}, status=status)
    v = np.asarray(values, float)
    lo, hi = ci if ci else (bootstrap_ci(v).low, bootstrap_ci(v).high)
    store.put_scores(eval_id, [{"metric": metric, "value": float(v.mean()), "ci_low": lo, "ci_high": hi,
                                "n": len(v), "higher_is_better": hib, "extractor": "fake"}])
    store.put_items(eval_id, [{"item_id": f"p{i}", "metric": metric, "value": float(x),
                               "seed": (seeds or [0] * len(v))[i]} for i, x in enumerate(v)])


def test_paired_compare_from_store(tmp_path):
    store = ResultsStore(tmp_path / "r.sqlite")
    rng = np.random.default_rng(0)
    base = rng.normal(0.3, 0.05, 40)
    _eval(store, "a", base, ckpt="A")
    _eval(store, "b", base + 0.03 + rng.normal(0, 0.01, 40), ckpt="B")
    store.put_items("b", [{"item_id": "extra", "metric": "clipsim", "value": 9.0, "seed": 0}])
    c = paired_compare(store, "a", "b", "clipsim")
    assert c.result.n == 40 and c.unpaired_items == 1  # the unpaired item is ignored, and counted
    assert c.result.significant and c.better == "b" and c.result.diff == pytest.approx(0.03, abs=0.01)
    assert c.to_dict()["better"] == "b"
    # lower is better flips the verdict
    _eval(store, "c", base, ckpt="C", metric="warp", hib=False)
    _eval(store, "d", base + 0.05, ckpt="D", metric="warp", hib=False)
    assert paired_compare(store, "c", "d", "warp").better == "a"
    assert [x.metric for x in compare_all(store, "a", "b")] == ["clipsim"]
    with pytest.raises(ValueError, match="no score for metric 'fvd'; it has: clipsim"):
        paired_compare(store, "a", "b", "fvd")
    _eval(store, "e", base, ckpt="E", seeds=list(range(40)))
    with pytest.raises(ValueError, match="same seeds"):
        paired_compare(store, "a", "e", "clipsim")


def test_set_level_metric_without_features_gives_no_verdict(tmp_path):
    """Two stored FVD intervals do not make a test of the difference: no verdict, no made-up CI."""
    store = ResultsStore(tmp_path / "r.sqlite")
    for eid, v, ci in (("a", 100.0, (90.0, 110.0)), ("b", 80.0, (75.0, 85.0))):
        store.begin_eval(eid, suite="s", checkpoint=eid, status="complete")
        store.put_scores(eid, [{"metric": "fvd", "value": v, "ci_low": ci[0], "ci_high": ci[1],
                                "higher_is_better": False}])
    c = paired_compare(store, "a", "b", "fvd")
    assert c.result.p_value is None and c.result.diff == -20.0
    assert (c.result.ci_low, c.result.ci_high) == (None, None)
    assert c.verdict is None and c.better is None and c.to_dict()["verdict"] is None
    assert "no saved per-item features" in c.result.method
    rows = leaderboard(store, "s", "fvd")
    assert [r["eval_id"] for r in rows] == ["b", "a"]  # lower FVD first
    assert [r["tie_group"] for r in rows] == [1, 1] and rows[1]["tie_verdict"] == "no verdict"  # no claimed winner


def test_leaderboard_ranks_and_marks_ties(tmp_path):
    store = ResultsStore(tmp_path / "r.sqlite")
    rng = np.random.default_rng(2)
    base = rng.normal(0.30, 0.05, 30)
    _eval(store, "good-old", base - 0.2, ckpt="good")  # superseded by a later eval of the same checkpoint
    _eval(store, "good", base + 0.05, ckpt="good")
    _eval(store, "twin", base + 0.05 + rng.normal(0, 0.002, 30), ckpt="twin")  # same within noise
    _eval(store, "bad", base - 0.05, ckpt="bad")
    _eval(store, "unfinished", base + 1.0, ckpt="unfinished", status="running")
    store.add_failure("bad", "p99", "decode", "corrupt")
    rows = leaderboard(store, "smoke")
    assert [r["checkpoint"] for r in rows][2] == "bad"
    assert {r["checkpoint"] for r in rows[:2]} == {"good", "twin"}
    assert [r["rank"] for r in rows] == [1, 2, 3]
    assert [r["tie_group"] for r in rows] == [1, 1, 2]
    assert rows[2]["failures"] == 1 and rows[0]["scores"].keys() == {"clipsim"}
    assert rows[0]["metric"] == "clipsim" and rows[0]["ci_low"] <= rows[0]["value"] <= rows[0]["ci_high"]
    assert "unfinished" in [r["eval_id"] for r in leaderboard(store, "smoke", include_incomplete=True)]
    assert leaderboard(store, "other-suite") == []
    # a changed suite (new content hash) starts a new leaderboard; the old one stays reachable
    store.begin_eval("v2", suite="smoke", suite_version="1+new", checkpoint="good", status="complete",
                     config={"suite": {"primary_metric": "clipsim"}})
    store.put_scores("v2", [{"metric": "clipsim", "value": 0.1, "higher_is_better": True}])
    assert [r["eval_id"] for r in leaderboard(store, "smoke")] == ["v2"]
    old = leaderboard(store, "smoke", suite_version=store.get_eval("good")["suite_version"])
    assert [r["checkpoint"] for r in old] == [r["checkpoint"] for r in rows]
    with pytest.raises(ValueError, match="scored metrics: clipsim"):
        leaderboard(store, "smoke", "fvd")


def test_one_verdict_rule_from_the_p_value():
    from skyloom.eval.results.inference import HypothesisTest
    from skyloom.eval.results.stats import verdict

    def t(p, lo, hi, min_p=0.001):
        return HypothesisTest(p_value=p, ci_low=lo, ci_high=hi, alpha=0.05, min_p=min_p, method="test")

    assert verdict(t(0.01, -10.60, -1.19), higher_is_better=False) == "b"  # FVD down: B better
    assert verdict(t(0.01, -10.60, -1.19), higher_is_better=True) == "a"
    assert verdict(t(0.2, -0.1, 0.2), True) == "tie"
    assert verdict(t(0.05, 0.1, 0.2), True) == "tie"  # p = alpha is never significant
    assert verdict(t(0.03125 * 4, 0.1, 0.2, min_p=0.125), True) == "too few items"
    assert verdict(None, True) is None and verdict(t(0.01, 1, 2), None) is None
    import skyloom.dashboards.results as dash

    assert not hasattr(dash, "verdict")  # one function decides every verdict


def test_paired_set_test_fvd_kvd():
    """Item-swap permutation test of FVD/KVD recomputed on both sides: a clear shift is found,
    identical sets tie, and the interval excludes 0 exactly when p < alpha."""
    from skyloom.eval.functional.frechet import frechet_distance_features, kvd
    from skyloom.eval.results.stats import paired_set_test

    rng = np.random.default_rng(0)
    real = rng.normal(size=(60, 4))
    item = rng.normal(size=(40, 4))  # per-item content shared by A and B (pairing matters)
    a = item + 0.05 * rng.normal(size=(40, 4))
    b = item + 0.05 * rng.normal(size=(40, 4)) + 0.8  # B shifted away from the reference: worse
    def fvd(r, f):
        return frechet_distance_features(f, r)

    r = paired_set_test(real, a, b, fvd, n_perm=200, seed=0)
    assert r.diff == pytest.approx(fvd(real, b) - fvd(real, a))
    assert r.ci_low > 0 and r.p_value < 0.05 and r.significant
    same = paired_set_test(real, a, a.copy(), fvd, n_perm=50, seed=0)
    assert same.diff == 0 and same.p_value == 1.0 and not same.significant and same.ci_low <= 0 <= same.ci_high
    rk = paired_set_test(real, a, b, lambda r_, f: kvd(f, r_)[0], n_perm=100, seed=1)
    assert rk.ci_low > 0 and rk.p_value < 0.05
    close = paired_set_test(real, a, a + 0.02 * rng.normal(size=a.shape), fvd, n_perm=100, seed=2)
    for res in (r, same, rk, close):
        assert res.significant == (not res.ci_low <= 0 <= res.ci_high) == (res.p_value < 0.05)
    with pytest.raises(ValueError, match="same"):
        paired_set_test(real, a, b[:10], fvd)
