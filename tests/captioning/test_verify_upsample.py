"""Verification (precision/recall vs ground truth, hallucinations) and prompt upsampling."""

from __future__ import annotations

import pytest

from skyloom.captioning.fake_gt import make_gt
from skyloom.captioning.scene_graph import caption_gt
from skyloom.captioning.upsample import upsample
from skyloom.captioning.verify import parse_caption, verify_caption


def _scene():
    gt = make_gt(11, num_objects=2, motions=["dropped", "rolling"], camera_motion="static")
    return gt, caption_gt(gt, "clip")["dense"]


def test_exact_caption_scores_one():
    gt, text = _scene()
    r = verify_caption(text, gt)
    assert r.precision == 1.0 and r.recall == 1.0 and r.hallucinated == [] and r.missing == []


def test_wrong_colour_loses_precision_and_is_flagged():
    gt, text = _scene()
    colour = gt["objects"][0]["colour"]
    wrong = "magenta"
    bad = text.replace(colour, wrong)
    r = verify_caption(bad, gt)
    assert r.precision < 1.0 and r.recall < 1.0
    assert any(wrong in h for h in r.hallucinated)


def test_extra_object_loses_precision_and_is_flagged():
    gt, text = _scene()
    r = verify_caption(text + " A large teal metal cylinder falls and bounces.", gt)
    assert r.precision < 1.0 and r.recall == 1.0
    assert r.hallucinated == ["teal cylinder"]
    assert verify_caption(text + " Three objects are visible.", gt).precision < 1.0  # wrong count


def test_dropping_facts_loses_recall_only():
    gt, text = _scene()
    first = text.split(". ")[0] + "."
    r = verify_caption(first, gt)
    assert r.recall < 0.5 and r.precision == 1.0


def test_parser_reads_attributes_motions_collisions():
    p = parse_caption("A small red rubber ball falls and bounces twice. It rolls into the blue cube. "
                      "A large blue wooden cube slides to the left. The camera orbits the scene.")
    assert sorted(p.objects) == [("blue", "box"), ("red", "sphere")]
    assert ("size", ("red", "sphere"), "small") in p.attributes
    assert ("material", ("blue", "box"), "wood") in p.attributes
    motions = {(k, m) for _, k, m in p.motions}
    assert {(("red", "sphere"), "fall"), (("red", "sphere"), "bounce"), (("red", "sphere"), "roll"),
            (("blue", "box"), "slide")} <= motions
    assert p.collisions == [("collision", frozenset({("red", "sphere"), ("blue", "box")}))]
    assert p.camera == "orbit"


def test_upsample_rules_share_the_caption_style():
    text = upsample("a red ball bouncing", seed=0)
    assert text == upsample("a red ball bouncing", seed=0)
    assert text != upsample("a red ball bouncing", seed=1)
    p = parse_caption(text)
    assert p.objects == [("red", "sphere")]
    assert {m for _, _, m in p.motions} >= {"bounce"}
    assert p.camera is not None and len(text.split()) > 3 * len(["a", "red", "ball", "bouncing"])
    # The user's facts survive, and the dense caption verifies against the facts it was written from.
    from skyloom.captioning.upsample import prompt_facts

    facts = prompt_facts("a big wooden cube slides to the left and hits a green ball", seed=2)
    r = verify_caption(upsample("a big wooden cube slides to the left and hits a green ball", seed=2), facts)
    assert r.precision == 1.0 and r.recall == 1.0
    box = next(o for o in facts.objects if o.shape == "box")
    assert box.size == "large" and box.material == "wood" and "slide" in box.motions and box.collides_with


def test_upsample_unknown_scene_and_bad_input():
    text = upsample("a cat playing piano at sunset", seed=0)
    assert text.startswith("A cat playing piano at sunset") and "sunset" in text.split(".", 1)[1]
    with pytest.raises(ValueError, match="empty"):
        upsample("   ")
    with pytest.raises(ValueError, match="mode"):
        upsample("a ball", mode="poetry")


def test_free_text_like_a_vlm():
    gt = make_gt(4, num_objects=2, motions=["dropped", "resting"], camera_motion="static")
    a, b = gt["objects"]
    text = (f"There is a {a['colour']} {a['shape'].replace('sphere', 'ball')} and a {b['colour']} "
            f"{b['shape'].replace('sphere', 'ball')}. The {a['colour']} one is dropping. The camera is fixed.")
    r = verify_caption(text, gt)
    assert r.hallucinated == [] and r.by_type["object"]["matched"] == 2
    assert r.by_type["camera"]["matched"] == 1
    assert 0 < r.recall < 1  # most facts unstated
