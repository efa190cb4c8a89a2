"""Physics metrics: Physics-IQ on motion masks (identity, time reversal), physical-variance
normalisation through datagen re-simulation, trajectory checks on analytic and rendered drops."""

from __future__ import annotations

import numpy as np
import pytest

from skyloom.eval.functional import physics_iq, trajectory
from skyloom.eval.metrics import METRICS

FPS = 8.0
RED = (220, 30, 30)


def drop(T: int = 16, H: int = 64, W: int = 64, g_px: float = 120.0, const_v: float | None = None,
         teleport_at: int | None = None, vanish: set[int] | None = None, y0: float = 6.0, r: int = 4) -> np.ndarray:
    """A ball falling from rest (y = y0 + ½ g t², px) onto a floor, or at constant velocity."""
    v = np.full((T, H, W, 3), 100, np.uint8)
    yy, xx = np.mgrid[:H, :W]
    for t in range(T):
        tt = t / FPS
        y = min(y0 + (const_v * tt if const_v is not None else 0.5 * g_px * tt * tt), H - r - 2)
        x = W / 2 + (30 if teleport_at is not None and t >= teleport_at else 0)
        if not vanish or t not in vanish:
            v[t][(yy - y) ** 2 + (xx - x) ** 2 <= r * r] = RED
    return v


OBJS = [{"name": "obj0", "rgb": list(RED)}]


def test_motion_masks_and_identity():
    ref = drop()
    m = physics_iq.motion_masks(ref)
    assert not m[0].any() and m[4:8].any(axis=(1, 2)).all()  # moving fast enough while falling
    assert not physics_iq.motion_masks(np.repeat(ref[:1], 6, axis=0)).any()  # static: no motion
    raw = physics_iq.physics_iq_raw(ref, ref, start=4)
    assert raw == {"spatial_iou": 1.0, "spatiotemporal_iou": 1.0, "weighted_spatial_iou": 1.0, "mse": 0.0}


def test_iou_formulas_by_hand():
    a = np.zeros((2, 3, 3), bool)
    b = np.zeros((2, 3, 3), bool)
    a[0, 0, 0] = a[1, 0, 1] = True
    b[0, 0, 0] = b[1, 1, 1] = True
    assert physics_iq.spatial_iou(a, b) == pytest.approx(1 / 3)
    assert physics_iq.spatiotemporal_iou(a, b) == pytest.approx((1.0 + 0.0) / 2)
    assert physics_iq.weighted_spatial_iou(a, b) == pytest.approx(0.5 / 1.5)


def test_time_reversed_and_teleporting_score_worse():
    ref = drop()
    good = physics_iq.physics_iq_raw(ref, ref, 4)
    for bad in (ref[::-1].copy(), drop(teleport_at=8), np.repeat(ref[:5], [1, 1, 1, 1, 12], axis=0)):  # frozen
        raw = physics_iq.physics_iq_raw(bad, ref, 4)
        assert raw["spatiotemporal_iou"] < good["spatiotemporal_iou"] and raw["mse"] > good["mse"]


def test_normalise_by_variance():
    var = {"spatial_iou": 0.8, "spatiotemporal_iou": 0.5, "weighted_spatial_iou": 0.5, "mse": 0.001}
    raw = {"spatial_iou": 0.4, "spatiotemporal_iou": 0.6, "weighted_spatial_iou": 0.25, "mse": 0.004}
    n = physics_iq.normalise(raw, var)
    assert n["spatial_iou_norm"] == pytest.approx(0.5) and n["spatiotemporal_iou_norm"] == 1.0  # capped
    assert n["mse_norm"] == pytest.approx(0.25)
    assert n["physics_iq"] == pytest.approx(100 * (0.5 + 1.0 + 0.5 + 0.25) / 4) and n["degenerate"] == []
    # a re-simulation that shares no motion with the truth: that IoU is used raw, never NaN
    d = physics_iq.normalise(raw, {**var, "spatiotemporal_iou": 0.0})
    assert d["spatiotemporal_iou_norm"] == pytest.approx(0.6) and d["degenerate"] == ["spatiotemporal_iou"]
    assert np.isfinite(d["physics_iq"])


def test_gravity_check_analytic():
    y = trajectory.track(trajectory.colour_masks(drop(), RED))["centroid"][:, 1]
    a, n = trajectory.fit_acceleration(y, FPS)
    assert a == pytest.approx(120.0, rel=0.05) and n >= 4
    assert trajectory.gravity_check(y, FPS)["passed"]
    assert trajectory.gravity_check(y, FPS, expected_accel=120.0)["passed"]
    yc = trajectory.track(trajectory.colour_masks(drop(const_v=60.0), RED))["centroid"][:, 1]
    assert not trajectory.gravity_check(yc, FPS)["passed"]
    assert not trajectory.gravity_check(yc, FPS, expected_accel=120.0)["passed"]


