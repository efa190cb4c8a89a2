"""A weights-free video fingerprint for near-duplicate detection: perceptual hashes of sampled frames.

A clip is summarised by ``K`` frames sampled uniformly over its *normalised* time (a clip sped up
or slowed down samples the same moments), each hashed with the 64-bit perceptual hash pHash (the
signs of the 8x8 lowest DCT coefficients of a 32x32 grey thumbnail against their median; Zauner
2010, "Implementation and Benchmarking of Perceptual Image Hash Functions"). Before hashing,
letterbox and pillarbox bars (edge rows and columns dark in every sampled frame) are cut off.

Each frame is hashed twice over:

* the *canonical window*, the central ``centre`` fraction of the picture (corner logos and
  borders stay out of it), plain and mirrored;
* a grid of *search windows* (scales ``scales`` x offsets ``offsets`` of the picture's size), where
  the canonical window of a cropped copy of the clip lands in the original.

:func:`sequence_distance` compares clip ``a`` with ``b`` in both directions: ``a``'s canonical
hashes (plain and mirrored) against each search window of ``b`` (one window for the whole clip:
a crop is the same in every frame). For one window, each sampled frame's smallest Hamming
distance to the other clip's frames within ``window`` samples (time warping: a speed change is
never exact) is averaged over frames and both orders. The distance is the smallest over windows,
mirroring and directions, in hash bits: 0 for the same picture, ~32 for unrelated ones.

Example:
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> clip = rng.integers(0, 255, (8, 48, 64, 3), dtype=np.uint8)
    >>> a, b = fingerprint_frames(clip), fingerprint_frames(clip[:, :, ::-1])  # b is mirrored
    >>> sequence_distance(a, b)
    0.0
"""

from __future__ import annotations

import functools
import os
from dataclasses import dataclass

import numpy as np

FINGERPRINT_VERSION = "phash-seq/1"


@dataclass(frozen=True)
class FingerprintConfig:
    """How clips are fingerprinted (recorded with every dedup run).

    Attributes:
        frames: frames sampled uniformly over the clip's normalised time.
        centre: side of the canonical window, as a fraction of the letterbox-free picture.
        scales: sides of the search windows (a crop keeping a fraction ``f`` of the picture puts the
            cropped clip's canonical window at side ``centre * f`` in the original: 0.6-0.7 covers
            crops of up to ~15%).
        offsets: shifts of the search windows' centres, as fractions of the picture (both axes).
        bar_level: an edge row or column whose brightest pixel, over every sampled frame, is
            below this grey level (0-255) is a letterbox bar and is cut off.
        analysis_width: frames are downscaled to this width first (speed only).
    """

    frames: int = 16
    centre: float = 0.7
    scales: tuple[float, ...] = (0.6, 0.65, 0.7)
    offsets: tuple[float, ...] = (-0.075, -0.0375, 0.0, 0.0375, 0.075)
    bar_level: int = 40
    analysis_width: int = 160


@dataclass(frozen=True)
class Fingerprint:
    """Hashes of one clip: ``hashes``/``mirrored`` uint64 ``(K,)`` of the canonical window,
    ``windows`` uint64 ``(W, K)`` of the search windows; ``crop`` the content box (analysis pixels)."""

    hashes: np.ndarray
    mirrored: np.ndarray
    windows: np.ndarray
    crop: tuple[int, int, int, int]  # (top, bottom, left, right)

    def descriptor(self, mirrored: bool = False) -> np.ndarray:
        """float32 (64 K,) unit vector of the canonical hashes' bits as +-1, frame after frame: the
        inner product of two is 1 - 2 x (their frame-aligned Hamming distance) / (64 K), so nearest
        neighbours by it are the candidates for :func:`sequence_distance`."""
        bits = hash_bits(self.mirrored if mirrored else self.hashes).astype(np.float32).ravel() * 2 - 1
        return bits / np.sqrt(bits.size)


def hash_bits(h: np.ndarray) -> np.ndarray:
    """uint64 (...,) -> uint8 (..., 64) bits, most significant first."""
    h = np.asarray(h, dtype=np.uint64)
    return np.unpackbits(h.astype(">u8").view(np.uint8).reshape(*h.shape, 8), axis=-1)


def phash(grey: np.ndarray) -> int:
    """64-bit pHash of a grey image (any size): DCT of a 32x32 area-resized thumbnail, the 8x8
    lowest frequencies, each bit = coefficient above the median of the 64 (first bit most significant)."""
    import cv2

    thumb = cv2.resize(np.ascontiguousarray(grey, dtype=np.float32), (32, 32), interpolation=cv2.INTER_AREA)
    low = cv2.dct(thumb)[:8, :8].ravel()  # (64,)
    return int(np.packbits(low > np.median(low)).view(">u8")[0])


