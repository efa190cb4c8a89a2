"""The physics suite discriminates: on (almost) every admitted probe, at several frame sizes,
simulator continuation > perturbed re-simulation > time-reversed > frozen > noise; and the
trajectory metric's agreement with the simulator orders its own ladder."""

from __future__ import annotations

from itertools import pairwise

import numpy as np
import pytest

from skyloom.eval.harness.ladder import LADDER, TRAJECTORY_LADDER, candidates


def test_candidates_are_the_ladder_continuations():
    rng = np.random.default_rng(0)
    ref = np.full((8, 32, 32, 3), 60, np.uint8)
    for t in range(8):
        ref[t, 10:16, 2 + 3 * t:8 + 3 * t] = (220, 40, 40)
    pert = rng.integers(0, 255, ref.shape, dtype=np.uint8)
    item = {"reference": ref, "cond_frames": ref[:3], "gate_take": pert, "fps": 8.0,
            "ground_truth": {"objects": [{"name": "obj0", "rgb": [220, 40, 40]}]}}
    c = candidates(item, TRAJECTORY_LADDER, seed=5)
    assert list(c) == list(TRAJECTORY_LADDER)
    for k, v in c.items():
        assert v.shape == ref.shape and np.abs(v[:3].astype(int) - ref[:3]).mean() < 3, k  # given frames kept
    assert np.array_equal(c["truth"], ref) and np.array_equal(c["perturbed"][3:], pert[3:])  # takes are stored encoded
    assert np.abs(c["reversed"][3:].astype(int) - ref[3:][::-1]).mean() < 3
    assert np.abs(c["frozen"][3:].astype(int) - ref[2]).mean() < 3  # the last given frame held


@pytest.mark.slow
@pytest.mark.parametrize("size", [64, 96, 128])  # below 64 px the 5x5 mask morphology erases the balls
def test_physics_suite_ladder(size):
    from skyloom.eval.harness.ladder import suite_ladder
    from skyloom.eval.harness.suites import load_suite

    r = suite_ladder(load_suite("physics"), size=size)
    assert len(r["scenes"]) == 10 and all(s["gate"]["passed"] for s in r["scenes"])
    assert all(s["moving_cells"] >= 8 for s in r["scenes"])  # something to predict in every probe
    for s in r["scenes"]:  # every probe scorable: finite numbers for every candidate
        assert all(np.isfinite(v) for m in ("physics_iq", "physics_iq_scene") for v in s[m].values())
    assert r["ordered"]["physics_iq"] >= 0.95 and r["ordered"]["physics_iq_scene"] >= 0.9, r["ordered"]
    for m in ("physics_iq", "physics_iq_scene"):
        agg = r["aggregate"][m]
        assert all(agg[a] > agg[b] for a, b in pairwise(LADDER)), (m, agg)
        assert agg["truth"] - agg["perturbed"] > 1.0, (m, agg)  # separated, not a clipped tie
    t = r["aggregate"]["physics_trajectory"]
    assert t["truth"] == 1.0 and t["perturbed"] > 0.9  # truth = perturbed (within the take's tolerance)
    assert min(t["perturbed"], t["truth"]) > max(v for k, v in t.items() if k not in ("truth", "perturbed"))
    assert t["grey"] == 0.0 and t["noise"] == 0.0 and t["frozen"] > 0.0  # not found: a miss


@pytest.mark.slow
def test_installed_cli_ladder(tmp_path):
    import json
    import subprocess
    import sys
    from pathlib import Path

    exe = str(Path(sys.executable).parent / "skyloom")
    r = subprocess.run([exe, "eval", "ladder", "--suite", "physics", "--scenes", "2", "--format", "json"],
                       capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr
    res = json.loads(r.stdout)
    assert len(res["scenes"]) == 2 and set(res["aggregate"]) == {"physics_iq", "physics_iq_scene",
                                                                  "physics_trajectory"}
    assert all(s["gate"]["passed"] for s in res["scenes"]) and "rejected" in res["draw"]
    md = subprocess.run([exe, "eval", "ladder", "--suite", "physics", "--scenes", "2", "--format", "markdown"],
                        capture_output=True, text=True, timeout=600)
    assert md.returncode == 0 and "degenerate gate" in md.stdout and "| pass |" in md.stdout, md.stderr
    r = subprocess.run([exe, "eval", "ladder", "--suite", "smoke"], capture_output=True, text=True, timeout=300)
    assert r.returncode == 2 and "no physics scenes" in r.stderr and "Traceback" not in r.stderr
