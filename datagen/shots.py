"""Probe a source video and split it into shots and clips in one streaming decode pass.

Shot boundaries come from PySceneDetect's detectors (``ContentDetector``, threshold 27 as in
video2dataset, or ``AdaptiveDetector``, adaptive threshold 3.0 as in Open-Sora), fed with frames
downscaled to ``analysis_width`` (PySceneDetect's CLI downscales to >= 256 px wide too). Each shot
is cut into consecutive clips of ``clip_seconds`` (a final remainder of at least
``min_clip_seconds`` becomes a shorter clip; shorter shots give no clip).

The split is streaming: a clip window is final as soon as the decoder is past its end by more than
the detector's look-back (``event_buffer_length``), so only about one clip's frames are held in
memory, whatever the source length (bounded memory for long videos).

Example:
    >>> cfg = ShotConfig(clip_seconds=1.0, min_clip_seconds=0.5)
    >>> s = ShotSplitter(cfg, fps=10.0)
    >>> [(w.start, w.end) for w in s.windows_for_shot(0, 25)]
    [(0, 10), (10, 20), (20, 25)]
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Literal

import numpy as np

from skyloom.datagen.sources import SourceRejected
from skyloom.video import VideoError, VideoInfo, probe_video

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class ShotConfig:
    """Shot detection and clip cutting.

    Attributes:
        detector: ``content`` (PySceneDetect ContentDetector) or ``adaptive`` (AdaptiveDetector).
        threshold: ContentDetector threshold (27 = PySceneDetect default, video2dataset).
        adaptive_threshold: AdaptiveDetector threshold (3.0 = default, Open-Sora).
        min_scene_len_s: shortest shot the detector may produce (PySceneDetect default 15 frames,
            0.6 s at 25 fps).
        analysis_width: frames are downscaled to this width for detection and filters.
        clip_seconds: target clip length; long shots are cut into clips of this length.
        min_clip_seconds: a shot remainder (or a whole shot) shorter than this gives no clip.
        max_clips_per_shot: keep at most this many clips of a shot (0 = all).
        decode_threads: decoder threads per source (1 suits one Ray task per CPU; 0 = FFmpeg's auto).
    """

    detector: Literal["content", "adaptive"] = "content"
    threshold: float = 27.0
    adaptive_threshold: float = 3.0
    min_scene_len_s: float = 0.6
    analysis_width: int = 256
    clip_seconds: float = 2.0
    min_clip_seconds: float = 1.0
    max_clips_per_shot: int = 0
    decode_threads: int = 1


@dataclass(frozen=True)
class Window:
    """One clip window in source frame indices ``[start, end)``, inside shot ``shot``."""

    shot: int
    clip: int
    start: int
    end: int
    shot_start: int


def probe_source(path: str | os.PathLike, max_pixels: int = 0) -> VideoInfo:
    """Probe with :func:`skyloom.video.probe_video`; failures become :class:`SourceRejected`.

    Reasons: ``empty file``, ``no video stream`` (audio-only or data), ``truncated video``
    (an mp4 whose index is missing), ``not a video`` (anything else unreadable).
    """
    try:
        info = probe_video(path, max_pixels=max_pixels)  # a header over max_pixels is not decoded
    except VideoError as e:
        msg = str(e)
        if "empty file" in msg:
            raise SourceRejected("empty file", msg) from None
        if "no video stream" in msg:
            raise SourceRejected("no video stream", msg) from None
        cut = mp4_truncation(path)
        if cut:
            raise SourceRejected("truncated video", f"{path}: {cut}") from None
        raise SourceRejected("not a video", msg) from None
    if info.fps <= 0:
        raise SourceRejected("not a video", f"{path}: video stream has no frame rate")
    cut = mp4_truncation(path)  # a cut-short mp4 whose index survived (faststart) still probes fine
    if cut:
        raise SourceRejected("truncated video", f"{path}: {cut}")
    return info


def mp4_truncation(path: str | os.PathLike) -> str:
    """Why an ISO-BMFF (mp4/mov) file looks cut short, or ``""`` if it does not (or is no mp4).

    Walks the top-level boxes: a box running past the end of the file, or a file with media data
    but no ``moov`` index, is a truncated download.
    """
    import struct

    size = os.path.getsize(path)
    boxes: list[bytes] = []
    with open(path, "rb") as f:
        pos = 0
        while pos + 8 <= size:
            f.seek(pos)
            n, kind = struct.unpack(">I4s", f.read(8))
            if n == 1 and pos + 16 <= size:
                n = struct.unpack(">Q", f.read(8))[0]
            elif n == 0:
                n = size - pos
            if n < 8 or not kind.isalnum():
                break
            boxes.append(kind)
            if pos + n > size:
                return (f"mp4 box {kind.decode(errors='replace')!r} at byte {pos} needs {n} bytes, "
                        f"file ends after {size - pos}")
            pos += n
    if boxes and boxes[0] == b"ftyp" and b"moov" not in boxes:
        return "mp4 without a 'moov' index (download cut short)"
    return ""


def make_detector(cfg: ShotConfig, fps: float):
    """A fresh PySceneDetect detector for one source."""
    from scenedetect import AdaptiveDetector, ContentDetector

    min_len = max(1, round(cfg.min_scene_len_s * fps))
    if cfg.detector == "content":
        return ContentDetector(threshold=cfg.threshold, min_scene_len=min_len)
    if cfg.detector == "adaptive":
        return AdaptiveDetector(adaptive_threshold=cfg.adaptive_threshold, min_scene_len=min_len)
    raise ValueError(f"shots.detector: {cfg.detector!r} is not one of 'content', 'adaptive'")


class ShotSplitter:
    """Feed frames in order; get back the clip windows that are final.

    Args:
        cfg: shot settings.
        fps: source frame rate (for seconds -> frames).
    """

    def __init__(self, cfg: ShotConfig, fps: float) -> None:
        from scenedetect import FrameTimecode

        self._tc = FrameTimecode
        self.cfg = cfg
        self.fps = fps
        self.detector = make_detector(cfg, fps)
        # Cuts can be reported up to event_buffer_length frames in the past.
        self.margin = int(self.detector.event_buffer_length) + 2
        self.clip_len = max(1, round(cfg.clip_seconds * fps))
        self.min_len = max(1, round(cfg.min_clip_seconds * fps))
        self.shot = 0
        self.shot_start = 0
        self.next_start = 0  # first frame of the next window of the current shot
        self.clips_in_shot = 0
        self.shots: list[tuple[int, int]] = []  # (start, end) of every finished shot
        self.last = -1

    def _window(self, start: int, end: int) -> Window | None:
        if self.cfg.max_clips_per_shot and self.clips_in_shot >= self.cfg.max_clips_per_shot:
            return None
        w = Window(self.shot, self.clips_in_shot, start, end, self.shot_start)
        self.clips_in_shot += 1
        return w

    def windows_for_shot(self, start: int, end: int) -> list[Window]:
        """All windows of a shot ``[start, end)`` (used for a whole shot at once)."""
        self.shot_start, self.next_start, self.clips_in_shot = start, start, 0
        return self._close_shot(end)

    def _close_shot(self, end: int) -> list[Window]:
        out = []
        while self.next_start + self.clip_len <= end:
            if w := self._window(self.next_start, self.next_start + self.clip_len):
                out.append(w)
            self.next_start += self.clip_len
        if end - self.next_start >= self.min_len and (w := self._window(self.next_start, end)):
            out.append(w)
        self.shots.append((self.shot_start, end))
        self.shot += 1
        self.shot_start = self.next_start = end
        self.clips_in_shot = 0
        return out

    def push(self, index: int, frame_bgr: np.ndarray) -> list[Window]:
        """Process frame ``index`` (uint8 BGR ``(h, w, 3)``); return windows now final."""
        self.last = index
        out: list[Window] = []
        for cut in self.detector.process_frame(self._tc(index, fps=self.fps), frame_bgr):
            c = int(cut.frame_num)
            if c > self.shot_start:
                out += self._close_shot(c)
        safe_end = index + 1 - self.margin
        while self.next_start + self.clip_len <= safe_end:
            if w := self._window(self.next_start, self.next_start + self.clip_len):
                out.append(w)
            self.next_start += self.clip_len
        return out

    def finish(self) -> list[Window]:
        """End of stream: flush the detector and close the last shot."""
        out: list[Window] = []
        if self.last < 0:
            return out
        for cut in self.detector.post_process(self._tc(self.last, fps=self.fps)):
            c = int(cut.frame_num)
            if c > self.shot_start:
                out += self._close_shot(c)
        if self.last + 1 > self.shot_start:
            out += self._close_shot(self.last + 1)
        return out


def fit_size(width: int, height: int, short_side: int, aspect: float | None = None) -> tuple[int, int, int, int]:
    """Output size for a transcode: scale so the short side is ``short_side``, optional centre crop.

    Returns ``(scaled_w, scaled_h, out_w, out_h)``: resize the frame to the scaled size, then crop
    the centre ``out_w x out_h`` (equal to the scaled size when ``aspect`` is None). Even sizes
    (H.264 yuv420p); never upscales beyond the source.
    """
    src_aspect = width / height
    target = aspect or src_aspect
    if target >= 1:
        out_h = min(short_side, height)
        out_w = out_h * target
    else:
        out_w = min(short_side, width)
        out_h = out_w / target
    f = max(out_w / width, out_h / height)
    sw, sh = max(2, round(width * f / 2) * 2), max(2, round(height * f / 2) * 2)
    ow, oh = min(sw, max(2, round(out_w / 2) * 2)), min(sh, max(2, round(out_h / 2) * 2))
    return sw, sh, ow, oh


def decode_frames(path: str | os.PathLike, threads: int = 1) -> Iterator[tuple[int, object]]:
    """Yield ``(index, av.VideoFrame)`` in order; a decode error ends the stream (as a truncation)."""
    import av

    container = av.open(str(path))
    try:
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        stream.codec_context.thread_count = threads
        i = 0
        try:
            for frame in container.decode(stream):
                yield i, frame
                i += 1
        except (av.error.FFmpegError, ValueError) as e:  # damaged data after some frames
            logger.debug("%s: decode stopped at frame %d (%s)", path, i, e)
    finally:
        container.close()
