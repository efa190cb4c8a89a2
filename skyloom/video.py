"""Video I/O on PyAV: decode to uint8 ``(T, H, W, C)``, encode browser-playable H.264.

PyAV wheels bundle FFmpeg with libx264, so the mp4 files written here (H.264, yuv420p,
``+faststart``) play in every browser. Every failure to read becomes a :class:`VideoError`
naming the file and what is wrong.

Example:
    >>> import numpy as np, tempfile, os
    >>> frames = np.zeros((8, 32, 32, 3), np.uint8)
    >>> path = os.path.join(tempfile.mkdtemp(), "x.mp4")
    >>> _ = write_video(path, frames, fps=8)
    >>> read_video(path).shape
    (8, 32, 32, 3)
"""

from __future__ import annotations

import contextlib
import ctypes
import hashlib
import json
import os
from dataclasses import asdict, dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np

from skyloom.errors import UserError

DEFAULT_CRF = 18


class VideoError(UserError, ValueError):
    """A video file that cannot be read (missing, empty, corrupt, no video stream, ...)."""


@dataclass(frozen=True)
class VideoInfo:
    """What :func:`probe_video` finds in a file."""

    path: str
    width: int
    height: int
    fps: float
    num_frames: int
    duration_s: float
    codec: str
    pix_fmt: str
    has_audio: bool
    metadata: dict[str, str]

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _open(path: str | os.PathLike, headers_only: bool = False):
    import av

    p = Path(path)
    if not p.exists():
        raise VideoError(f"{p}: no such file")
    if p.is_dir():
        raise VideoError(f"{p}: is a directory, not a video file")
    if p.stat().st_size == 0:
        raise VideoError(f"{p}: empty file (0 bytes)")
    try:
        # headers_only: FFmpeg's stream-info probe decodes the first frame(s) to learn the pixel
        # format; a header claiming 16000x16000 then allocates and decodes ~400 MB. skip_frame=all
        # reads the sizes from the headers without decoding anything.
        opts = {"stream_options": [{"skip_frame": "all"}]} if headers_only else {}
        container = av.open(str(p), mode="r", **opts)
    except Exception as e:  # noqa: BLE001 - av raises many error types (InvalidDataError, ...); re-raised as VideoError
        raise VideoError(f"{p}: not a readable video ({type(e).__name__}: {e})") from None
    if not container.streams.video:
        container.close()
        raise VideoError(f"{p}: has no video stream (audio-only or data file)")
    return container


def probe_video(path: str | os.PathLike, count_frames: bool = False, max_pixels: int = 0) -> VideoInfo:
    """Read a video's header: size, fps, frame count, duration, codec.

    Args:
        path: video file.
        count_frames: decode-free packet count when the container gives no frame count.
        max_pixels: when > 0, first read the sizes without decoding anything; a file whose frames
            claim more pixels than this is described from its headers alone (``pix_fmt`` empty)
            and never decoded, so the caller can reject it cheaply.
    """
    if max_pixels > 0:
        light = _probe(_open(path, headers_only=True), path, count_frames=False)
        if light.width * light.height > max_pixels:
            return light
    return _probe(_open(path), path, count_frames)


def _probe(container, path: str | os.PathLike, count_frames: bool) -> VideoInfo:
    try:
        stream = container.streams.video[0]
        ctx = stream.codec_context
        rate = stream.average_rate or stream.base_rate or stream.guessed_rate
        fps = float(rate) if rate else 0.0
        n = int(stream.frames or 0)
        duration = 0.0
        if stream.duration is not None and stream.time_base is not None:
            duration = float(stream.duration * stream.time_base)
        elif container.duration is not None:
            duration = container.duration / 1_000_000
        if (n == 0 or count_frames) and stream.time_base is not None:
            n = sum(1 for pkt in container.demux(stream) if pkt.size > 0)
        if n == 0 and fps and duration:
            n = int(round(duration * fps))
        if not duration and fps and n:
            duration = n / fps
        width, height = int(ctx.width or 0), int(ctx.height or 0)
        if width <= 0 or height <= 0:
            raise VideoError(f"{path}: video stream has no frame size")
        return VideoInfo(
            path=str(path), width=width, height=height, fps=fps, num_frames=n, duration_s=duration,
            codec=str(ctx.name), pix_fmt=str(ctx.format.name if ctx.format else ""),
            has_audio=bool(container.streams.audio), metadata=dict(container.metadata or {}),
        )
    finally:
        container.close()


