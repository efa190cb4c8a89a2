"""colour_motion: calibration on real rendered clips (own captions high, shuffled captions lower,
noise and grey 0, a text-blind model <= 0.25) and the pieces it is built from."""

from __future__ import annotations

import json

import numpy as np
import pytest

from skyloom.colours import BALL_COLOURS, HUE_RANGES
from skyloom.config import ConfigError
from skyloom.eval.metrics import METRICS
from skyloom.eval.metrics.colour_motion import (
    ColourMotion,
    colour_masks,
    judge_video,
    prompted_colour,
    track_stats,
)

N_CLIPS = 32


@pytest.fixture(scope="module")
def rendered():
    """32 balls-single scenes rendered with MuJoCo and captioned from ground truth: [(frames, short caption)]."""
    pytest.importorskip("mujoco")
    from skyloom.captioning.scene_graph import caption_gt
    from skyloom.config import load
    from skyloom.datagen.render import (
        RenderConfig,
        _settings,
        render_spec,
        sample_specs,
    )

    cfg = load(RenderConfig, "balls-single", [], group="datagen")
    settings = json.loads(_settings(cfg))
    out = []
    for i, spec in enumerate(sample_specs(cfg, N_CLIPS, seed=7)):
        frames, gt = render_spec(spec, cfg.renderer, **settings)
        out.append((frames, caption_gt(gt, clip_id=f"c{i}", kinds=("short",))["short"]))
    return out


def score(videos, prompts) -> float:
    m = ColourMotion()
    m.update(list(videos), prompts=list(prompts), item_ids=[f"i{k}" for k in range(len(prompts))])
    return m.compute().value


def test_real_clips_with_their_own_captions_score_high(rendered):
    assert score(*zip(*rendered)) >= 0.9  # measured 0.985 on 200 rendered balls-single clips


def test_shuffled_captions_score_at_the_chance_of_a_matching_colour(rendered):
    videos, caps = zip(*rendered)
    own = score(videos, caps)
    rng = np.random.default_rng(0)
    shuffled = [caps[j] for j in rng.permutation(len(caps))]
    same = np.mean([prompted_colour(a) == prompted_colour(b) for a, b in zip(caps, shuffled)])
    s = score(videos, shuffled)
    assert s <= 0.5 and s <= own - 0.4  # measured 0.26-0.29 on 200 clips (3 permutations)
    assert s == pytest.approx(same * own, abs=0.1)  # correct only where the colours happen to match


def test_noise_grey_and_static_videos_score_zero(rendered):
    rng = np.random.default_rng(0)
    caps = [c for _, c in rendered[:8]]
    noise = rng.integers(0, 256, (8, 16, 32, 32, 3), dtype=np.uint8)
    grey = np.full((8, 16, 32, 32, 3), 128, np.uint8)
    static = np.stack([np.repeat(v[:1], 16, axis=0) for v, _ in rendered[:8]])  # the right ball, not moving
    assert score(noise, caps) == 0.0
    assert score(grey, caps) == 0.0
    assert score(static, caps) == 0.0


def test_a_text_blind_model_scores_at_most_a_quarter(rendered):
    """Same video for every colour prompt of a seed: at most one of the 4 colours can be correct."""
    videos, prompts = [], []
    for v, _ in rendered[:4]:  # 4 "seeds", each a real correct ball clip
        for c in BALL_COLOURS:  # the colour-motion suite's four
            videos.append(v)
            prompts.append(f"A {c} ball drops and bounces on a light grey plain floor, static camera")
    s = score(videos, prompts)
    assert s <= 0.25
    assert s == pytest.approx(0.25, abs=1 / 16)  # the real clips: their own colour right, the others wrong


def test_time_shuffled_frames_are_not_coherent_motion(rendered):
    rng = np.random.default_rng(1)
    videos, caps = zip(*rendered)
    jumbled = [v[rng.permutation(len(v))] for v in videos]
    assert score(jumbled, caps) < score(videos, caps) - 0.2


def test_palette_colours_segment_to_their_own_name():
    """The hue ranges agree with the renderer's palette (one vocabulary, skyloom.colours): flat patches of
    each hue colour land in their own mask, the backdrop and the floor in none."""
    from skyloom.datagen.scenes import COLOURS

    assert set(HUE_RANGES) == {"red", "orange", "yellow", "green", "cyan", "blue", "purple", "pink"}
    for name in (*HUE_RANGES, "sky blue", "light grey"):
        for shade in (1.0, 0.6):  # lit and in shade (MuJoCo writes material RGB without a gamma curve)
            rgb = np.round(255 * np.asarray(COLOURS[name]) * shade).astype(np.uint8)
            px = np.broadcast_to(rgb, (1, 4, 4, 3)).copy()
            hits = [c for c, m in colour_masks(px).items() if m.all()]
            assert hits == ([name] if name in HUE_RANGES else []), (name, shade)


