"""Dense optical flow between two frames: one definition of the flow parameters for every stage.

Curation scores motion with it (``datagen.filters``), the heuristic captioner reads the direction
of motion from it (``captioning.heuristic``) and the warping-error metric warps frames with it
(``eval.functional.temporal``). Two OpenCV methods, neither needs weights: DIS (Kroeger et al. 2016) at a
named speed/quality preset, and Farnebäck (2003) with the parameter set below, OpenCV's documented
example values (3-level pyramid halving each level, 15 px window, 3 iterations, degree-5 expansion
with sigma 1.2).

Example:
    >>> import numpy as np
    >>> a = np.zeros((32, 32), np.uint8); a[8:16, 8:16] = 255
    >>> b = np.roll(a, 2, axis=1)  # the square moves 2 px right
    >>> round(float(dense_flow(a, b, "farneback")[8:16, 8:16, 0].mean()))
    2
"""

from __future__ import annotations

from typing import Any

import numpy as np

FLOW_METHODS = ("dis", "farneback")
DIS_PRESETS = ("ultrafast", "fast", "medium")
# cv2.calcOpticalFlowFarneback(prev, next, flow, pyr_scale, levels, winsize, iterations, poly_n, poly_sigma, flags)
FARNEBACK = {"pyr_scale": 0.5, "levels": 3, "winsize": 15, "iterations": 3, "poly_n": 5, "poly_sigma": 1.2, "flags": 0}


def _grey(img: np.ndarray) -> np.ndarray:
    import cv2

    img = np.ascontiguousarray(img)
    return cv2.cvtColor(img, cv2.COLOR_RGB2GRAY) if img.ndim == 3 else img


def dense_flow(a: np.ndarray, b: np.ndarray, method: str = "dis", preset: str = "medium",
               cache: dict[str, Any] | None = None) -> np.ndarray:
    """Flow from frame ``a`` to ``b``: float32 (H, W, 2), pixels (dx, dy) per pixel of ``a``.

    Args:
        a, b: uint8 frames, RGB (H, W, 3) or grey (H, W).
        method: ``dis`` or ``farneback``.
        preset: DIS speed/quality preset (``ultrafast``, ``fast``, ``medium``); ignored by Farnebäck.
        cache: a dict to keep the DIS object in across calls (creating one costs more than a small frame).

    Raises:
        ValueError: unknown method or preset (naming the valid ones).
    """
    import cv2

    if method == "farneback":
        return cv2.calcOpticalFlowFarneback(_grey(a), _grey(b), None, **FARNEBACK)
    if method != "dis":
        raise ValueError(f"unknown flow method {method!r}; valid: {', '.join(FLOW_METHODS)}")
    if preset not in DIS_PRESETS:
        raise ValueError(f"unknown DIS preset {preset!r}; valid: {', '.join(DIS_PRESETS)}")
    dis = cache.get(f"dis-{preset}") if cache is not None else None
    if dis is None:
        dis = cv2.DISOpticalFlow_create(getattr(cv2, f"DISOPTICAL_FLOW_PRESET_{preset.upper()}"))
        if cache is not None:
            cache[f"dis-{preset}"] = dis
    return dis.calc(_grey(a), _grey(b), None)