@functools.lru_cache(maxsize=1)
def _dct_rows() -> np.ndarray:
    """The first 8 rows of the orthonormal 32-point DCT-II matrix (what ``cv2.dct`` computes), (8, 32)."""
    n = np.arange(32)
    m = np.cos(np.pi * (2 * n[None, :] + 1) * np.arange(8)[:, None] / 64) * np.sqrt(2 / 32)
    m[0] /= np.sqrt(2)
    return m.astype(np.float64)


def phash_batch(thumbs: np.ndarray) -> np.ndarray:
    """:func:`phash` of many 32x32 float thumbnails ``(N, 32, 32)`` at once -> uint64 ``(N,)``."""
    d = _dct_rows()
    low = (d @ thumbs.astype(np.float64) @ d.T).reshape(len(thumbs), 64)  # (N, 8, 8) -> (N, 64)
    bits = low > np.median(low, axis=1, keepdims=True)
    return np.packbits(bits, axis=1).view(">u8")[:, 0].astype(np.uint64)


def _thumb(img: np.ndarray) -> np.ndarray:
    import cv2

    img = img if img.dtype == np.float32 else img.astype(np.float32)
    return cv2.resize(img, (32, 32), interpolation=cv2.INTER_AREA)


def content_box(greys: np.ndarray, bar_level: int) -> tuple[int, int, int, int]:
    """(top, bottom, left, right) of the picture inside letterbox/pillarbox bars of ``greys`` (K, H, W).

    An edge row/column is a bar when its brightest pixel over all frames is below ``bar_level``;
    at most 35% of a dimension is cut from each side (a dark scene is not a bar).
    """
    peak = greys.max(axis=0)  # (H, W)
    rows, cols = peak.max(axis=1) >= bar_level, peak.max(axis=0) >= bar_level

    def span(mask: np.ndarray) -> tuple[int, int]:
        n, idx = mask.size, np.flatnonzero(mask)
        if idx.size == 0:
            return 0, n
        lo, hi = int(idx[0]), int(idx[-1]) + 1
        lim = int(0.35 * n)
        return (lo if lo <= lim else 0), (hi if n - hi <= lim else n)

    (top, bottom), (left, right) = span(rows), span(cols)
    return top, bottom, left, right


def sample_positions(num_frames: int, k: int) -> np.ndarray:
    """Indices of ``k`` frames at the middles of ``k`` equal spans of normalised time."""
    return np.minimum(((np.arange(k) + 0.5) / k * num_frames).astype(int), num_frames - 1)


def _window(img: np.ndarray, side: float, dy: float, dx: float) -> np.ndarray:
    """The window of side ``side`` (fraction of the image) centred at (0.5 + dy, 0.5 + dx), clamped
    inside; edges floored/ceiled so that a centred window is mirror-symmetric to the pixel."""
    h, w = img.shape

    def edges(n: int, d: float) -> tuple[int, int]:
        half = side * n / 2
        c = min(max((0.5 + d) * n, half), n - half)
        return int(np.floor(c - half + 1e-6)), int(np.ceil(c + half - 1e-6))

    (y0, y1), (x0, x1) = edges(h, dy), edges(w, dx)
    return img[y0:max(y1, y0 + 1), x0:max(x1, x0 + 1)]


def fingerprint_sampled(picked: np.ndarray, cfg: FingerprintConfig | None = None) -> Fingerprint:
    """Fingerprint already-sampled frames, uint8 ``(K, H, W, 3)``."""
    import cv2

    cfg = cfg or FingerprintConfig()
    h, w = picked.shape[1:3]
    aw = min(cfg.analysis_width, w)
    ah = max(8, round(h * aw / w))
    greys = np.stack([cv2.cvtColor(cv2.resize(np.ascontiguousarray(f), (aw, ah), interpolation=cv2.INTER_AREA),
                                   cv2.COLOR_RGB2GRAY) for f in picked])  # (K, ah, aw)
    top, bottom, left, right = content_box(greys, cfg.bar_level)
    pics = greys[:, top:bottom, left:right].astype(np.float32)  # (K, h', w')
    canon = np.stack([_thumb(_window(g, cfg.centre, 0.0, 0.0)) for g in pics])  # (K, 32, 32)
    hashes, mirrored = phash_batch(canon), phash_batch(canon[:, :, ::-1])  # the mirrored thumbnail
    grid = [(s, dy, dx) for s in cfg.scales for dy in cfg.offsets for dx in cfg.offsets]
    windows = phash_batch(np.stack([_thumb(_window(g, s, dy, dx)) for s, dy, dx in grid for g in pics]))
    return Fingerprint(hashes, mirrored, windows.reshape(len(grid), len(pics)), (top, bottom, left, right))


