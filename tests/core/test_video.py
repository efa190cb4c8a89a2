"""Video I/O on PyAV: round trip within codec tolerance, sampling, resize, clear errors."""

from __future__ import annotations

import numpy as np
import pytest

from skyloom.video import VideoError, probe_video, read_metadata, read_video, sample_indices, write_video
from tests.conftest import moving_square_video


def test_round_trip_within_codec_tolerance(tmp_path):
    frames = moving_square_video(T=12, H=48, W=64)
    p = write_video(tmp_path / "v.mp4", frames, fps=8, metadata={"seed": 7, "steps": 30})
    got = read_video(p)
    assert got.shape == frames.shape and got.dtype == np.uint8
    err = np.abs(got.astype(np.int16) - frames.astype(np.int16))
    # H.264 at CRF 18 on flat colours: small mean error, chroma subsampling costs at the square's edges only.
    assert err.mean() < 3.0
    info = probe_video(p)
    assert (info.width, info.height, info.num_frames, info.codec, info.pix_fmt) == (64, 48, 12, "h264", "yuv420p")
    assert info.fps == pytest.approx(8.0)
    assert info.duration_s == pytest.approx(1.5, abs=0.13)
    assert read_metadata(p) == {"seed": 7, "steps": 30}


def test_deterministic_bytes(tmp_path):
    frames = moving_square_video(T=6)
    a = write_video(tmp_path / "a.mp4", frames, fps=8).read_bytes()
    b = write_video(tmp_path / "b.mp4", frames, fps=8).read_bytes()
    assert a == b


def test_odd_sizes_are_padded_to_even(tmp_path):
    frames = np.random.default_rng(0).integers(0, 255, (3, 15, 17, 3), dtype=np.uint8)
    p = write_video(tmp_path / "odd.mp4", frames, fps=4)
    assert read_video(p).shape == (3, 16, 18, 3)


def test_sampling_and_resize(tmp_path):
    T = 16
    frames = np.zeros((T, 32, 32, 3), np.uint8)
    for t in range(T):
        frames[t] = t * 15  # brightness encodes the frame index
    p = write_video(tmp_path / "ramp.mp4", frames, fps=8)
    got = read_video(p, start=2, stride=3, num_frames=4, size=(16, 24))
    assert got.shape == (4, 16, 24, 3)
    assert np.allclose(got[..., 0].mean(axis=(1, 2)), [30, 75, 120, 165], atol=4)
    half = read_video(p, fps=4)
    assert len(half) == 8
    assert np.allclose(half[..., 0].mean(axis=(1, 2)), np.arange(0, 16, 2) * 15, atol=4)
    assert list(sample_indices(10, 4)) == [0, 3, 6, 9]
    assert list(sample_indices(3, 5, "consecutive")) == [0, 1, 2, 0, 1]
    with pytest.raises(ValueError, match="unknown sampling mode"):
        sample_indices(3, 2, "bogus")


@pytest.mark.parametrize("content,reason", [
    (b"", "empty file"),
    (b"\x00\x01garbage" * 100, "not a readable video"),
])
def test_unreadable_files_raise_video_error(tmp_path, content, reason):
    p = tmp_path / "bad.mp4"
    p.write_bytes(content)
    with pytest.raises(VideoError, match=reason) as e:
        read_video(p)
    assert str(p) in str(e.value)


def test_missing_file_and_truncated_file(tmp_path):
    with pytest.raises(VideoError, match="no such file"):
        probe_video(tmp_path / "nope.mp4")
    good = write_video(tmp_path / "g.mp4", moving_square_video(T=16), fps=8).read_bytes()
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(good[: len(good) // 3])
    with pytest.raises(VideoError, match=str(cut.name)):
        read_video(cut)


def test_audio_only_file_has_no_video_stream(tmp_path):
    import av

    p = tmp_path / "a.m4a"
    with av.open(str(p), "w", format="mp4") as c:
        s = c.add_stream("aac", rate=16000)
        frame = av.AudioFrame.from_ndarray(np.zeros((1, 1024), np.float32), format="fltp", layout="mono")
        frame.sample_rate = 16000
        for pkt in s.encode(frame):
            c.mux(pkt)
        for pkt in s.encode():
            c.mux(pkt)
    with pytest.raises(VideoError, match="no video stream"):
        read_video(p)


def test_write_rejects_bad_arrays(tmp_path):
    with pytest.raises(ValueError, match=r"\(T, H, W, 3\)"):
        write_video(tmp_path / "x.mp4", np.zeros((4, 8, 8), np.uint8), fps=8)
    with pytest.raises(ValueError, match="uint8"):
        write_video(tmp_path / "x.mp4", np.zeros((4, 8, 8, 3), np.float32), fps=8)
    with pytest.raises(ValueError, match="fps"):
        write_video(tmp_path / "x.mp4", np.zeros((4, 8, 8, 3), np.uint8), fps=0)
    assert not (tmp_path / "x.mp4").exists()