@pytest.mark.parametrize("bad,check", [(drop(const_v=60.0), "gravity"), (drop()[::-1].copy(), "gravity"),
                                       (np.repeat(drop()[:5], [1, 1, 1, 1, 12], axis=0), "gravity"),
                                       (drop(teleport_at=10), "teleport"), (drop(vanish={9, 10}), "permanence")])
def test_trajectory_checks_catch_violations(bad, check):
    ref = drop()
    assert trajectory.trajectory_checks(ref, ref, OBJS, FPS, start=4)["pass_rate"] == 1.0
    c = trajectory.trajectory_checks(bad, ref, OBJS, FPS, start=4)
    assert c[check]["obj0"]["passed"] is False and c["pass_rate"] < 1.0


def test_continuation_must_start_at_the_seam():
    ref = drop()
    shifted = ref.copy()
    shifted[4:] = drop(teleport_at=0)[4:]  # smooth fall, but 30 px off from the last given frame
    c = trajectory.trajectory_checks(shifted, ref, OBJS, FPS, start=4)
    assert c["teleport"]["obj0"]["passed"] is False
    assert trajectory.trajectory_checks(ref, ref, OBJS, FPS, start=4)["teleport"]["obj0"]["passed"]


def test_interpenetration():
    two = drop()
    blue = np.array([30, 30, 220], np.uint8)
    ok, sunk = two.copy(), two.copy()
    ok[:, 40:48, 8:16] = blue
    sunk[:, 40:48, 30:38] = blue  # sits where the red ball lands: overlap
    objs = OBJS + [{"name": "obj1", "rgb": blue.tolist()}]
    assert trajectory.trajectory_checks(ok, ok, objs, FPS, start=4)["interpenetration"]["passed"]
    c = trajectory.trajectory_checks(sunk, ok, objs, FPS, start=4)
    assert not c["interpenetration"]["passed"]
    floor = trajectory.interpenetration_check(trajectory.track_objects(drop(H=64)[:, :, :], OBJS), floor_y=40)
    assert not floor["passed"]


@pytest.fixture(scope="module")
def rendered_drop():
    from skyloom import config, datagen
    from skyloom.datagen.render import RenderConfig

    sets = ["scene.fps=24", "scene.width=64", "scene.height=64", "scene.num_frames=16"]  # enough fall frames
    cfg = config.load(RenderConfig, "physics-probe", sets, group="datagen")
    specs = datagen.sample_specs(cfg, 2, 0)  # probes cycle: 0 = drop, 1 = throw
    frames, gt = datagen.render_spec(specs[0])
    throw = datagen.render_spec(specs[1])
    return specs[0], frames, gt, throw


def test_rendered_drop_against_simulator(rendered_drop):
    spec, frames, gt, (throw, throw_gt) = rendered_drop
    assert gt["objects"][0]["initial"]["motion"] == "dropped"
    tr = trajectory.track_objects(frames, gt["objects"])
    y = next(iter(tr.values()))["centroid"][:, 1]
    z = np.array([f["objects"][0]["position"][2] for f in gt["frames"]])
    seg = trajectory.fall_segment(y)
    px_per_m = (y[seg[-1]] - y[seg[0]]) / (z[seg[0]] - z[seg[-1]])  # static camera, small depth change
    expected = -gt["gravity"][2] * px_per_m  # g in px/s²
    check = trajectory.gravity_check(y, gt["fps"], expected_accel=expected, rel_tol=0.15)
    assert check["passed"], check  # the tracked fall accelerates like the simulator's gravity
    m = METRICS.build("physics_iq_scene", options={"cond_frames": 4, "perturb_scale": 0.01})
    m.update(np.stack([frames, frames[::-1].copy()]), reference=[frames, frames], specs=[spec, spec],
             item_ids=["same", "reversed"])
    r = m.compute()
    assert r.per_item["same"] == pytest.approx(100.0)
    assert r.per_item["reversed"] < r.per_item["same"]
    assert r.details["variance_spatial_iou"] > 0 and r.extractor == "motion-masks"
    assert r.preprocessing["protocol"] == "skyloom-scene"
    p = METRICS.build("physics_iq", options={"cond_frames": 4, "perturb_scale": 0.01})  # Physics-IQ's own protocol
    p.update(np.stack([frames, frames[::-1].copy()]), reference=[frames, frames], specs=[spec, spec],
             item_ids=["same", "reversed"])
    r = p.compute()
    assert r.per_item["reversed"] < r.per_item["same"] and 0 <= r.value <= 100
    assert r.preprocessing["protocol"] == "physics-iq" and r.value == round(r.value, 2)
    t = METRICS.build("physics_trajectory", options={"cond_frames": 4})
    t.update(np.stack([frames, throw, throw[::-1].copy()]), reference=[frames, throw, throw],
             ground_truth=[gt, throw_gt, throw_gt], item_ids=["same", "throw", "throw-reversed"])
    r = t.compute()
    assert throw_gt["objects"][0]["initial"]["motion"] == "thrown"
    assert r.per_item["same"] == 1.0 and r.per_item["throw"] == 1.0
    assert r.per_item["throw-reversed"] < 1.0  # a reversed flight does not continue from the seam
