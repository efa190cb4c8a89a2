"""Facts shared by stages live once, in core (issue 22): the colour vocabulary (skyloom.colours), where an
evaluation's videos and the results store are (skyloom.rundir), the clip-conforming function
(skyloom.video.conform_clip). The guards fail when a second colour table or path template appears."""

from __future__ import annotations

import ast
import os
from pathlib import Path

import numpy as np
import pytest

from skyloom.colours import BALL_COLOURS, CAPTION_COLOURS, COLOURS, HUE_MAX, HUE_RANGES, RENDER_RGB, hue_name

REPO = Path(__file__).resolve().parents[2]
SOURCE_DIRS = ("skyloom", "datagen", "captioning", "model", "eval", "dashboards", "bench")
COLOUR_NAMES = {w for c in COLOURS.values() for w in (c.name, *c.words)}


def _sources():
    for d in SOURCE_DIRS:
        for p in sorted((REPO / d).rglob("*.py")):
            yield p, p.read_text()


# -- the colour vocabulary ---------------------------------------------------------------------------
def test_hue_ranges_cover_the_hue_circle_once():
    owners = [[n for n, rs in HUE_RANGES.items() if any(lo <= h < hi for lo, hi in rs)] for h in range(HUE_MAX)]
    assert all(len(o) == 1 for o in owners), [(h, o) for h, o in enumerate(owners) if len(o) != 1]
    assert hue_name(99) == "blue"  # the disagreement of the old tables, settled as colour_motion was calibrated
    assert HUE_RANGES["blue"] == ((98, 135),) and HUE_RANGES["green"] == ((38, 88),)  # the calibrated ranges kept


def test_each_rendered_colour_lands_in_its_own_hue_range():
    """A colour's range holds the hue of the RGB the renderer draws it in, lit and in shade (OpenCV HSV)."""
    import cv2

    for name in HUE_RANGES:
        for shade in (1.0, 0.6, 0.3):
            px = np.round(255 * np.asarray(RENDER_RGB[name]) * shade).astype(np.uint8).reshape(1, 1, 3)
            assert hue_name(int(cv2.cvtColor(px, cv2.COLOR_RGB2HSV)[0, 0, 0])) == name, (name, shade)


def test_every_stage_reads_the_one_vocabulary():
    from skyloom.captioning import vocab
    from skyloom.captioning.fake_gt import COLOURS as FAKE
    from skyloom.datagen.scenes import COLOURS as SCENE
    from skyloom.datagen.scenes import SceneConfig

    assert SCENE is RENDER_RGB and SceneConfig().colours == BALL_COLOURS == ("red", "green", "blue", "yellow")
    assert vocab.COLOURS is CAPTION_COLOURS and vocab.COLOURS[:8] == (
        "red", "green", "blue", "yellow", "orange", "purple", "pink", "cyan")  # the order upsampling draws from
    assert set(FAKE) <= set(CAPTION_COLOURS)
    assert vocab.normalise_colour("gray") == "grey" and vocab.normalise_colour("violet") == "purple"
    assert vocab.normalise_colour("sky") is None


def test_heuristic_captioner_and_colour_motion_name_a_patch_alike():
    """The heuristic captioner and colour_motion segment with the same ranges: a flat patch of each
    rendered hue colour gets the same name from both."""
    from skyloom.captioning.heuristic import colour_names
    from skyloom.eval.metrics.colour_motion import colour_masks

    for name in HUE_RANGES:
        rgb = np.round(255 * np.asarray(RENDER_RGB[name])).astype(np.uint8)
        patch = np.broadcast_to(rgb, (1, 8, 8, 3)).copy()
        assert colour_names(patch) == [name]
        assert [c for c, m in colour_masks(patch).items() if m.all()] == [name]


def test_wrong_colour_captions_use_the_vocabulary():
    from skyloom.eval.features.indomain import corrupt_colour

    bad = corrupt_colour("a pink ball and a grey cube", seed=3)
    assert bad is not None and "pink" not in bad and "grey" not in bad
    assert {w for w in bad.split() if w in CAPTION_COLOURS} <= set(BALL_COLOURS)


