"""The heuristic captioner: labelled as such, and its statements follow the pixels (probes)."""

from __future__ import annotations

import numpy as np

from skyloom.captioning.base import ClipInput
from skyloom.captioning.heuristic import HeuristicCaptioner, colour_names
from tests.conftest import moving_square_video


def _text(frames: np.ndarray, fps: float = 8.0) -> str:
    out = HeuristicCaptioner().caption_batch([ClipInput("x", fps, frames=frames)])[0]
    assert out.error is None
    return out.captions["heuristic"]


def test_labelled_and_probes():
    moving = moving_square_video(T=16, H=64, W=64, colour=(255, 40, 40))
    t = _text(moving)
    assert t.startswith("Heuristic description, no vision-language model:")
    assert "2.0-second shot" in t and "drifting right" in t
    assert "drifting left" in _text(moving[::-1].copy())  # reversed time -> reversed direction
    static = np.repeat(moving[:1], 16, axis=0)
    assert "almost no motion" in _text(static)
    assert "dark" in _text(np.full((8, 32, 32, 3), 10, np.uint8))
    assert "brightly lit" in _text(np.full((8, 32, 32, 3), 230, np.uint8))


def test_colour_names_match_pixels():
    half = np.zeros((2, 32, 32, 3), np.uint8)
    half[:, :, :16] = (20, 40, 230)  # blue
    half[:, :, 16:] = (40, 220, 40)  # green
    assert sorted(colour_names(half)) == ["blue", "green"]
    assert colour_names(np.full((1, 8, 8, 3), 255, np.uint8)) == ["white"]


def test_bad_frames_are_a_clip_error():
    out = HeuristicCaptioner().caption_batch([ClipInput("x", 8.0, frames=None)])[0]
    assert out.captions == {} and "no frames" in out.error
