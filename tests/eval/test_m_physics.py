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
         teleport_at: int | None = None, vanish: set[int] | None = None, y0: float = 6.0, r: int = 4,
         bg: int = 100) -> np.ndarray:
    """A ball falling from rest (y = y0 + ½ g t², px) onto a floor, or at constant velocity."""
    v = np.full((T, H, W, 3), bg, np.uint8)
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
    v = r.details  # the truth: IoU ratios 1/V (not capped), MSE term 1
    want = 100 * (1 / v["variance_spatial_iou"] + 1 / v["variance_spatiotemporal_iou"]
                  + 1 / v["variance_weighted_spatial_iou"] + 1) / 4
    assert r.per_item["same"] == pytest.approx(want) and r.per_item["same"] >= 100.0
    assert r.per_item["reversed"] < r.per_item["same"]
    assert r.details["variance_spatial_iou"] > 0 and r.extractor == "motion-masks"
    assert r.preprocessing["protocol"] == "skyloom-scene"
    for name, protocol in (("physics_iq", "skyloom-physics-iq"), ("physics_iq_exact", "physics-iq")):
        p = METRICS.build(name, options={"cond_frames": 4, "perturb_scale": 0.01})
        p.update(np.stack([frames, frames[::-1].copy()]), reference=[frames, frames], specs=[spec, spec],
                 item_ids=["same", "reversed"])
        r = p.compute()
        assert r.per_item["reversed"] < r.per_item["same"] and r.preprocessing["protocol"] == protocol
        assert r.value == pytest.approx(np.mean(list(r.per_item.values())) if name == "physics_iq"
                                        else round(min(100.0, max(0.0, np.mean(list(r.per_item.values())))), 2))
    t = METRICS.build("physics_trajectory", options={"cond_frames": 4})
    t.update(np.stack([frames, throw, throw[::-1].copy(), np.full_like(throw, 128)]),
             reference=[frames, throw, throw, throw], ground_truth=[gt, throw_gt, throw_gt, throw_gt],
             item_ids=["same", "throw", "throw-reversed", "grey"])
    r = t.compute()
    assert throw_gt["objects"][0]["initial"]["motion"] == "thrown"
    assert r.per_item["same"] == 1.0 and r.per_item["throw"] == 1.0
    assert r.per_item["throw-reversed"] < 1.0  # a reversed flight does not continue from the seam
    assert r.per_item["grey"] == 0.0  # an object that is not found is a miss, not a dropped check


# -- the probe's resolution, trivial continuations, simulator agreement, admission -----------------
def _variance(ref: np.ndarray, g_take: float = 126.0) -> dict:
    """The physical variance of the analytic drop against a take with a slightly different gravity."""
    return physics_iq.physical_variance({"g": 120.0}, 4, reference=ref, keep_take=True,
                                        render=lambda spec: (drop(g_px=spec["g"], r=3, bg=30), {}),
                                        perturb=lambda spec, scale, seed: {**spec, "g": g_take})


def _shrink(v: np.ndarray, size: int) -> np.ndarray:
    import cv2

    return np.stack([cv2.resize(f, (size, size), interpolation=cv2.INTER_AREA) for f in v])