@pytest.mark.parametrize("prompt,colour", [
    ("A red ball drops", "red"),
    ("On a light grey plain floor in front of a sky blue plain backdrop, a big green ball rolls", "green"),
    ("a Yellow sphere bounces", "yellow"),
    ("a blue ball and a red ball", "blue"),
    ("a violet ball rolls past a dark blue cube", "purple"),  # a colour's other word; a dark blue is no blue
])
def test_prompted_colour_skips_background_phrases(prompt, colour):
    assert prompted_colour(prompt) == colour


def test_prompt_without_a_ball_colour_is_an_error():
    with pytest.raises(ValueError, match="names no ball colour"):
        prompted_colour("a ball in front of a sky blue backdrop")


def test_track_stats_by_hand():
    areas = np.array([10, 10, 10, 0, 0, 0])
    centres = np.array([[5, 5], [5, 8], [5, 20], [np.nan, np.nan], [np.nan, np.nan], [np.nan, np.nan]], float)
    presence, coherent, travel = track_stats(areas, centres, min_area=4, max_step=5)
    assert presence == 0.5
    assert coherent == pytest.approx(1 / 3)  # pairs with the blob in either frame: (0,1) ok, (1,2) jump, (2,3) gone
    assert travel == pytest.approx(15.0)


def test_thresholds_scale_with_frame_size():
    """The same moving square judged at 32 px and, upscaled 2x, at 64 px gives the same verdict."""
    v = np.full((8, 32, 32, 3), 200, np.uint8)
    for t in range(8):
        v[t, 10:16, 4 + 2 * t:10 + 2 * t] = (230, 25, 25)
    big = v.repeat(2, axis=1).repeat(2, axis=2)
    a, b = judge_video(v, "a red ball"), judge_video(big, "a red ball")
    assert a.correct and b.correct
    assert b.travel == pytest.approx(2 * a.travel)


def test_registered_metric_and_suite():
    from skyloom.eval.harness.suites import load_suite
    from skyloom.eval.metrics import inputs as dispatch

    assert "prompts" in dispatch.required_inputs(ColourMotion)  # suites and `eval score` pass each prompt

    assert METRICS.get("colour_motion") is ColourMotion
    suite = load_suite("colour-motion")
    assert suite.primary == "colour_motion" and len(suite.items()) == 16
    assert {prompted_colour(it["prompt"]) for it in suite.items()} == set(BALL_COLOURS)
    with pytest.raises(ConfigError, match=r"unknown config key 'min_shar' in settings; .*did you mean 'min_share'"):
        METRICS.build("colour_motion", options={"min_shar": 0.5}, where="settings")
    with pytest.raises(ValueError, match="needs prompts"):
        ColourMotion().update(np.zeros((1, 4, 32, 32, 3), np.uint8))


@pytest.mark.slow
def test_suite_runs_through_the_installed_cli(tmp_path):
    """`skyloom eval --suite colour-motion --ckpt RUN` on a tiny trained run: exit 0, the metric stored."""
    import shutil
    import subprocess
    import sys
    from pathlib import Path

    from skyloom.model.train import train
    from tests.model.helpers import make_square_corpus, tiny_cfg

    corpus = make_square_corpus(tmp_path / "corpus", n=3)
    train(tiny_cfg(steps=2, num_threads=1), corpus.root, tmp_path / "run", progress_bar=False)
    exe = shutil.which("skyloom", path=str(Path(sys.executable).parent))
    proc = subprocess.run([exe, "eval", "--suite", "colour-motion", "--ckpt", str(tmp_path / "run"),
                           "--set", "suite.seeds=[0]", "--set", "suite.generation.steps=2",
                           "--set", "suite.generation.num_frames=8"],
                          check=False, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    assert "Traceback" not in proc.stderr and "colour_motion" in proc.stdout + proc.stderr
    res = json.loads(next((tmp_path / "run" / "eval" / "colour-motion").rglob("results.json")).read_text())
    task = next(iter(res["results"].values()))  # every video scored: prompts reach the metric through the dispatch
    assert isinstance(task["colour_motion,none"], float)


@pytest.mark.parametrize("colour", ["orange", "cyan", "purple", "pink"])
def test_every_hue_colour_of_the_vocabulary_can_be_judged(colour):
    """The four colours beyond the ball corpora's (one vocabulary, skyloom.colours): a moving patch in the
    renderer's RGB is correct for its own name and wrong for its neighbours'."""
    from skyloom.colours import RENDER_RGB

    rgb = np.round(255 * np.asarray(RENDER_RGB[colour])).astype(np.uint8)
    v = np.full((8, 32, 32, 3), 200, np.uint8)
    for t in range(8):
        v[t, 10:16, 4 + 2 * t:10 + 2 * t] = rgb
    assert judge_video(v, f"a {colour} ball rolls").correct
    others = [c for c in HUE_RANGES if c != colour]
    assert not any(judge_video(v, f"a {c} ball rolls").correct for c in others)
