"""Motion facts as the clip shows them: the visibility rule, each label on constructed trajectories,
and rendered scenes where a bounce is visible at one frame rate and not at another."""

from __future__ import annotations

import copy
import math

import numpy as np
import pytest

from skyloom.geometry import half_height
from skyloom.groundtruth import GroundTruthError, check_gt
from skyloom.motion import (
    VISIBLE_FRACTION,
    derive_motion,
    implied_labels,
    labels,
    min_visible_change,
    object_motion,
    read_motion,
)

R = 0.15  # sphere radius of the constructed tracks (visible change 3 cm)
W = H = 64


def rows(z, x=None, quat=None, vel=None, visible=None, center=None):
    """Per-frame ground-truth records of one object from a height track (and optional x, ...)."""
    n = len(z)
    x = x if x is not None else [0.0] * n
    if vel is None:  # finite differences at 8 fps
        pos = np.stack([x, np.zeros(n), z], axis=1)
        vel = (np.gradient(pos, axis=0) * 8).tolist() if n > 1 else [[0.0] * 3]
    out = []
    for t in range(n):
        out.append({"name": "ball", "position": [x[t], 0.0, z[t]],
                    "quaternion": quat[t] if quat is not None else [1.0, 0.0, 0.0, 0.0],
                    "velocity": vel[t], "angular_velocity": [0.0, 0.0, 0.0],
                    "visible": True if visible is None else visible[t],
                    "bbox": [30 + 10 * x[t], 30, 34 + 10 * x[t], 34] if visible is None or visible[t] else None,
                    **({"center_px": center[t], "depth": 2.0} if center is not None else {})})
    return out


def motion(z, shape="sphere", size=(R,), events=(), **kw):
    return object_motion({"name": "ball", "shape": shape, "size": list(size)}, rows(z, **kw), list(events), W, H)


def floor_hit(frame):
    return {"frame": frame, "t": frame / 8, "kind": "collision", "a": "floor", "b": "ball", "speed": 2.0}


def test_visibility_rule_is_relative_to_the_object():
    assert min_visible_change("sphere", [0.144]) == pytest.approx(VISIBLE_FRACTION * 0.288)
    assert min_visible_change("box", [0.1, 0.2, 0.3]) == pytest.approx(VISIBLE_FRACTION * 0.6)
    assert min_visible_change("capsule", [0.05, 0.1]) == pytest.approx(VISIBLE_FRACTION * 0.3)
    # half_height follows the orientation: a box on its side rests on its y half-extent
    s = math.sqrt(0.5)
    assert half_height("box", [0.1, 0.2, 0.3], [s, s, 0, 0]) == pytest.approx(0.2)
    assert half_height("cylinder", [0.1, 0.4], [s, s, 0, 0]) == pytest.approx(0.1)
    with pytest.raises(ValueError, match="cone"):
        half_height("cone", [0.1])


@pytest.mark.parametrize("rise, bounced", [(0.9, False), (1.1, True)])
def test_a_bounce_is_stated_only_when_its_rise_shows(rise, bounced):
    v = min_visible_change("sphere", [R])
    z = [R + 0.6, R + 0.3, R + 0.01, R + 0.01 + rise * v, R, R, R]  # impact between frames 1 and 2
    m = motion(z, events=[floor_hit(2), floor_hit(4)])
    assert ("bounce" in labels(m)) is bounced
    assert labels(m)[0] == "fall" and m["start_height"] == "air"
    if bounced:
        b = next(e for e in m["events"] if e["label"] == "bounce")
        assert b["frame"] == 2 and b["rise"] == pytest.approx(rise * v, abs=1e-4)


def test_no_floor_impact_no_bounce_and_a_small_drop_is_no_fall():
    v = min_visible_change("sphere", [R])
    assert labels(motion([R + 0.5, R + 0.3, R + 0.35, R + 0.36])) == ["fall"]  # rising again without an impact
    assert "fall" not in labels(motion([R + 0.8 * v, R + 0.1 * v, R, R]))  # never visibly airborne


def test_roll_slide_by_shape_and_pose():
    x = [0.0, 0.05, 0.1, 0.15, 0.2]
    assert labels(motion([R] * 5, x=x)) == ["roll"]  # a ball moving along the floor rolls
    box = [0.1, 0.1, 0.1]
    assert labels(motion([0.1] * 5, shape="box", size=box, x=x)) == ["slide"]
    s = math.sqrt(0.5)
    lying = [[s, s, 0.0, 0.0]] * 5  # a cylinder on its side rolls, upright it slides
    assert labels(motion([0.1] * 5, shape="cylinder", size=[0.1, 0.2], x=x, quat=lying)) == ["roll"]
    assert labels(motion([0.2] * 5, shape="cylinder", size=[0.1, 0.2], x=x)) == ["slide"]
    v = min_visible_change("sphere", [R])
    assert labels(motion([R] * 5, x=[0.0, 0.2 * v, 0.4 * v, 0.6 * v, 0.8 * v])) == ["static"]  # too little to see