def test_physics_metrics_score_at_the_probe_resolution():
    from skyloom.eval.harness.continuations import make
    from skyloom.eval.metrics import inputs as dispatch

    ref = drop(r=3, bg=30)  # (16, 64, 64, 3): a small ball, as the probes have
    var = _variance(ref)
    grey32 = _shrink(make("grey", ref, 4), 32)  # the step-0 model: given frames (at its 32 px), then grey
    frozen = make("last_frozen", ref, 4)
    m = METRICS.build("physics_iq", options={"cond_frames": 4})
    item = {"item_id": "p", "reference": ref, "variance": var}
    kw = dispatch.update_kwargs(m, [item], [grey32])
    assert kw["reference"][0].shape == ref.shape  # the simulator's clip is never shrunk to the candidate
    m.update([grey32, frozen, ref], item_ids=["grey32", "frozen", "truth"], reference=[ref] * 3, variance=[var] * 3)
    r = m.compute()
    assert r.per_item["grey32"] < r.per_item["frozen"] < r.per_item["truth"], r.per_item
    assert "resized to the reference" in r.preprocessing["resolution"]
    assert r.details["candidate_height"] == pytest.approx((32 + 64 + 64) / 3)  # each item's own size, recorded
    # what the old rule did: the reference shrunk to 32 px loses its motion masks, and grey beats the truth's term
    from skyloom.eval.metrics.inputs import fit_frames

    small = fit_frames(ref, grey32.shape)
    assert physics_iq.moving_cells(small[4:]) < physics_iq.moving_cells(ref[4:])
    var_set = physics_iq.piq_dataset_variance([var["physics_iq"]])
    old = physics_iq.piq_contribution(physics_iq.piq_view_summary(physics_iq.piq_view(grey32[4:], small[4:])), var_set)
    assert old > r.per_item["grey32"]
    # physics_iq_exact: Physics-IQ's own rule (candidate masks at 32 px, resized to the reference's W/4 x H/4)
    e = METRICS.build("physics_iq_exact", options={"cond_frames": 4})
    e.update([grey32], item_ids=["g"], reference=[ref], variance=[var])
    want = physics_iq.piq_contribution(physics_iq.piq_view_summary(physics_iq.piq_view(grey32[4:], ref[4:])), var_set)
    assert e.compute().per_item["g"] == pytest.approx(want)
    assert e.compute().preprocessing["protocol"] == "physics-iq" and "clipped" in e.compute().preprocessing["aggregate"]


def test_physics_iq_is_not_clipped_but_physics_iq_exact_is():
    ref = drop(r=3, bg=30)
    var = _variance(ref)
    m = METRICS.build("physics_iq", options={"cond_frames": 4})
    e = METRICS.build("physics_iq_exact", options={"cond_frames": 4})
    take = var["take"]
    for x in (m, e):
        x.update([ref, take], item_ids=["truth", "take"], reference=[ref, ref], variance=[var, var])
    rm, re_ = m.compute(), e.compute()
    assert rm.per_item["truth"] > 100 and rm.value > rm.per_item["take"]  # the truth is above a second take
    assert re_.value == 100.0  # Physics-IQ clips: truth and a re-simulation can tie at 100


def test_moving_cells():
    ref = drop(r=3, bg=30)
    assert physics_iq.moving_cells(np.repeat(ref[:1], 8, axis=0)) == 0
    assert physics_iq.moving_cells(ref[4:]) >= 8
    assert physics_iq.moving_cells(_shrink(ref, 32)[4:]) < physics_iq.moving_cells(ref[4:])


