"""Trivial continuations of a physics probe: what a generator that does nothing, or does the wrong thing, returns.

Each function takes the probe's full reference clip ``ref`` (uint8 (T, H, W, 3), the simulator's
frames) and the number of given frames ``c``, and returns a full clip of the same shape whose first
``c`` frames are the given ones. They are the *degenerate gate* of probe admission
(:mod:`skyloom.eval.harness.probes`: every admitted probe must score each of :data:`DEGENERATE`
below a perturbed re-simulation on ``physics_iq``), the rungs of ``skyloom eval ladder``
(:mod:`skyloom.eval.harness.ladder`) and the trajectory metric's test ladder.

Example:
    >>> import numpy as np
    >>> ref = np.zeros((8, 16, 16, 3), np.uint8); ref[:, 4:8, 4:8] = 200
    >>> make("last_frozen", ref, 3).shape
    (8, 16, 16, 3)
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

GREY = 128
STOP_AFTER = 3  # ``stopped``: the true continuation for this many frames, then held (frame 6 with c = 4)


def _join(ref: np.ndarray, c: int, cont: np.ndarray) -> np.ndarray:
    return np.concatenate([ref[:c], np.asarray(cont, np.uint8)])  # (T, H, W, 3)


def grey(ref: np.ndarray, c: int, **_: Any) -> np.ndarray:
    """A uniform grey continuation (what the untrained step-0 model returns)."""
    return _join(ref, c, np.full_like(ref[c:], GREY))


def black(ref: np.ndarray, c: int, **_: Any) -> np.ndarray:
    return _join(ref, c, np.zeros_like(ref[c:]))


def fade(ref: np.ndarray, c: int, **_: Any) -> np.ndarray:
    """The last given frame fading linearly to uniform grey over the continuation."""
    n = len(ref) - c
    a = (np.arange(1, n + 1, dtype=np.float64) / n)[:, None, None, None]  # (n, 1, 1, 1)
    last = ref[c - 1].astype(np.float64)[None]
    return _join(ref, c, np.rint((1 - a) * last + a * GREY))


def blur(ref: np.ndarray, c: int, **_: Any) -> np.ndarray:
    """The true continuation under a Gaussian blur of sigma = max(H, W) / 16 (right motion, no detail)."""
    import cv2

    sigma = max(ref.shape[1:3]) / 16.0
    return _join(ref, c, np.stack([cv2.GaussianBlur(np.ascontiguousarray(f), (0, 0), sigma) for f in ref[c:]]))


def first_frozen(ref: np.ndarray, c: int, **_: Any) -> np.ndarray:
    """The clip's first frame held over the continuation."""
    return _join(ref, c, np.repeat(ref[:1], len(ref) - c, axis=0))


def last_frozen(ref: np.ndarray, c: int, **_: Any) -> np.ndarray:
    """The last given frame held over the continuation (the ladder's ``frozen``)."""
    return _join(ref, c, np.repeat(ref[c - 1:c], len(ref) - c, axis=0))


def shuffled(ref: np.ndarray, c: int, seed: int = 0, **_: Any) -> np.ndarray:
    """The true continuation's frames in a seeded random order (never the identity)."""
    n = len(ref) - c
    perm = np.random.default_rng(seed).permutation(n)
    if n > 1 and (perm == np.arange(n)).all():
        perm = np.roll(perm, 1)
    return _join(ref, c, ref[c:][perm])


def reversed_(ref: np.ndarray, c: int, **_: Any) -> np.ndarray:
    """The true continuation played backwards."""
    return _join(ref, c, ref[c:][::-1])


def noise(ref: np.ndarray, c: int, seed: int = 0, **_: Any) -> np.ndarray:
    """Uniform random pixels."""
    return _join(ref, c, np.random.default_rng(seed).integers(0, 256, ref[c:].shape, dtype=np.uint8))


def slowed(ref: np.ndarray, c: int, **_: Any) -> np.ndarray:
    """The true continuation at half speed from the seam: frame k shows the truth at c − 1 + ⌊(k + 2)/2⌋."""
    idx = [min(len(ref) - 1, c - 1 + (k + 2) // 2) for k in range(len(ref) - c)]
    return _join(ref, c, ref[idx])


def stopped(ref: np.ndarray, c: int, **_: Any) -> np.ndarray:
    """The true continuation for :data:`STOP_AFTER` frames, then held (everything stops)."""
    idx = [min(len(ref) - 1, c + min(k, STOP_AFTER - 1)) for k in range(len(ref) - c)]
    return _join(ref, c, ref[idx])


def teleported(ref: np.ndarray, c: int, objects: list[dict[str, Any]] | None = None, tol: int = 40,
               **_: Any) -> np.ndarray:
    """The true continuation whose objects jump a third of the frame sideways as the model takes over.

    Objects are found by their ground-truth colour (``objects``: ``gt["objects"]`` with ``rgb``;
    L∞ ``tol``, dilated by one pixel); in every continuation frame their pixels are inpainted
    (``cv2.inpaint``, Telea) and pasted W/3 to the right (wrapping): the motion is the truth's, the
    place is not. Without objects the whole continuation is shifted.
    """
    import cv2

    from skyloom.eval.functional.trajectory import colour_masks

    cont = ref[c:].copy()
    mid, dx = 0, ref.shape[2] // 3  # the jump: at the seam
    if not objects:
        cont[mid:] = np.roll(cont[mid:], dx, axis=2)
        return _join(ref, c, cont)
    mask = np.zeros(cont.shape[:3], bool)
    for o in objects:
        if "rgb" in o:
            mask |= colour_masks(cont, o["rgb"], tol)
    for t in range(mid, len(cont)):
        m = cv2.dilate(mask[t].astype(np.uint8), np.ones((3, 3), np.uint8)) > 0
        f = cv2.inpaint(np.ascontiguousarray(cont[t]), m.astype(np.uint8), 3, cv2.INPAINT_TELEA)
        moved_m, moved_f = np.roll(m, dx, axis=1), np.roll(cont[t], dx, axis=1)
        f[moved_m] = moved_f[moved_m]
        cont[t] = f
    return _join(ref, c, cont)


BUILDERS: dict[str, Callable[..., np.ndarray]] = {
    "grey": grey, "black": black, "fade": fade, "blur": blur, "first_frozen": first_frozen,
    "last_frozen": last_frozen, "shuffled": shuffled, "reversed": reversed_, "teleported": teleported,
    "noise": noise, "slowed": slowed, "stopped": stopped,
}
# The degenerate gate: every admitted probe scores each of these below a perturbed re-simulation.
DEGENERATE = ("grey", "black", "fade", "blur", "first_frozen", "last_frozen", "shuffled", "reversed", "teleported",
              "noise")


def make(name: str, ref: np.ndarray, c: int, *, seed: int = 0,
         objects: list[dict[str, Any]] | None = None) -> np.ndarray:
    """The continuation ``name`` (one of :data:`BUILDERS`) of ``ref`` given its first ``c`` frames."""
    if name not in BUILDERS:
        raise ValueError(f"unknown continuation {name!r}; valid: {', '.join(BUILDERS)}")
    ref = np.asarray(ref)
    if not 1 <= c < len(ref):
        raise ValueError(f"cond frames {c} must be in [1, {len(ref)})")
    return BUILDERS[name](ref, c, seed=seed, objects=objects)


__all__ = ["BUILDERS", "DEGENERATE", "make"]
