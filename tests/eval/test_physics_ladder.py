"""The physics suite discriminates: on (almost) every scene, at several frame sizes,
simulator continuation > perturbed re-simulation > time-reversed > frozen > noise."""

from __future__ import annotations

from itertools import pairwise

import numpy as np
import pytest

from skyloom.eval.harness.ladder import LADDER, candidates


def test_candidates_are_the_five_continuations():
    ref = np.random.default_rng(0).integers(0, 255, (8, 16, 16, 3), dtype=np.uint8)
    item = {"reference": ref, "cond_frames": ref[:3], "specs": {"seed": 1}, "perturb_scale": 0.01}
    pert = ref[::-1].copy()
    c = candidates(item, 5, render=lambda spec: (pert, {}), perturb=lambda spec, scale, seed: spec)
    assert list(c) == list(LADDER)
    for v in c.values():
        assert v.shape == ref.shape and np.array_equal(v[:3], ref[:3])  # conditioning frames kept
    assert np.array_equal(c["truth"], ref) and np.array_equal(c["perturbed"][3:], pert[3:])
    assert np.array_equal(c["reversed"][3:], ref[3:][::-1]) and (c["frozen"][3:] == ref[2]).all()


@pytest.mark.slow
@pytest.mark.parametrize("size", [64, 96, 128])  # below 64 px the 5x5 mask morphology erases the balls
def test_physics_suite_ladder(size):
    from skyloom.eval.harness.ladder import suite_ladder
    from skyloom.eval.harness.suites import load_suite

    r = suite_ladder(load_suite("physics"), size=size)
    assert len(r["scenes"]) == 10
    assert all(s["motion_after_cond"] > 0 for s in r["scenes"])  # something to predict in every scene
    for s in r["scenes"]:  # every scene scorable: finite numbers for every candidate
        assert all(np.isfinite(v) for m in ("physics_iq", "physics_iq_scene") for v in s[m].values())
    assert r["ordered"]["physics_iq"] >= 0.9 and r["ordered"]["physics_iq_scene"] >= 0.9, r["ordered"]
    for m in ("physics_iq", "physics_iq_scene"):
        agg = r["aggregate"][m]
        assert all(agg[a] > agg[b] for a, b in pairwise(LADDER)), (m, agg)


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
    assert len(res["scenes"]) == 2 and set(res["aggregate"]) == {"physics_iq", "physics_iq_scene"}
    r = subprocess.run([exe, "eval", "ladder", "--suite", "smoke"], capture_output=True, text=True, timeout=300)
    assert r.returncode == 2 and "no physics scenes" in r.stderr and "Traceback" not in r.stderr
