"""Scene specs, the MuJoCo renderer's ground truth against physics and camera formulas, and the
in-process API eval relies on (render_spec, perturb_spec)."""

from __future__ import annotations

import copy
import dataclasses
import math
import re

import numpy as np
import pytest

from skyloom.config import load
from skyloom.datagen.render import RenderConfig, perturb_spec, render_spec, sample_specs
from skyloom.datagen.scenes import (
    COLOURS,
    PROBES,
    SceneConfig,
    SpecError,
    sample_spec,
    spec_sha256,
    validate_spec,
)
from skyloom.motion import MOTION_LABELS, labels

G = 9.81


def preset(name: str, **scene) -> RenderConfig:
    cfg = load(RenderConfig, name, [], group="datagen")
    return dataclasses.replace(cfg, scene=dataclasses.replace(cfg.scene, **scene)) if scene else cfg


def test_sampler_is_seeded_and_varied():
    cfg = preset("balls-bounce")
    a, b = sample_specs(cfg, 20, seed=1), sample_specs(cfg, 20, seed=1)
    assert [spec_sha256(s) for s in a] == [spec_sha256(s) for s in b]
    assert spec_sha256(a[0]) != spec_sha256(sample_specs(cfg, 1, seed=2)[0])
    assert len({spec_sha256(s) for s in a}) == 20
    for s in a:
        validate_spec(s)
        cols = [o["colour"] for o in s["objects"]]
        assert 1 <= len(cols) <= 3 and len(set(cols)) == len(cols)  # clearly distinct colours
        assert set(cols) <= {"red", "green", "blue", "yellow"} and all(o["shape"] == "sphere" for o in s["objects"])
        assert s["render"]["quality"] == {"shadowsize": 512, "offsamples": 0, "shadows": True}
        r = s["render"]
        assert (r["width"], r["height"], r["fps"], r["num_frames"]) == (32, 32, 8.0, 16)
    assert {o["motion"] for s in a for o in s["objects"]} == {"dropped", "thrown", "rolling"}
    tab = sample_specs(preset("tabletop"), 24, seed=0)
    assert {s["camera"]["motion"] for s in tab} == {"static", "orbit", "pan", "dolly"}
    assert len({o["shape"] for s in tab for o in s["objects"]}) == 4
    assert len({s["floor"]["texture"] for s in tab}) == 3


def test_probe_preset_cycles_probe_kinds():
    specs = sample_specs(preset("physics-probe"), 10, seed=0)
    assert [s["probe"] for s in specs] == list(PROBES) * 2
    stack = specs[4]
    assert len(stack["objects"]) >= 2 and all(o["shape"] == "box" for o in stack["objects"])


@pytest.mark.parametrize("mutate, field", [
    (lambda s: s["objects"][0].update(shape="cone"), "objects[0].shape"),
    (lambda s: s["objects"][0].update(size=[0.1, 0.2]), "objects[0].size"),
    (lambda s: s["objects"][0].update(mass=-1), "objects[0].mass"),
    (lambda s: s["objects"][0].update(velocity=[0, float("nan"), 0]), "objects[0].velocity"),
    (lambda s: s["render"].update(width=3), "render.width"),
    (lambda s: s["render"].update(timestep=1.0), "render.timestep"),
    (lambda s: s["camera"].update(motion="zoom"), "camera.motion"),
    (lambda s: s.pop("floor"), "'floor'"),
])
def test_invalid_spec_names_the_field(mutate, field):
    spec = sample_spec(SceneConfig(), seed=0)
    mutate(spec)
    with pytest.raises(SpecError, match=re.escape(field)):
        validate_spec(spec)


def test_bad_scene_config_is_rejected():
    with pytest.raises(SpecError, match="scene.colours"):
        sample_spec(SceneConfig(colours=("red", "mauve")), seed=0)



def _drop_spec(z0: float = 0.8) -> dict:
    spec = sample_specs(preset("physics-probe", num_frames=8), 1, seed=3)[0]
    assert spec["probe"] == "drop"
    o = spec["objects"][0]
    o.update(shape="sphere", size=[0.2], position=[0.0, 0.0, z0], velocity=[0.0, 0.0, 0.0], angular_velocity=[0.0] * 3)
    return spec


