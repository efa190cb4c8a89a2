"""Scene-graph captions: facts derived from trajectories, exact, varied and deterministic text."""

from __future__ import annotations

import copy

import pytest

from skyloom.captioning.facts import GroundTruthError, scene_facts
from skyloom.captioning.fake_gt import make_gt
from skyloom.captioning.scene_graph import caption_gt, realise
from skyloom.captioning.verify import verify_caption


def _gt_one(motion: str, seed: int = 0, **kw) -> dict:
    return make_gt(seed, num_objects=1, motions=[motion], camera_motion="static", **kw)


def _as_v1(gt: dict) -> dict:
    """The same clip as a ``skyloom-gt`` v1 file: no stored motion facts (readers derive them)."""
    old = copy.deepcopy(gt)
    old["version"] = 1
    for o in old["objects"]:
        del o["motion"]
    return old


def test_motion_facts_are_the_ground_truths():
    dropped = _gt_one("dropped")
    f = scene_facts(dropped).objects[0]
    stored = dropped["objects"][0]["motion"]
    assert f.motions == tuple(dict.fromkeys(e["label"] for e in stored["events"]))
    assert f.motions[:2] == ("fall", "bounce") and f.start_height == stored["start_height"] == "air"
    assert f.bounces == sum(e["label"] == "bounce" for e in stored["events"]) >= 1
    # A v1 file has no stored facts: the reader derives the same ones from the per-frame data,
    # whatever the optional initial.motion says.
    blind = _as_v1(dropped)
    blind["objects"][0]["initial"]["motion"] = "resting"
    assert scene_facts(blind).objects[0] == f
    assert scene_facts(_gt_one("resting")).objects[0].motions == ("static",)


def test_rolling_or_sliding_is_what_the_clip_shows():
    gt = _as_v1(_gt_one("rolling", seed=1))
    r = gt["frames"][0]["objects"][0]["position"][2]  # resting on the floor: the centre is one radius up
    gt["objects"][0].update(shape="sphere", size=[r])
    assert "roll" in scene_facts(gt).objects[0].motions
    for fr in gt["frames"]:  # a plain ball's spin does not show: it still rolls
        fr["objects"][0]["angular_velocity"] = [0.0, 0.0, 0.0]
    assert scene_facts(gt).objects[0].motions == ("roll",)
    gt["objects"][0].update(shape="box", size=[r] * 3)  # a box moving along the floor slides
    assert scene_facts(gt).objects[0].motions == ("slide",)


def test_collision_and_leaving_the_frame():
    gt = make_gt(2, num_objects=2, motions=["rolling", "resting"], camera_motion="static")
    gt["events"] = [{"frame": 3, "t": 0.375, "kind": "collision", "a": "obj0", "b": "obj1"}]
    for fr in gt["frames"][10:]:
        fr["objects"][0]["visible"] = False
        fr["objects"][0]["bbox"] = None
    gt = _as_v1(gt)
    f = scene_facts(gt)
    assert f.objects[0].collides_with == ("obj1",) and f.objects[1].collides_with == ("obj0",)
    assert "leave" in f.objects[0].motions and "collide" in f.objects[0].motions
    text = caption_gt(gt, "clip")["dense"]
    other = f.objects[1]
    assert f"the {other.colour}" in text.lower()


def test_camera_motion_from_frames():
    for motion in ("static", "orbit", "pan", "dolly"):
        assert scene_facts(make_gt(5, camera_motion=motion)).camera == motion


@pytest.mark.parametrize("seed", range(40))
def test_dense_caption_is_exact(seed):
    gt = make_gt(seed)
    caps = caption_gt(gt, f"clip-{seed}")
    r = verify_caption(caps["dense"], gt)
    assert (r.precision, r.recall, r.hallucinated) == (1.0, 1.0, [])
    assert verify_caption(caps["short"], gt).precision == 1.0
    for o in gt["objects"]:  # every object with colour, size and material
        assert o["colour"] in caps["dense"]


def test_deterministic_and_varied():
    gt = make_gt(7)
    assert caption_gt(gt, "a") == caption_gt(gt, "a")
    texts = {caption_gt(gt, f"clip-{i}")["dense"] for i in range(12)}
    assert len(texts) >= 10  # same scene, different clip ids -> different phrasings
    assert caption_gt(gt, "a", seed=1) != caption_gt(gt, "a", seed=0)
    facts = scene_facts(gt)
    assert realise(facts, "short", 3) != realise(facts, "dense", 3)
    with pytest.raises(ValueError, match="kind"):
        realise(facts, "poem", 0)


def test_bad_ground_truth_names_the_field():
    gt = make_gt(0)
    with pytest.raises(GroundTruthError, match="format"):
        scene_facts({**gt, "format": "other"})
    broken = copy.deepcopy(gt)
    del broken["objects"][0]["colour"]
    with pytest.raises(GroundTruthError, match=r"objects\[0\].*colour"):
        scene_facts(broken)


@pytest.mark.parametrize("seed", range(20))
def test_identical_looking_objects_stay_exact(seed):
    gt = make_gt(seed, num_objects=3)
    a, b = gt["objects"][:2]
    b["colour"], b["shape"] = a["colour"], a["shape"]  # two objects that look the same
    text = caption_gt(gt, "twin")["dense"]
    r = verify_caption(text, gt)
    assert (r.precision, r.recall, r.hallucinated) == (1.0, 1.0, [])