_INTERPOLATIONS = ("area", "linear")


def conform_clip(frames: np.ndarray, *, height: int | None = None, width: int | None = None,
                 num_frames: int | None = None, interpolation: str = "area") -> np.ndarray:
    """Conform a clip to an item's shape: its first ``num_frames`` frames, each resized to ``height x width``.

    The one way evaluation makes two clips comparable: a reference or ground-truth clip to a generated
    video's size, a submitted video to its item, a calibration row to the ground truth, a diffusers
    pipeline's output to the suite item, a physics candidate to the probe's resolution. Frames are
    resized with OpenCV ``INTER_AREA`` (pixel-area averaging, the right filter for the usual downscale),
    or ``INTER_LINEAR`` where a protocol says so (``interpolation="linear"``: the physics metrics bring a
    candidate up to the probe's size as Physics-IQ's code does); the frame count is never padded. A clip
    that already conforms is returned as is (no copy).

    Args:
        frames: uint8 (T, H, W, 3).
        height, width: the target frame size; None (either) keeps the size.
        num_frames: keep the first ``num_frames`` frames; None keeps all.
        interpolation: ``"area"`` (default) or ``"linear"``.

    Returns:
        uint8 (min(T, num_frames), height, width, 3).

    Example:
        >>> conform_clip(np.zeros((8, 64, 48, 3), np.uint8), height=32, width=24, num_frames=4).shape
        (4, 32, 24, 3)
    """
    if interpolation not in _INTERPOLATIONS:
        raise ValueError(f"interpolation {interpolation!r}; valid: {', '.join(_INTERPOLATIONS)}")
    v = np.asarray(frames)
    if num_frames is not None and v.shape[0] > num_frames:
        v = v[:num_frames]
    if height is None or width is None or v.shape[1:3] == (int(height), int(width)):
        return v
    import cv2

    h, w = int(height), int(width)
    flag = cv2.INTER_AREA if interpolation == "area" else cv2.INTER_LINEAR
    return np.stack([cv2.resize(np.ascontiguousarray(f), (w, h), interpolation=flag) for f in v])  # (T, h, w, 3)


def _resize(frame: np.ndarray, size: tuple[int, int] | None) -> np.ndarray:
    if size is None or frame.shape[:2] == tuple(size):
        return frame
    import cv2

    h, w = size
    interp = cv2.INTER_AREA if (h < frame.shape[0] and w < frame.shape[1]) else cv2.INTER_LINEAR
    return cv2.resize(frame, (w, h), interpolation=interp)


def iter_frames(path: str | os.PathLike, *, start: int = 0, stride: int = 1, max_frames: int | None = None,
                size: tuple[int, int] | None = None, fps: float | None = None):
    """Yield uint8 RGB frames ``(H, W, 3)`` one at a time (bounded memory).

    Args:
        start: index of the first decoded frame to keep.
        stride: keep every ``stride``-th frame after ``start``.
        max_frames: stop after this many frames.
        size: ``(height, width)`` to resize to (area filter down, bilinear up).
        fps: resample to this frame rate by nearest timestamp (overrides ``stride``).
    """
    if stride < 1:
        raise ValueError(f"stride must be >= 1, got {stride}")
    container = _open(path)
    kept = 0
    try:
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        src_rate = float(stream.average_rate or stream.guessed_rate or 0) or None
        next_t = None
        try:
            for i, frame in enumerate(container.decode(stream)):
                if i < start:
                    continue
                if fps is not None and src_rate:
                    t = (i - start) / src_rate
                    if next_t is None:
                        next_t = 0.0
                    if t + 0.5 / src_rate < next_t:
                        continue
                    next_t += 1.0 / fps
                elif (i - start) % stride:
                    continue
                arr = frame.to_ndarray(format="rgb24")
                yield _resize(arr, size)
                kept += 1
                if max_frames is not None and kept >= max_frames:
                    return
        except VideoError:
            raise
        except Exception as e:  # noqa: BLE001 - a decoder error mid-file: keep the frames read, else VideoError
            if kept == 0:
                raise VideoError(f"{path}: cannot decode ({type(e).__name__}: {e})") from None
            # A truncated file: keep the frames decoded before the damage.
            return
    finally:
        container.close()


