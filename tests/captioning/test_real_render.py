"""Scene-graph captions of a scene really rendered by MuJoCo (datagen.render_spec)."""

from __future__ import annotations

from skyloom.captioning.facts import scene_facts
from skyloom.captioning.scene_graph import caption_gt
from skyloom.captioning.verify import verify_caption


def test_caption_of_a_rendered_scene_is_exact_and_physical():
    from skyloom import config
    from skyloom.datagen.render import RenderConfig, render_spec, sample_specs

    cfg = config.load(RenderConfig, "balls-bounce", ["scene.motions=[dropped]", "scene.max_objects=2"], group="datagen")
    spec = sample_specs(cfg, 1, seed=1)[0]
    frames, gt = render_spec(spec)
    assert frames.ndim == 4 and gt["format"] == "skyloom-gt"
    facts = scene_facts(gt)
    for o in facts.objects:  # a dropped rubber ball falls from the air and hits the floor
        assert o.start_height == "air" and o.motions[0] == "fall"
        assert "bounce" in o.motions or "rest" in o.motions
    caps = caption_gt(gt, "rendered-0")
    r = verify_caption(caps["dense"], gt)
    assert (r.precision, r.recall, r.hallucinated) == (1.0, 1.0, [])
    for o in gt["objects"]:
        assert o["colour"] in caps["dense"] and o["colour"] in caps["short"]