def test_drop_matches_free_fall_and_impact_time():
    spec = _drop_spec(0.8)
    _frames, gt = render_spec(spec)
    r, z0 = 0.2, 0.8
    t_hit = math.sqrt(2 * (z0 - r) / G)  # 0.35 s
    hits = [e for e in gt["events"] if e["a"] == "floor" and e["b"] == "obj0"]
    assert hits and hits[0]["t"] == pytest.approx(t_hit, abs=0.01)
    assert hits[0]["speed"] == pytest.approx(G * t_hit, rel=0.05)
    assert hits[0]["frame"] == math.ceil(hits[0]["t"] * 8)
    for f in gt["frames"][:3]:  # before the impact: z = z0 - g t^2 / 2, v = -g t
        o = f["objects"][0]
        assert o["position"][2] == pytest.approx(z0 - G * f["t"] ** 2 / 2, abs=3e-3)
        assert o["velocity"][2] == pytest.approx(-G * f["t"], abs=2e-2)
    motion = gt["objects"][0]["motion"]
    assert labels(motion)[0] == "fall" and motion["start_height"] == "air"
    bounce_frames = {e["frame"] for e in motion["events"] if e["label"] == "bounce"}
    assert bounce_frames <= {e["frame"] for e in hits}  # a stated bounce is a floor impact the clip shows


def test_projection_bbox_depth_and_segmentation_agree():
    spec = _drop_spec(0.2001)  # a ball resting on the floor in front of the camera
    spec["render"].update(width=64, height=64, num_frames=2)
    frames, gt = render_spec(spec)
    seg, depth = gt["arrays_data"]["segmentation"], gt["arrays_data"]["depth"]
    assert frames.shape == (2, 64, 64, 3) and frames.dtype == np.uint8
    assert seg.dtype == np.uint8 and set(np.unique(seg)) == {0, 1}
    o = gt["frames"][0]["objects"][0]
    x0, y0, x1, y1 = o["bbox"]
    cx, cy = o["center_px"]
    assert x0 <= cx <= x1 and y0 <= cy <= y1  # pinhole projection of the centre lies in the mask's box
    # mask area vs the projected disc of radius f r / d
    f = 32 / math.tan(math.radians(spec["camera"]["fovy"]) / 2)
    assert o["pixels"] == pytest.approx(math.pi * (f * 0.2 / o["depth"]) ** 2, rel=0.25)
    # z-depth at the centre pixel is the sphere's front surface: centre depth - r (approximately)
    assert depth[0, int(cy), int(cx)] == pytest.approx(o["depth"] - 0.2, abs=0.05)
    # the ball is red-ish where the mask says it is and the background is not
    ball = frames[0][seg[0] == 1].mean(0)
    assert np.argmax(ball) == int(np.argmax(COLOURS[spec["objects"][0]["colour"]]))
    cam = gt["camera"]["frames"][0]
    assert np.linalg.norm(np.subtract(cam["position"], cam["lookat"])) == pytest.approx(spec["camera"]["distance"],
                                                                                         abs=1e-5)


def test_probes_ground_truth():
    specs = sample_specs(preset("physics-probe", num_frames=12), 5, seed=1)
    by = {s["probe"]: render_spec(s)[1] for s in specs}
    roll = labels(by["roll"]["objects"][0]["motion"])
    assert "roll" in roll and "fall" not in roll
    col = by["collide"]
    assert any({e["a"], e["b"]} == {"obj0", "obj1"} for e in col["events"])
    assert "collide" in labels(col["objects"][0]["motion"])
    thrown = by["throw"]["frames"]
    assert thrown[1]["objects"][0]["position"][0] > thrown[0]["objects"][0]["position"][0]
    assert "fall" in labels(by["drop"]["objects"][0]["motion"])
    stack = by["stack"]
    if all(labels(o["motion"]) == ["static"] for o in stack["objects"]):
        assert stack["events"] == []  # a resting stack: touching from the start, no impacts
    else:
        assert any({"tip", "fall"} & set(labels(o["motion"])) for o in stack["objects"])
    for gt in by.values():
        assert gt["format"] == "skyloom-gt" and gt["version"] == 2 and gt["probe"] in PROBES
        assert len(gt["frames"]) == 12 and all(len(f["objects"]) == len(gt["objects"]) for f in gt["frames"])


