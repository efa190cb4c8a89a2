"""The real pieces together: a tiny trained model (model/), the real metrics (eval.metrics,
eval.physics), MuJoCo physics probes (datagen/), the shipped smoke and physics suites."""

from __future__ import annotations

import numpy as np
import pytest

from skyloom.eval.harness.runner import EvalConfig, run_eval
from skyloom.eval.results.stats import compare_all, leaderboard, verdict
from skyloom.eval.results.store import ResultsStore


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    from skyloom.model.train import train
    from tests.model.helpers import make_square_corpus, tiny_cfg

    tmp = tmp_path_factory.mktemp("integ")
    corpus = make_square_corpus(tmp / "corpus", n=6)
    train(tiny_cfg(steps=6), corpus.root, tmp / "run", progress_bar=False)
    return tmp, corpus.root


@pytest.mark.slow
def test_smoke_suite_on_real_checkpoints(tiny_run, ray_local):
    tmp, corpus = tiny_run
    from skyloom.rundir import RunDir

    cks = [str(p) for _, p in RunDir(tmp / "run").checkpoints()]
    assert len(cks) == 2  # step 0 ("before") and the final step
    cfg = EvalConfig(suite="smoke", checkpoints=tuple(cks), cache_dir=str(tmp / "cache"), n_boot=200, set_boot=10,
                     suite_overrides=(f"reference.corpus={corpus}", "reference.num_frames=8"))
    res = run_eval(cfg)  # executor auto: two checkpoints -> one Ray actor each
    assert [e.status for e in res.evals] == ["complete", "complete"], [e for e in res.evals]
    assert [e.generated for e in res.evals] == [8, 8]
    store = ResultsStore(tmp / "run" / "results.sqlite")
    for e in res.evals:
        s = {r["metric"]: r for r in store.scores(eval_ids=[e.eval_id])}
        # flickering is scored on static videos only (VBench): a tiny model's moving videos get none
        assert {"clipsim", "subject_consistency", "dynamic_degree", "warping_error", "fvd", "kvd"} <= set(s)
        assert set(s) <= {"clipsim", "subject_consistency", "dynamic_degree", "warping_error", "fvd", "kvd",
                          "temporal_flickering"}
        assert s["clipsim"]["weights"] == "random-init" and s["clipsim"]["n"] == 8  # labelled as such
        assert s["fvd"]["extractor"].startswith("pixels") and s["fvd"]["details"]["n_real"] == 6
        assert s["warping_error"]["higher_is_better"] is False
    rows = leaderboard(store, "smoke")
    assert {r["step"] for r in rows} == {0, 6} and rows[0]["metric"] == "clipsim"
    cmp = {c.metric: c for c in compare_all(store, res.evals[0].eval_id, res.evals[1].eval_id)}
    assert cmp["clipsim"].result.n == 8
    for k in ("fvd", "kvd"):  # set-level: item-swap permutation test over the 8 common items' saved features
        r = cmp[k].result
        assert r.n == 8 and r.p_value is not None and "paired permutation" in r.method, r
        assert cmp[k].verdict == verdict(r.test, False)
        assert (cmp[k].verdict in ("a", "b")) == (not r.ci_low <= 0 <= r.ci_high) == (r.p_value < 0.05)
    again = run_eval(cfg)  # resumes: nothing generated, reference and videos from the cache
    assert [e.generated for e in again.evals] == [0, 0] and again.cache_stats["encoded"] == 0


@pytest.mark.slow
def test_physics_suite_continuations(tiny_run):
    tmp, _ = tiny_run
    from skyloom.rundir import RunDir

    ck = str(RunDir(tmp / "run").latest_checkpoint())
    cfg = EvalConfig(suite="physics", checkpoints=(ck,), out=str(tmp / "phys"), n_boot=100,
                     suite_overrides=("physics.num_scenes=2",))
    res = run_eval(cfg)
    e = res.evals[0]
    store = ResultsStore(tmp / "phys" / "results.sqlite")
    s = {r["metric"]: r for r in store.scores(eval_ids=[e.eval_id])}
    assert e.status in ("complete", "partial"), store.failures(e.eval_id)
    assert "physics_iq" in s and s["physics_iq"]["n"] >= 1 and np.isfinite(s["physics_iq"]["value"])
    assert 0 <= s["physics_iq_exact"]["value"] <= 100  # Physics-IQ's number: clipped as published
    items = store.items(e.eval_id, "physics_iq")
    assert {i["category"] for i in items} == {"physics"} and all(i["prompt"] for i in items)


@pytest.mark.slow
def test_step0_checkpoint_scores_below_the_frozen_row(tiny_run):
    """The untrained model (its continuation: the given frames, then a uniform frame) at its own 32 px
    is scored at the probe's 64 px: below the calibration row that freezes the first frame."""
    tmp, _ = tiny_run
    from skyloom.eval.harness.calibration import run_calibration
    from skyloom.rundir import RunDir

    step0 = str(dict(RunDir(tmp / "run").checkpoints())[0])
    cfg = EvalConfig(suite="physics", checkpoints=(step0,), out=str(tmp / "phys0"), n_boot=50, executor="local",
                     suite_overrides=("physics.num_scenes=2",))
    e = run_eval(cfg).evals[0]
    cal = {c.checkpoint_name: c.eval_id for c in run_calibration(cfg).evals}
    store = ResultsStore(tmp / "phys0" / "results.sqlite")

    def score(eid: str) -> float:
        return next(r["value"] for r in store.scores(eval_ids=[eid]) if r["metric"] == "physics_iq")

    assert score(e.eval_id) < score(cal["frozen"]) < score(cal["perturbed"]) < score(cal["ground_truth"])
    truth = {r["item_id"]: r["value"] for r in store.items(cal["ground_truth"], "physics_iq")}
    assert all(r["value"] < truth[r["item_id"]] for r in store.items(e.eval_id, "physics_iq"))