def read_video(path: str | os.PathLike, *, num_frames: int | None = None, start: int = 0, stride: int = 1,
               size: tuple[int, int] | None = None, fps: float | None = None) -> np.ndarray:
    """Decode a video into a uint8 array ``(T, H, W, 3)``.

    Raises:
        VideoError: missing/empty/corrupt file, no video stream, or no decodable frame.
    """
    frames = list(iter_frames(path, start=start, stride=stride, max_frames=num_frames, size=size, fps=fps))
    if not frames:
        raise VideoError(f"{path}: no decodable frames (start={start}, stride={stride})")
    return np.stack(frames)  # (T, H, W, 3)


def sample_indices(num_available: int, num_frames: int, mode: str = "uniform", seed: int = 0) -> np.ndarray:
    """Frame indices to sample: ``uniform`` spread, ``consecutive`` from 0, or ``random`` consecutive window."""
    if num_available <= 0:
        raise ValueError("video has no frames")
    if mode == "uniform":
        return np.linspace(0, num_available - 1, num_frames).round().astype(int)
    if mode == "consecutive":
        return np.arange(num_frames) % num_available
    if mode == "random":
        rng = np.random.default_rng(seed)
        s = int(rng.integers(0, max(1, num_available - num_frames + 1)))
        return (s + np.arange(num_frames)) % num_available
    raise ValueError(f"unknown sampling mode {mode!r}; valid: uniform, consecutive, random")


M_PERTURB = -6  # glibc mallopt: fill every malloc'd block with a fixed byte


@contextlib.contextmanager
def _fixed_heap_fill():
    """Make libx264's output independent of stale heap contents.

    x264 (through PyAV) reads some heap memory it never wrote: the same frames encoded in a fresh
    process and in one that rendered with MuJoCo/Mesa first gave different bytes. glibc's
    ``M_PERTURB`` fills each new allocation with a fixed byte while encoding, which makes the
    output bit-exact across processes. A no-op where mallopt is missing (non-glibc).
    """
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):
        yield
        return
    mallopt(M_PERTURB, 0x5A)
    try:
        yield
    finally:
        mallopt(M_PERTURB, 0)