def test_render_spec_is_deterministic_and_perturb_zero_is_identity():
    spec = sample_specs(preset("balls-bounce", num_frames=6), 1, seed=5)[0]
    f1, g1 = render_spec(spec)
    f2, g2 = render_spec(copy.deepcopy(spec))
    assert np.array_equal(f1, f2) and g1["frames"] == g2["frames"] and g1["events"] == g2["events"]
    same = perturb_spec(spec, 0.0, seed=3)
    assert same == spec and same is not spec
    f3, _ = render_spec(same)
    assert np.array_equal(f1, f3)
    p1, p2 = perturb_spec(spec, 0.01, seed=1), perturb_spec(spec, 0.01, seed=2)
    assert p1 == perturb_spec(spec, 0.01, seed=1) and p1 != p2
    assert p1["perturbation"]["parent_sha256"] == spec_sha256(spec)
    _, gp = render_spec(p1)
    d = [np.linalg.norm(np.subtract(a["position"], b["position"]))
         for fa, fb in zip(g1["frames"], gp["frames"]) for a, b in zip(fa["objects"], fb["objects"])]
    assert 0 < max(d) < 0.2  # a tiny perturbation gives a nearby, different trajectory
    with pytest.raises(ValueError, match="scale"):
        perturb_spec(spec, -1.0, seed=0)


def test_camera_motions_move_the_camera():
    base = sample_specs(preset("balls-bounce", num_frames=4), 1, seed=0)[0]
    for motion, speed in (("orbit", 30.0), ("pan", 20.0), ("dolly", 0.5)):
        spec = copy.deepcopy(base)
        spec["camera"].update(motion=motion, speed=speed)
        _, gt = render_spec(spec)
        cams = gt["camera"]["frames"]
        if motion == "pan":  # the camera stays, its view turns
            assert cams[0]["position"] == pytest.approx(cams[-1]["position"], abs=1e-5)
            assert cams[0]["lookat"] != pytest.approx(cams[-1]["lookat"], abs=1e-3)
        else:
            assert cams[0]["position"] != pytest.approx(cams[-1]["position"], abs=1e-3)


def test_contacts_never_create_energy():
    """Kinetic + potential energy never grows (soft contacts tuned so restitution < 1)."""
    from skyloom.datagen.simulate import Simulation

    specs = sample_specs(preset("balls-bounce", num_frames=16), 6, seed=11)
    specs += sample_specs(preset("tabletop"), 3, seed=2)
    for spec in specs:
        sim = Simulation(spec)
        sim.run()
        masses = [o["mass"] for o in spec["objects"]]
        energy = [sum(m * (0.5 * np.dot(s["velocity"], s["velocity"]) + G * s["position"][2])
                      for m, s in zip(masses, st))
                  for st in sim.states]  # rotational energy left out: only an upper bound on growth matters
        rot = max(m * max(np.dot(s["angular_velocity"], s["angular_velocity"]) for s in st) * max(o["size"]) ** 2
                  for st in sim.states for m, o in zip(masses, spec["objects"]))
        assert max(energy) <= energy[0] * 1.01 + rot, spec["seed"]


def test_longer_render_continues_the_same_clip():
    """eval re-simulates continuations by raising num_frames: the first frames must not change."""
    spec = sample_specs(preset("physics-probe", num_frames=4), 3, seed=0)[2]
    longer = copy.deepcopy(spec)
    longer["render"]["num_frames"] = 7
    f4, g4 = render_spec(spec)
    f7, g7 = render_spec(longer)
    assert np.array_equal(f7[:4], f4) and g7["frames"][:4] == g4["frames"]