def test_tip_is_a_turn_of_the_up_axis_not_a_spin_about_it():
    box = [0.1, 0.1, 0.2]
    s = math.sqrt(0.5)
    spin = [[1, 0, 0, 0], [math.cos(0.5), 0, 0, math.sin(0.5)], [s, 0, 0, s]]  # about z: no tip, no motion
    assert labels(motion([0.2] * 3, shape="box", size=box, quat=spin)) == ["static"]
    over = [[1, 0, 0, 0], [math.cos(0.3), math.sin(0.3), 0, 0], [s, s, 0, 0]]  # onto its side
    m = motion([0.2, 0.18, 0.1], shape="box", size=box, quat=over, vel=[[0, 0, 0], [0, 0, -0.6], [0, 0, 0]])
    assert labels(m) == ["tip", "rest"] and next(e["frame"] for e in m["events"] if e["label"] == "tip") == 1


def test_leaving_the_frame_is_not_being_hidden():
    gone = [True, True, False, False]
    x = [0.0, 0.1, 0.2, 0.3]
    vel = [[0.8, 0, 0]] * 4
    assert labels(motion([R] * 4, x=x, vel=vel, visible=gone)) == ["roll", "leave"]
    inside = [[30.0, 30.0]] * 4  # no visible pixel, but the centre projects into the image: occluded
    assert labels(motion([R] * 4, x=x, vel=vel, visible=gone, center=inside)) == ["roll"]
    come = [False, False, True, True]
    assert "enter" in labels(motion([R] * 4, x=x, vel=vel, visible=come))


def test_rest_needs_a_still_end_and_static_never_moves():
    x = [0.0, 0.1, 0.2, 0.25, 0.25]
    moving = [[0.5, 0, 0]] * 4 + [[0.0, 0, 0]]
    m = motion([R] * 5, x=x, vel=moving)
    assert labels(m) == ["roll", "rest"]
    assert next(e["frame"] for e in m["events"] if e["label"] == "rest") == 3
    assert "rest" not in labels(motion([R] * 5, x=x, vel=[[0.5, 0, 0]] * 5))  # still moving at the end
    jitter = [R, R + 0.002, R, R + 0.001]
    assert labels(motion(jitter, vel=[[0, 0, 0.1]] * 4)) == ["static"]


def test_implied_labels_for_prompts():
    assert implied_labels(["bounce"]) == ["fall", "bounce"]
    assert implied_labels(["roll", "bounce", "rest"]) == ["roll", "fall", "bounce", "rest"]
    assert implied_labels(["fall", "bounce"]) == ["fall", "bounce"]


def test_readers_accept_v1_and_v2_and_name_bad_versions():
    from skyloom.captioning.fake_gt import make_gt

    gt = make_gt(3, num_objects=2)
    check_gt(gt)
    assert read_motion(gt) == {o["name"]: o["motion"] for o in gt["objects"]}
    old = copy.deepcopy(gt)
    old["version"] = 1
    for o in old["objects"]:
        del o["motion"]
        o["motion_summary"] = ["falls", "bounces"]  # v1's own labels are not trusted: derived again
    check_gt(old)
    assert read_motion(old) == derive_motion(gt) == read_motion(gt)
    with pytest.raises(GroundTruthError, match="version"):
        check_gt({**gt, "version": 3})


def test_a_bounce_between_frames_is_an_event_not_a_fact():
    """The same drop rendered at 8 and at 32 fps: the rebound (~4 cm of a 29 cm ball) shows at 32 fps only."""
    from skyloom import config
    from skyloom.datagen.render import RenderConfig, render_spec, sample_specs

    cfg = config.load(RenderConfig, "balls-bounce", [], group="datagen")
    spec = sample_specs(cfg, 1, seed=0)[0]
    obj = next(k for k, o in enumerate(spec["objects"]) if o["motion"] == "dropped")
    o = spec["objects"][obj]
    v = min_visible_change(o["shape"], o["size"])
    seen = {}
    for fps in (8, 32):
        s = copy.deepcopy(spec)
        s["render"].update(fps=float(fps), num_frames=2 * fps)
        _, gt = render_spec(s)
        hits = [e["frame"] for e in gt["events"] if {e["a"], e["b"]} == {"floor", o["name"]}]
        z = np.array([f["objects"][obj]["position"][2] for f in gt["frames"]]) - o["size"][0]  # lowest point
        f0, f1 = hits[0], hits[1]
        sampled_rise = z[f0:f1].max() - min(z[f0 - 1], z[f0])  # what the frames show after the first impact
        seen[fps] = (labels(gt["objects"][obj]["motion"]), sampled_rise)
        assert gt["objects"][obj]["motion"] == derive_motion(gt)[o["name"]]
    (lab8, rise8), (lab32, rise32) = seen[8], seen[32]
    assert rise8 < v <= rise32, (rise8, v, rise32)
    assert "bounce" not in lab8 and "bounce" in lab32  # the impact is an event in both ground truths
    assert lab8[0] == lab32[0] == "fall"
