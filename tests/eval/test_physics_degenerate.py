"""Physics you cannot fake: trivial continuations through every path a model's videos take.

Through the path a skyloom checkpoint takes (``run_eval``: a pipeline generating at 32 px, videos
stored as H.264, scored at the probe's 64 px), through ``--videos`` (the installed executable) and
beside ``--calibrate``'s rows: no item's physics_iq is above the ground truth's, the step-0-like
grey continuation scores below the ``frozen`` row, and the calibration order (ground truth, perturbed,
frozen, noise) holds on ``physics_iq``.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from skyloom.eval.harness.calibration import run_calibration
from skyloom.eval.harness.continuations import DEGENERATE, make
from skyloom.eval.harness.runner import EvalConfig, run_eval
from skyloom.eval.harness.submissions import suite_items
from skyloom.eval.harness.suites import load_suite
from skyloom.eval.results.store import ResultsStore
from skyloom.video import write_video
from tests.eval import fakes
from tests.eval.test_submissions_cli import run_cli

SETS = ("physics.num_scenes=2",)


def _items(store: ResultsStore, eval_id: str, metric: str = "physics_iq") -> dict[str, float]:
    return {r["item_id"]: r["value"] for r in store.items(eval_id, metric)}


def _score(store: ResultsStore, eval_id: str, metric: str = "physics_iq") -> float:
    return next(r["value"] for r in store.scores(eval_ids=[eval_id]) if r["metric"] == metric)


def test_physics_calibration_order_includes_frozen():
    from skyloom.eval.results.boards import order_flags

    order = load_suite("physics").calibration.order
    assert order == ("ground_truth", "perturbed", "frozen", "noise")
    vals = {"ground_truth": {"ok": 118.0, "bad": 118.0}, "perturbed": {"ok": 101.0, "bad": 20.0},
            "frozen": {"ok": 9.0, "bad": 30.0}, "noise": {"ok": -3.0, "bad": -3.0}}
    flags = order_flags(vals, {"ok": True, "bad": True}, {"order": list(order)})
    assert not flags["ok"]["flagged"]  # a model below frozen is visible beside the row it fails to beat
    assert flags["bad"]["flagged"] and flags["bad"]["violations"] == ["frozen (30) scores better than perturbed (20)"]


@pytest.mark.slow
def test_degenerate_continuations_never_beat_the_truth(tmp_path):
    suite = load_suite("physics", SETS)
    items = [it for it in suite_items(suite) if it["kind"] == "physics"]
    assert len(items) == 2 and all(it["gate"]["passed"] for it in items)
    db = tmp_path / "results.sqlite"
    cfg = EvalConfig(suite="physics", suite_overrides=SETS, out=str(tmp_path / "out"), db=str(db), n_boot=50,
                     executor="local", pipeline_loader=fakes.DEGENERATE_LOADER,
                     checkpoints=tuple(str(fakes.make_degenerate_checkpoint(tmp_path / "runs", k))
                                       for k in fakes.COND_ONLY))
    res = run_eval(cfg)  # generated at 32 px, stored as H.264, scored at the probe's 64 px
    assert [e.status for e in res.evals] == ["complete"] * len(fakes.COND_ONLY), res.evals
    cal = run_calibration(cfg)
    store = ResultsStore(db)
    rows = {e.checkpoint_name: e.eval_id for e in cal.evals}
    truth = _items(store, rows["ground_truth"])
    entries = {e.checkpoint.split("/")[-3]: e.eval_id for e in res.evals}  # runs/<kind>/checkpoints/step-0
    for kind, eid in entries.items():
        got = _items(store, eid)
        assert set(got) == set(truth)
        assert all(got[i] < truth[i] for i in got), (kind, got, truth)
        detail = store.items(eid, "physics_iq")[0]
        assert detail["value"] is not None
    # the step-0 model's continuation (given frames, then grey) is below the frozen row
    assert _score(store, entries["grey"]) < _score(store, rows["frozen"])
    order = [_score(store, rows[r]) for r in ("ground_truth", "perturbed", "frozen", "noise")]
    assert order == sorted(order, reverse=True) and len(set(order)) == 4, order
    from skyloom.eval.results.boards import board

    bd = board(store, "physics", "physics_iq")  # the suite's declared order holds on its primary metric
    assert bd["flags"]["physics_iq"]["order"] == ["ground_truth", "perturbed", "frozen", "noise"]
    assert "physics_iq" not in bd["flagged"], bd["flags"]["physics_iq"]
    # the probe's resolution: 32 px candidates were resized up, recorded in the protocol
    sc = next(r for r in store.scores(eval_ids=[entries["grey"]]) if r["metric"] == "physics_iq")
    assert "resized to the reference" in sc["details"]["preprocessing"]["resolution"]
    assert json.loads(json.dumps(store.get_eval(entries["grey"])["config"]))["physics_probes"]["admitted"] == \
        [it["item_id"] for it in items]

    # --videos: all ten degenerate continuations of the ground truth, submitted at 32 px
    sub = tmp_path / "sub"
    for kind in DEGENERATE:
        folder = sub / kind
        folder.mkdir(parents=True)
        for it in items:
            objs = [o for o in it["ground_truth"]["objects"] if "rgb" in o]
            v = make(kind, it["reference"], len(it["cond_frames"]), seed=1, objects=objs)
            import cv2

            v = np.stack([cv2.resize(f, (32, 32), interpolation=cv2.INTER_AREA) for f in v])
            write_video(folder / f"{it['item_id']}.mp4", v, fps=it["fps"])
        out = run_cli(["eval", "--suite", "physics", "--set", "suite.physics.num_scenes=2", "--videos", str(folder),
                       "--name", kind, "--db", str(db), "--out", str(tmp_path / "out"), "--json"])
        assert out.returncode == 0, out.stderr[-2000:]
        eid = json.loads(out.stdout)["evals"][0]["eval_id"]
        got = _items(store, eid)
        assert set(got) == set(truth) and all(got[i] < truth[i] for i in got), (kind, got, truth)
        assert _score(store, eid) < _score(store, rows["ground_truth"])