# -- guards: one colour table, one path template -----------------------------------------------------
def colour_tables(source: str) -> list[int]:
    """Line numbers of literal colour tables: a dict keyed by >= 3 colour names (name -> RGB, hue, words),
    a sequence pairing >= 3 colour names with other values (``((15, "red"), ...)``), or a flat list of
    >= 5 colour names (a vocabulary of its own). A short choice of names (``["grey", "white", "beige"]``) is
    a selection from the vocabulary, not a table."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Dict):
            names = {k.value for k in node.keys if isinstance(k, ast.Constant) and k.value in COLOUR_NAMES}
            table = len(names) >= 3
        elif isinstance(node, (ast.Tuple, ast.List, ast.Set)):
            flat = {e.value for e in node.elts if isinstance(e, ast.Constant) and e.value in COLOUR_NAMES}
            paired = {x.value for e in node.elts if isinstance(e, (ast.Tuple, ast.List)) for x in e.elts
                      if isinstance(x, ast.Constant) and x.value in COLOUR_NAMES}
            table = len(flat) >= 5 or len(paired) >= 3
        else:
            continue
        if table:
            found.append(node.lineno)
    return found


def hue_literals(source: str) -> list[int]:
    """Line numbers that bind a name about hues (``HUES``, ``red_hue_range``, ...) to a literal: hue ranges
    of their own, even without colour names beside them."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, (ast.Assign, ast.AnnAssign)) and isinstance(node.value, (ast.Tuple, ast.List, ast.Dict,
                                                                                      ast.Set, ast.Constant)):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            if any(isinstance(t, ast.Name) and "hue" in t.id.lower() for t in targets):
                found.append(node.lineno)
    return found


