"""Captions state exactly the ground truth's motion labels, on rendered scenes of every preset.

24 scenes of each of balls-bounce, tabletop and physics-probe are rendered by the render job into
one corpus (32x32 px); the ground truth read back from ``gt/<id>.json`` is compared with what the
scene-graph captions say, parsed by the verification parser, and ``skyloom caption`` /
``skyloom caption verify`` run as the installed executable on that corpus.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

from skyloom.captioning.scene_graph import caption_gt
from skyloom.captioning.verify import parse_caption, verify_caption
from skyloom.motion import derive_motion, labels

PRESETS = ("balls-bounce", "tabletop", "physics-probe")
SCENES = 24
SKYLOOM = str(Path(sys.executable).with_name("skyloom"))


@pytest.fixture(scope="module")
def corpus(tmp_path_factory, ray_local):
    from skyloom import config
    from skyloom.corpus import Corpus
    from skyloom.datagen.render import RenderConfig, run_render

    root = tmp_path_factory.mktemp("agree") / "corpus"
    for preset in PRESETS:
        cfg = config.load(RenderConfig, preset, [f"num_scenes={SCENES}", f"out={root}", "scene.width=32",
                                                 "scene.height=32", "scenes_per_task=6"], group="datagen")
        res = run_render(cfg, show_progress=False)
        assert (res.rendered, res.failed) == (SCENES, 0), res.failures
    return Corpus(root)


def _stated(text: str) -> tuple[Counter, set]:
    p = parse_caption(text)
    return Counter((key, m) for _, key, m in p.motions), {f[1] for f in p.collisions}


@pytest.mark.slow
def test_every_caption_fact_is_the_ground_truth_label(corpus):
    seen = Counter()
    for rec in corpus.records():
        gt = corpus.read_ground_truth(rec.id)
        assert gt["version"] == 2
        truth = Counter()
        pairs = set()
        for o in gt["objects"]:
            key = (o["colour"], o["shape"])
            truth.update((key, m) for m in labels(o["motion"]) if m != "collide")  # collisions: stated as pairs
            pairs |= {frozenset({key, next((q["colour"], q["shape"]) for q in gt["objects"] if q["name"] == e["with"])})
                      for e in o["motion"]["events"] if e["label"] == "collide"}
            seen.update(labels(o["motion"]))
        caps = caption_gt(gt, rec.id)
        motions, collisions = _stated(caps["dense"])
        assert motions == truth, rec.id  # every label stated, nothing else
        assert collisions == pairs, rec.id
        short_motions, _ = _stated(caps["short"])
        assert not short_motions - truth, rec.id  # the short caption states fewer labels, never a wrong one
        # a reader of an old (v1) file derives the very same facts from the frames
        assert derive_motion(gt) == {o["name"]: o["motion"] for o in gt["objects"]}, rec.id
        r = verify_caption(caps["dense"], gt)
        assert (r.precision, r.recall, r.hallucinated) == (1.0, 1.0, []), (rec.id, r.wrong, r.missing)
    assert len(corpus.records()) == SCENES * len(PRESETS)
    # the scenes exercise the label set, invisible-vs-visible bounces included
    assert {"fall", "bounce", "roll", "slide", "collide", "tip", "leave", "rest", "static"} <= set(seen), seen


@pytest.mark.slow
def test_caption_verify_cli_reports_exact_captions(corpus):
    root = str(corpus.root)
    run = subprocess.run([SKYLOOM, "caption", root, "--captioner", "scene-graph", "--set", "executor=local"],
                         capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stderr
    out = corpus.root / "verify.json"
    ver = subprocess.run([SKYLOOM, "caption", "verify", root, "--out", str(out)], capture_output=True, text=True,
                         timeout=600)
    assert ver.returncode == 0, ver.stderr
    assert "Traceback" not in ver.stderr and "scene-graph/dense" in ver.stdout + ver.stderr  # the table
    rep = json.loads(out.read_text())
    dense, short = rep["groups"]["scene-graph/dense"], rep["groups"]["scene-graph/short"]
    assert dense["n"] == short["n"] == SCENES * len(PRESETS)
    assert (dense["precision"], dense["recall"], dense["hallucinated_clips"]) == (1.0, 1.0, 0)
    assert short["precision"] == 1.0  # a prompt-like summary: states less, nothing false
