"""No silent drops, and values inside their intervals (issue 24): the scorer records an item a metric
cannot score as a failure with its reason, counts it in ``n``, and maps a clipped mean's CI like the mean."""

from __future__ import annotations

import math

import numpy as np

from skyloom.eval.features.cache import FeatureCache
from skyloom.eval.harness.scoring import Scorer
from skyloom.eval.harness.suites import load_suite
from skyloom.eval.results.store import ResultsStore
from skyloom.registry import Registry
from skyloom.video import write_video
from tests.eval.fakes import _PerItem

SUITE = """
format: skyloom-suite
name: drops
version: 1
primary_metric: clipped
seeds: [0, 1, 2, 3]
generation: {num_frames: 4}
prompts:
  - {id: a, text: "a bright clip"}
  - {id: b, text: "a nan clip"}
metrics:
  - {name: clipped}
"""


class Clipped(_PerItem):
    """Mean brightness x 1000, the aggregate clipped to at most 100 (like Physics-IQ's [0, 100]); NaN on
    prompts saying "nan" (like a Physics-IQ scene whose variance is missing)."""

    name, higher_is_better = "clipped", True

    def score(self, v: np.ndarray, prompt: str) -> float:
        return math.nan if "nan" in prompt else float(v.mean()) * 1000 / 255

    def aggregate(self, values: list[float]) -> float:
        return min(100.0, math.fsum(values) / len(values))


def test_unscorable_items_are_failures_and_clipped_values_lie_in_their_interval(tmp_path):
    metrics = Registry("metric")
    metrics.register("clipped")(Clipped)
    (tmp_path / "drops.yaml").write_text(SUITE)
    suite = load_suite(tmp_path / "drops.yaml", metric_names=metrics.names())
    items = suite.items()
    rng = np.random.default_rng(0)
    for it in items:
        write_video(tmp_path / f"{it['item_id']}.mp4", rng.integers(100, 200, (4, 16, 16, 3), dtype=np.uint8), fps=8)
    (tmp_path / "a-s3.mp4").unlink()  # one item without a video
    store = ResultsStore(tmp_path / "r.sqlite")
    store.begin_eval("e", suite="drops")
    scorer = Scorer(suite, metrics, FeatureCache(tmp_path / "cache"), n_boot=200, batch=3)
    out = scorer.score_eval(store, "e", items, lambda iid: tmp_path / f"{iid}.mp4")
    (row,) = store.scores(eval_ids=["e"])
    assert out["clipped"] == 100.0 == row["value"]  # the raw mean (~590) is clipped...
    assert row["ci_low"] <= row["value"] <= row["ci_high"] == 100.0  # ...and so are the CI's bounds
    assert row["n"] == 8 and row["details"]["n_scored"] == 3 and row["details"]["n_failed"] == 5
    failed = row["details"]["failed_items"]
    assert set(failed) == {"a-s3", "b-s0", "b-s1", "b-s2", "b-s3"}  # the NaN items and the missing video
    assert "no finite value" in failed["b-s0"]
    reasons = {f["item_id"]: f["reason"] for f in store.failures("e")}
    assert {"b-s0", "b-s1", "b-s2", "b-s3"} <= set(reasons)  # recorded as failures with their reason
    assert all(r["value"] is not None for r in store.items("e"))  # no NaN row silently left in the mean


class Excluding(Clipped):
    """The same NaNs, declared as what the protocol means (as VBench flickering does for moving videos)."""

    nan_means = "excluded: not applicable to this item"


def test_a_nan_the_protocol_means_is_an_exclusion_not_a_failure(tmp_path):
    metrics = Registry("metric")
    metrics.register("clipped")(Excluding)
    (tmp_path / "drops.yaml").write_text(SUITE)
    suite = load_suite(tmp_path / "drops.yaml", metric_names=metrics.names())
    rng = np.random.default_rng(0)
    for it in suite.items():
        write_video(tmp_path / f"{it['item_id']}.mp4", rng.integers(100, 200, (4, 16, 16, 3), dtype=np.uint8), fps=8)
    store = ResultsStore(tmp_path / "r.sqlite")
    store.begin_eval("e", suite="drops")
    Scorer(suite, metrics, FeatureCache(tmp_path / "cache"), n_boot=100).score_eval(
        store, "e", suite.items(), lambda iid: tmp_path / f"{iid}.mp4")
    (row,) = store.scores(eval_ids=["e"])
    assert store.failures("e") == []  # nothing failed
    d = row["details"]
    assert row["n"] == 8 and d["n_scored"] == 4 and d["n_failed"] == 0 and d["n_excluded"] == 4
    assert d["excluded_items"] == ["b-s0", "b-s1", "b-s2", "b-s3"] and d["excluded_because"].startswith("excluded")