def eval_path_templates(source: str) -> list[int]:
    """Line numbers that build an evaluation path by hand: ``... / "eval" / ...``, ``... / "videos"``,
    ``... / "results.sqlite"`` (path joins with those literals)."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Div):
            for side in (node.left, node.right):
                if isinstance(side, ast.Constant) and side.value in ("eval", "videos", "results.sqlite"):
                    found.append(node.lineno)
    return found


def test_the_guards_find_what_they_guard_against():
    assert colour_tables('HUES = ((15, "red"), (25, "orange"), (35, "yellow"))') == [1]
    assert colour_tables('C = {"red": (1, 0, 0), "blue": (0, 0, 1), "green": (0, 1, 0)}') == [1]
    assert colour_tables('STATUS = {"ok": "green", "bad": "red", "retry": "yellow"}') == []  # colours as values
    assert colour_tables('C = ("red", "green", "blue", "yellow", "orange", "purple")') == [1]  # a vocabulary
    assert colour_tables('floor = rng.choice(["grey", "white", "beige"])') == []  # a choice from it
    assert hue_literals("RED_HUES = ((0, 10), (165, 180))\nhue = h % 180") == [1]
    assert eval_path_templates('p = run / "eval" / suite / eid / "videos"') == [1, 1]
    assert eval_path_templates('p = root / "results.sqlite"') == [1]


def test_no_second_colour_table_in_the_source_tree():
    where = {str(p.relative_to(REPO)): lines for p, src in _sources()
             if p.name != "colours.py" and (lines := colour_tables(src) + hue_literals(src))}
    assert not where, f"colour tables outside skyloom/colours.py (use skyloom.colours): {where}"


def test_no_second_eval_path_template_in_the_source_tree():
    where = {str(p.relative_to(REPO)): lines for p, src in _sources()
             if p != REPO / "skyloom" / "rundir.py" and (lines := eval_path_templates(src))}
    assert not where, f"evaluation paths built outside skyloom/rundir.py (use RunDir/EvalDir/locate_store): {where}"


def test_eval_conforms_clips_with_one_function():
    """No clip resize of its own in the evaluation harness and metrics: skyloom.video.conform_clip (the
    Physics-IQ protocol's own quarter-size masks in eval/functional/physics_iq.py are protocol maths)."""
    where = [str(p.relative_to(REPO)) for d in ("eval/harness", "eval/metrics") for p in sorted((REPO / d).glob("*.py"))
             if "cv2.resize" in p.read_text()]
    assert not where
    from skyloom.eval.functional.physics_iq import to_size
    from skyloom.video import conform_clip

    v = np.random.default_rng(1).integers(0, 256, (3, 16, 24, 3), dtype=np.uint8)
    np.testing.assert_array_equal(to_size(v, 32, 48), conform_clip(v, height=32, width=48, interpolation="linear"))


# -- run contract: evaluation folders and the results store ------------------------------------------
def test_eval_dir_layout(tmp_path):
    from skyloom.rundir import EvalDir, RunDir

    run = RunDir.create(tmp_path / "run")
    ev = run.evaluation("smoke", "smoke-v1-x")
    assert ev.video("p0") == tmp_path / "run" / "eval" / "smoke" / "smoke-v1-x" / "videos" / "p0.mp4"
    assert ev.results_json.parent == ev.root and ev.owner == run.root
    assert EvalDir.find([tmp_path / "run"], "smoke", "smoke-v1-x") is None  # no videos yet
    ev.videos.mkdir(parents=True)
    assert EvalDir.find([tmp_path / "elsewhere", tmp_path / "run"], "smoke", "smoke-v1-x") == ev
    out = EvalDir(tmp_path / "out", "smoke", "e")  # `skyloom eval --out OUT`: OUT/<suite>/<id>
    out.videos.mkdir(parents=True)
    assert EvalDir.find([tmp_path / "out"], "smoke", "e") == out and out.owner == tmp_path / "out"


def test_locate_store_order(tmp_path, monkeypatch):
    from skyloom.rundir import RESULTS_DB_ENV, RunDir, locate_store

    monkeypatch.delenv(RESULTS_DB_ENV, raising=False)
    monkeypatch.chdir(tmp_path)
    a, b = RunDir.create(tmp_path / "runs" / "a"), RunDir.create(tmp_path / "runs" / "b")
    ck = a.root / "checkpoints" / "step-00000001"
    ck.mkdir(parents=True)
    assert locate_store("sqlite:///x.sqlite", out="o") == ["sqlite:///x.sqlite"]  # --db first
    assert locate_store(out="o") == [os.path.join("o", "results.sqlite")]
    assert locate_store(near=[str(ck)]) == [str(a.results_store)]  # a writer: the checkpoint's run
    assert locate_store(near=[str(ck)], existing=True) == []  # a reader: only a store that exists
    assert locate_store() == [os.path.join("skyloom-eval", "results.sqlite")]
    a.results_store.touch()
    b.results_store.touch()
    assert locate_store(runs=tmp_path / "runs", existing=True) == [str(a.results_store), str(b.results_store)]
    monkeypatch.setenv(RESULTS_DB_ENV, "postgresql://db/x")
    assert locate_store(runs=tmp_path / "runs") == ["postgresql://db/x"]  # the environment beats discovery


def test_conform_clip():
    import cv2

    from skyloom.video import conform_clip

    v = np.random.default_rng(0).integers(0, 256, (6, 40, 60, 3), dtype=np.uint8)
    assert conform_clip(v) is v and conform_clip(v, num_frames=9) is v
    out = conform_clip(v, height=20, width=30, num_frames=4)
    assert out.shape == (4, 20, 30, 3)
    np.testing.assert_array_equal(out[2], cv2.resize(v[2], (30, 20), interpolation=cv2.INTER_AREA))
    up = conform_clip(v, height=80, width=120, interpolation="linear")
    np.testing.assert_array_equal(up[0], cv2.resize(v[0], (120, 80), interpolation=cv2.INTER_LINEAR))
    with pytest.raises(ValueError, match="interpolation"):
        conform_clip(v, height=8, width=8, interpolation="cubic")


@pytest.mark.parametrize("mod", ["skyloom.eval.metrics.inputs", "skyloom.eval.harness.submissions",
                                 "skyloom.eval.harness.calibration", "skyloom.eval.harness.diffusers_adapter"])
def test_conforming_callers_use_conform_clip(mod):
    import importlib

    assert "conform_clip" in Path(importlib.import_module(mod).__file__).read_text()


# -- ground truth and motion facts: core's typed view ------------------------------------------------
def test_typed_ground_truth_reads_v2_and_v1_alike():
    from skyloom.captioning.fake_gt import make_gt
    from skyloom.groundtruth import GroundTruthError, read_ground_truth
    from skyloom.motion import MotionFacts, derive_motion, labels

    gt = make_gt(3, num_objects=2, motions=["dropped", "thrown"], camera_motion="static")
    typed = read_ground_truth(gt)
    assert [o.name for o in typed.objects] == [o["name"] for o in gt["objects"]]
    for o, t in zip(gt["objects"], typed.objects, strict=True):
        assert t.motion.to_dict() == o["motion"]  # the typed facts round-trip to what the file stores
        assert list(t.motion.labels) == labels(o["motion"])
        assert MotionFacts.from_dict(o["motion"]) == t.motion
    v1 = {**gt, "version": 1, "objects": [{k: v for k, v in o.items() if k != "motion"} for o in gt["objects"]]}
    assert [o.motion for o in read_ground_truth(v1).objects] == [MotionFacts.from_dict(m)
                                                                   for m in derive_motion(gt).values()]
    with pytest.raises(GroundTruthError, match=r"gt/x.json: field 'format'"):
        read_ground_truth({**gt, "format": "other"}, where="gt/x.json")