def test_reused_gl_resources_render_the_same_pixels():
    """One backend reuses its GL context and MjrContext across scenes: pixels equal fresh ones."""
    from skyloom.datagen.mujoco_render import MujocoRenderer

    specs = sample_specs(preset("tabletop", num_frames=2, width=32, height=32), 3, seed=4)
    shared = MujocoRenderer()
    for spec in specs:
        a = shared.render(spec)
        fresh = MujocoRenderer()
        b = fresh.render(spec)
        fresh.close()
        assert np.array_equal(a.frames, b.frames) and np.array_equal(a.segmentation, b.segmentation)
        assert np.array_equal(a.depth, b.depth)
    assert len({(s["floor"]["colour"], s["background"]["colour"]) for s in specs}) > 1  # textures change
    shared.close()


def test_raycast_and_raster_ground_truth_agree():
    """Small clips get segmentation/depth by ray casting; it matches MuJoCo's GL segment pass."""
    from skyloom.datagen.mujoco_render import segmentation_method

    agree, rel = [], []
    for spec in sample_specs(preset("tabletop", num_frames=3, width=48, height=48), 3, seed=6):
        assert segmentation_method(spec) == "raycast"
        a = copy.deepcopy(spec)
        a["render"]["segmentation"] = "raster"
        fa, ga = render_spec(a)
        fb, gb = render_spec(spec)
        assert np.array_equal(fa, fb)  # the RGB pass is the same
        sa, sb = ga["arrays_data"]["segmentation"], gb["arrays_data"]["segmentation"]
        da, db = ga["arrays_data"]["depth"], gb["arrays_data"]["depth"]
        agree.append((sa == sb).mean())
        same = (sa == sb) & (da < 100)  # same object (or floor), not the sky
        rel.append(np.median(np.abs(da[same] - db[same]) / da[same]))
    assert min(agree) >= 0.995 and max(rel) < 1e-3


def test_ground_truth_follows_the_skyloom_gt_contract():
    """Keys and types of docs/architecture.md (what captioning and eval code against)."""
    import json

    from skyloom.datagen.scenes import MATERIALS, MOTIONS, SHAPES, SIZE_NAMES

    spec = sample_specs(preset("balls-bounce", num_frames=6), 1, seed=21)[0]
    frames, gt = render_spec(spec)
    arrays = gt.pop("arrays_data")
    json.dumps(gt, allow_nan=False)  # plain JSON
    top = {"format", "version", "renderer", "renderer_version", "spec", "fps", "num_frames", "width", "height",
           "gravity", "camera", "objects", "frames", "events", "floor", "background", "lighting", "arrays"}
    assert top <= set(gt) and gt["spec"] == spec
    assert (gt["num_frames"], gt["height"], gt["width"]) == frames.shape[:3] == arrays["depth"].shape
    assert gt["camera"]["motion"] == "static" and len(gt["camera"]["frames"]) == 6
    assert set(gt["camera"]["frames"][0]) >= {"position", "lookat"}
    for k, o in enumerate(gt["objects"]):
        assert o["seg_id"] == k + 1 and o["shape"] in SHAPES and o["size_name"] in SIZE_NAMES
        assert o["material"] in MATERIALS and o["initial"]["motion"] in MOTIONS and o["colour"] in COLOURS
        assert o["colour"].isalpha() and set(o["initial"]) == {"position", "velocity", "motion"}
        assert set(o["motion"]) == {"events", "start_height", "direction"} and o["motion"]["events"]
        assert set(labels(o["motion"])) <= set(MOTION_LABELS)
    for i, f in enumerate(gt["frames"]):
        assert f["index"] == i and f["t"] == pytest.approx(i / 8)
        for o in f["objects"]:
            assert len(o["position"]) == 3 and len(o["quaternion"]) == 4 and len(o["velocity"]) == 3
            assert o["bbox"] is None or (len(o["bbox"]) == 4 and o["visible"])
    names = {o["name"] for o in gt["objects"]} | {"floor"}
    for e in gt["events"]:
        assert e["kind"] == "collision" and {e["a"], e["b"]} <= names and 0 <= e["frame"] < 6