def test_continuations_keep_the_given_frames():
    from skyloom.eval.harness.continuations import BUILDERS, DEGENERATE, make

    ref = drop(r=3, bg=30)
    for name in BUILDERS:
        v = make(name, ref, 4, seed=3, objects=OBJS)
        assert v.shape == ref.shape and v.dtype == np.uint8 and np.array_equal(v[:4], ref[:4]), name
        assert not np.array_equal(v[4:], ref[4:]), name
    assert set(DEGENERATE) <= set(BUILDERS) and len(DEGENERATE) == 10
    tele = make("teleported", ref, 4, objects=OBJS)
    ct = trajectory.object_tracks(tele, OBJS)["obj0"]
    cr = trajectory.object_tracks(ref, OBJS)["obj0"]
    assert np.allclose(ct[4:, 0] - cr[4:, 0], 64 // 3, atol=1) and np.allclose(ct[4:, 1], cr[4:, 1], atol=1)
    assert (make("fade", ref, 4)[-1] == 128).all() and (make("stopped", ref, 4)[7:] == ref[6]).all()
    assert np.array_equal(make("slowed", ref, 4)[4:8], ref[[4, 4, 5, 5]])
    with pytest.raises(ValueError, match="unknown continuation"):
        make("frozen-ish", ref, 4)


def test_simulator_agreement_orders_trivial_continuations():
    from skyloom.eval.harness.continuations import make

    ref = drop(r=3, g_px=240.0, bg=30)
    take = drop(r=3, g_px=250.0, bg=30)

    def score(v, **kw):
        return trajectory.simulator_agreement(v, ref, OBJS, 4, take=take, **kw)

    truth, pert = score(ref), score(take)
    assert truth["score"] == 1.0 and pert["position"] == 1.0 and pert["score"] > 0.95  # the take's own tolerance
    s = {k: score(make(k, ref, 4, seed=1, objects=OBJS))["score"] for k in
         ("slowed", "stopped", "reversed", "teleported", "last_frozen", "grey", "noise")}
    assert s["grey"] == 0.0 and s["noise"] == 0.0  # not found: a miss in every frame
    assert 1.0 > s["slowed"] > s["last_frozen"] > 0.0 and s["stopped"] > s["last_frozen"], s
    assert s["teleported"] < 1.0 and score(make("teleported", ref, 4, objects=OBJS))["position"] == 0.0
    # the tolerance comes from the take: 3 px off is a miss against the simulator alone
    off = ref.copy()
    off[4:] = np.roll(ref[4:], 3, axis=2)
    wide = drop(r=3, g_px=240.0, bg=30)
    wide[4:] = np.roll(ref[4:], 4, axis=2)
    assert trajectory.simulator_agreement(off, ref, OBJS, 4, take=wide)["position"] == 1.0
    assert trajectory.simulator_agreement(off, ref, OBJS, 4)["position"] < 0.5


def test_probe_draw_error_names_the_count():
    from skyloom.eval.harness import probes
    from skyloom.eval.harness.suites import PhysicsSpec

    ph = PhysicsSpec(preset="physics-suite", num_scenes=1, seed=1000, min_moving_cells=10 ** 6, max_draws=1)
    with pytest.raises(probes.ProbeDrawError, match=r"only 0 of 1 probe scenes admitted in 1 draws.*moving cells"):
        probes.build_items(ph)


@pytest.mark.slow
def test_probes_are_admitted_only_if_they_move_and_pass_the_gate():
    from skyloom import datagen
    from skyloom.eval.harness import probes
    from skyloom.eval.harness.continuations import DEGENERATE, make
    from skyloom.eval.harness.suites import PhysicsSpec
    from skyloom.video import encode_round_trip

    ph = PhysicsSpec(preset="physics-suite", num_scenes=4, seed=1000)
    items = probes.build_items(ph)
    assert len(items) == 4
    draw = items[0]["draw"]
    assert draw["draws"] == len(draw["admitted"]) + len(draw["rejected"]) and draw["min_moving_cells"] == 8
    assert all(r["reason"] for r in draw["rejected"]) and {it["item_id"] for it in items} == set(draw["admitted"])
    specs = probes.probe_specs(ph)
    m = METRICS.build("physics_iq", options={"cond_frames": 4})
    for it in items:
        raw = datagen.render_spec(specs[it["item_id"]])[0]
        assert np.array_equal(it["reference"], encode_round_trip(raw, it["fps"]))  # the encoded truth
        assert physics_iq.moving_cells(it["reference"][4:]) == it["moving_cells"] >= 8
        objs = [o for o in it["ground_truth"]["objects"] if "rgb" in o]
        names = ("perturbed", *DEGENERATE)
        vids = [np.concatenate([it["reference"][:4], it["gate_take"][4:]])] + [
            encode_round_trip(make(k, it["reference"], 4, seed=int(it["item_id"][-3:]), objects=objs), it["fps"])
            for k in DEGENERATE]  # the gate's seed: the draw index
        m.reset()
        m.update(vids, item_ids=list(names), reference=[it["reference"]] * len(names),
                 variance=[it["variance"]] * len(names))
        got = m.compute().per_item
        assert all(got[k] < got["perturbed"] for k in DEGENERATE), (it["item_id"], got)
        assert got == pytest.approx(it["gate"]["terms"])  # the gate's numbers are the metric's