def write_video(path: str | os.PathLike, frames: np.ndarray, fps: float, *, crf: int = DEFAULT_CRF,
                preset: str = "medium", metadata: dict[str, Any] | None = None) -> Path:
    """Encode uint8 ``(T, H, W, 3)`` frames as H.264 yuv420p mp4 that browsers play.

    Odd sizes are padded to even (yuv420p needs it) by repeating the last row/column. The file
    is written atomically. ``metadata`` (e.g. seed and sampler settings) is stored in the mp4
    ``comment`` tag as JSON and read back by :func:`read_metadata`.
    """
    import av

    from skyloom.fsutil import atomic_path

    arr = np.asarray(frames)
    if arr.ndim != 4 or arr.shape[-1] != 3:
        raise ValueError(f"frames must be (T, H, W, 3), got shape {arr.shape}")
    if arr.dtype != np.uint8:
        raise ValueError(f"frames must be uint8, got {arr.dtype}")
    if arr.shape[0] == 0:
        raise ValueError("cannot write a video with 0 frames")
    if fps <= 0:
        raise ValueError(f"fps must be > 0, got {fps}")
    T, H, W, _ = arr.shape
    pad_h, pad_w = H % 2, W % 2
    if pad_h or pad_w:
        arr = np.pad(arr, ((0, 0), (0, pad_h), (0, pad_w), (0, 0)), mode="edge")
    rate = Fraction(fps).limit_denominator(1001)
    with atomic_path(path, suffix=".mp4") as tmp, _fixed_heap_fill():
        container = av.open(str(tmp), mode="w", format="mp4", options={"movflags": "+faststart"})
        try:
            if metadata:
                container.metadata["comment"] = json.dumps(metadata, sort_keys=True)
            stream = container.add_stream("libx264", rate=rate)
            stream.width, stream.height = arr.shape[2], arr.shape[1]
            stream.pix_fmt = "yuv420p"
            # Deterministic output: one thread, fixed options (same frames -> same bytes).
            stream.options = {"crf": str(crf), "preset": preset, "threads": "1"}
            stream.codec_context.thread_count = 1
            for t in range(T):
                frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(arr[t]), format="rgb24")
                for packet in stream.encode(frame):
                    container.mux(packet)
            for packet in stream.encode():
                container.mux(packet)
        finally:
            container.close()
    return Path(path)


def encode_round_trip(frames: np.ndarray, fps: float, *, crf: int = DEFAULT_CRF) -> np.ndarray:
    """``frames`` as they come back after :func:`write_video` and :func:`read_video` (H.264, ``crf``).

    Every generated or submitted video is stored through :func:`write_video` before it is scored;
    evaluation references that must be compared on equal terms (the physics probes' ground truth,
    their perturbed re-simulations) go through the same encoding.
    """
    import tempfile

    with tempfile.TemporaryDirectory(prefix="skyloom-rt-") as d:
        path = write_video(Path(d) / "clip.mp4", frames, fps, crf=crf)
        out = read_video(path)
    return out[:, : np.asarray(frames).shape[1], : np.asarray(frames).shape[2]]  # (T, H, W, 3); odd-size pad removed


def read_metadata(path: str | os.PathLike) -> dict[str, Any]:
    """Return the JSON metadata stored by :func:`write_video` (empty dict if none)."""
    info = probe_video(path)
    raw = info.metadata.get("comment")
    if not raw:
        return {}
    try:
        return json.loads(raw)
    except json.JSONDecodeError:
        return {"comment": raw}


def frames_sha256(source: str | os.PathLike | bytes) -> str:
    """sha256 of a video's decoded frames: every frame's planes in decode order, with their size.

    The content hash a clip keeps in ``meta["frames_sha256"]`` (written at ingest and render):
    H.264 decoding is bit-exact, so a re-muxed or re-tagged file of the same clip has the same
    value while a file with flipped bytes or another clip's frames does not (a hash of the file
    alone cannot tell these apart, and "it decodes" proves nothing). Raises :class:`VideoError`
    when the file does not decode.
    """
    import io

    import av

    h = hashlib.sha256()
    src = io.BytesIO(source) if isinstance(source, bytes) else str(source)
    try:
        with av.open(src, mode="r") as container:
            stream = container.streams.video[0]
            stream.codec_context.thread_count = 1
            n = 0
            for frame in container.decode(stream):
                fmt = frame.format.name
                # yuv420p (every skyloom clip): the decoder's own planes, (H * 3/2, W); others as RGB
                arr = frame.to_ndarray() if fmt == "yuv420p" else frame.to_ndarray(format="rgb24")
                h.update(f"{fmt}:{frame.width}x{frame.height}:{arr.shape};".encode())
                h.update(np.ascontiguousarray(arr).tobytes())
                n += 1
    except (av.error.FFmpegError, ValueError, IndexError, OSError) as e:
        raise VideoError(f"{source if not isinstance(source, bytes) else 'video bytes'}: does not decode "
                         f"({type(e).__name__}: {e})") from None
    if n == 0:
        raise VideoError(f"{source if not isinstance(source, bytes) else 'video bytes'}: no decodable frame")
    return h.hexdigest()