def fingerprint_frames(frames: np.ndarray, cfg: FingerprintConfig | None = None) -> Fingerprint:
    """Fingerprint decoded frames, uint8 ``(T, H, W, 3)`` (``cfg.frames`` of them are sampled)."""
    cfg = cfg or FingerprintConfig()
    frames = np.asarray(frames)
    if frames.ndim != 4 or frames.shape[0] == 0:
        raise ValueError(f"frames must be (T, H, W, 3) with T >= 1, got shape {frames.shape}")
    return fingerprint_sampled(frames[sample_positions(frames.shape[0], cfg.frames)], cfg)


def sampled_frames(path: str | os.PathLike, k: int) -> np.ndarray:
    """Decode only what is needed for ``k`` frames sampled over normalised time: uint8 ``(k, H, W, 3)``."""
    from skyloom.video import VideoError, iter_frames, probe_video

    n = probe_video(path).num_frames
    if n <= 0:  # a header without a frame count: count by decoding
        n = sum(1 for _ in iter_frames(path))
    want = sample_positions(max(n, 1), k)
    wanted = set(want.tolist())
    keep: dict[int, np.ndarray] = {}
    last = None
    for i, f in enumerate(iter_frames(path)):
        last = f
        if i in wanted:
            keep[i] = f
        if i >= want[-1]:
            break
    if last is None:
        raise VideoError(f"{path}: no decodable frames")
    return np.stack([keep.get(int(i), last) for i in want])  # a file shorter than its header repeats its last frame


def fingerprint_file(path: str | os.PathLike, cfg: FingerprintConfig | None = None) -> Fingerprint:
    """Fingerprint a video file (decodes up to its last sampled frame, keeps only the sampled ones)."""
    cfg = cfg or FingerprintConfig()
    return fingerprint_sampled(sampled_frames(path, cfg.frames), cfg)


_POP8 = np.array([bin(i).count("1") for i in range(256)], dtype=np.uint8)


def hamming(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Pairwise Hamming distances of uint64 hashes: ``a`` (..., M) x ``b`` (..., N) -> (..., M, N)."""
    x = np.bitwise_xor(a[..., :, None], b[..., None, :])
    if hasattr(np, "bitwise_count"):  # NumPy >= 2.0
        return np.bitwise_count(x).astype(np.int64)
    return _POP8[x.view(np.uint8)].reshape(*x.shape, 8).sum(-1, dtype=np.int64)


@functools.lru_cache(maxsize=64)
def _band(m: int, n: int, window: int) -> np.ndarray:
    """bool (m, n): column j is within ``window`` samples of row i (rows and columns rescaled to one time axis)."""
    c = (np.arange(m) + 0.5) * n / m - 0.5
    j = np.arange(n)
    return (j[None, :] >= np.floor(c)[:, None] - window) & (j[None, :] <= np.ceil(c)[:, None] + window)


_FAR = np.int64(1 << 20)


def _warped(d: np.ndarray, window: int) -> np.ndarray:
    """``d`` (..., M, N) -> (...,): each row's min within the band, and each column's, averaged."""
    m, n = d.shape[-2:]
    rows = np.where(_band(m, n, window), d, _FAR).min(-1).mean(-1)
    cols = np.where(_band(m, n, window), d, _FAR).min(-2).mean(-1) if m == n else \
        np.where(_band(n, m, window), np.swapaxes(d, -1, -2), _FAR).min(-1).mean(-1)
    return 0.5 * (rows + cols)


def sequence_distance(a: Fingerprint, b: Fingerprint, window: int = 1) -> float:
    """Time-warp tolerant distance of two fingerprints in hash bits (0 = same picture, ~32 = unrelated);
    the smallest over search windows, mirroring and the two directions (see the module docstring)."""
    best = np.inf
    for x, y in ((a, b), (b, a)):
        canon = np.stack([x.hashes, x.mirrored])  # (2, Kx)
        d = hamming(canon[:, None, :], y.windows[None])  # (2, W, Kx, Ky)
        best = min(best, float(_warped(d, window).min()))
    return best
