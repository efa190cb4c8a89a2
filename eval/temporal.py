"""Pure functions for temporal quality: VBench consistency and flickering, EvalCrafter's CLIP-Temp,
and the warping error of Lai et al. 2018.

All take one video at a time. Formulas (see also docs/metrics.md):

* VBench subject / background consistency, on L2-normalised frame features f₁..f_T::

      C = 1/(T−1) Σ_{t=2..T} ½ [max(0, cos(f_{t−1}, f_t)) + max(0, cos(f₁, f_t))]

* VBench temporal flickering, on uint8 frames::

      S = (255 − 1/(T−1) Σ_t mean|F_t − F_{t+1}|) / 255           (1 for a static video)

* CLIP-Temp (EvalCrafter): ``1/(T−1) Σ_t cos(f_t, f_{t+1})``.

* Warping error (Lai et al., "Learning Blind Video Temporal Consistency", ECCV 2018), frames in
  [0, 1]::

      E = 1/(T−1) Σ_t Σ_i M_t(i) ‖V_t(i) − W(V_{t+1})(i)‖² / Σ_i M_t(i)

  W(V_{t+1})(x) = V_{t+1}(x + F(x)) with F the dense flow t → t+1 (:func:`skyloom.flow.dense_flow`:
  OpenCV DIS at its medium preset, or Farnebäck; no weights). M_t masks occlusions, with B the flow t+1 → t sampled at x + F(x) (B_w):
  occluded if ‖F + B_w‖² > 0.01 (‖F‖² + ‖B_w‖²) + 0.5, or on a motion boundary
  ‖∇F‖² > 0.01 ‖F‖² + 0.002 (forward differences). Lower is better.

Example:
    >>> import numpy as np
    >>> temporal_flickering(np.zeros((4, 8, 8, 3), np.uint8))
    1.0
"""

from __future__ import annotations

import math

import numpy as np

from skyloom.flow import FLOW_METHODS, dense_flow  # noqa: F401 - FLOW_METHODS: metrics check flow names with it


def _norm(f: np.ndarray) -> np.ndarray:
    f = np.asarray(f, np.float64)
    if f.ndim != 2 or f.shape[0] < 2:
        raise ValueError(f"frame features must be (T, D) with T >= 2, got shape {f.shape}")
    return f / np.maximum(np.linalg.norm(f, axis=1, keepdims=True), 1e-12)


def vbench_consistency_per_frame(features: np.ndarray) -> np.ndarray:
    """Per-frame terms ½[max(0,cos(f_{t−1},f_t)) + max(0,cos(f₁,f_t))] for t = 2..T, (T−1,)."""
    f = _norm(features)  # (T, D)
    prev = np.maximum(0.0, np.sum(f[:-1] * f[1:], axis=1))  # (T-1,)
    first = np.maximum(0.0, f[1:] @ f[0])  # (T-1,)
    return 0.5 * (prev + first)


def vbench_consistency(features: np.ndarray) -> float:
    """VBench subject/background consistency of one video's frame features (T, D); in [0, 1]."""
    return float(vbench_consistency_per_frame(features).mean())


def clip_temp(features: np.ndarray) -> float:
    """EvalCrafter CLIP-Temp: mean cosine of consecutive frame embeddings (T, D)."""
    f = _norm(features)
    return float(np.sum(f[:-1] * f[1:], axis=1).mean())


def _check_frames(frames: np.ndarray, what: str = "frames") -> np.ndarray:
    v = np.asarray(frames)
    if v.ndim != 4 or v.shape[-1] != 3 or v.shape[0] < 2:
        raise ValueError(f"{what}: expected uint8 (T, H, W, 3) with T >= 2, got shape {v.shape}")
    if v.dtype != np.uint8:
        raise ValueError(f"{what}: expected uint8, got {v.dtype}")
    return v


def temporal_flickering(frames: np.ndarray) -> float:
    """VBench temporal flickering of uint8 (T, H, W, 3) frames; 1 = no change at all."""
    v = _check_frames(frames).astype(np.int16)
    mad = np.abs(np.diff(v, axis=0)).reshape(v.shape[0] - 1, -1).mean(axis=1)  # (T-1,)
    return float((255.0 - mad.mean()) / 255.0)


def warp(img: np.ndarray, flow: np.ndarray) -> np.ndarray:
    """Sample ``img`` (H, W, C) float at x + flow(x) (bilinear, border replicated)."""
    import cv2

    h, w = flow.shape[:2]
    gx, gy = np.meshgrid(np.arange(w, dtype=np.float32), np.arange(h, dtype=np.float32))
    out = cv2.remap(np.ascontiguousarray(img, dtype=np.float32), gx + flow[..., 0], gy + flow[..., 1],
                    interpolation=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    return out.reshape(img.shape)


def occlusion_mask(flow_fw: np.ndarray, flow_bw: np.ndarray) -> np.ndarray:
    """Lai et al.'s occlusion + motion-boundary mask on frame t's grid; True = occluded.

    Args:
        flow_fw: flow t → t+1, (H, W, 2).
        flow_bw: flow t+1 → t, (H, W, 2) on frame t+1's grid.
    """
    f = np.asarray(flow_fw, np.float64)
    bw = warp(flow_bw, flow_fw).astype(np.float64)  # (H, W, 2): B sampled at x + F(x)
    mag = lambda u: np.sum(u * u, axis=-1)
    occ = mag(f + bw) > 0.01 * (mag(f) + mag(bw)) + 0.5
    du = np.zeros_like(f)
    dv = np.zeros_like(f)
    du[:, :-1] = f[:, :-1] - f[:, 1:]  # forward differences, last column 0
    dv[:-1, :] = f[:-1, :] - f[1:, :]
    grad = mag(du) + mag(dv)  # ‖∇F‖²
    boundary = grad > 0.01 * mag(f) + 0.002
    return occ | boundary


def warping_error_per_pair(frames: np.ndarray, method: str = "dis") -> np.ndarray:
    """Masked mean squared warping error of each consecutive pair, (T−1,); NaN where all occluded."""
    v = _check_frames(frames)
    x = v.astype(np.float32) / 255.0  # (T, H, W, 3) in [0, 1]
    errs = np.full(v.shape[0] - 1, np.nan)
    for t in range(v.shape[0] - 1):
        fw = dense_flow(v[t], v[t + 1], method)  # (H, W, 2)
        bw = dense_flow(v[t + 1], v[t], method)
        m = ~occlusion_mask(fw, bw)  # (H, W) valid pixels
        if not m.any():
            continue
        diff = x[t] - warp(x[t + 1], fw)  # (H, W, 3)
        errs[t] = float(np.sum(np.sum(diff.astype(np.float64) ** 2, axis=-1)[m]) / m.sum())
    return errs


def warping_error(frames: np.ndarray, method: str = "dis") -> float:
    """Lai et al. warping error of uint8 (T, H, W, 3) frames (mean over valid pairs); lower is better."""
    e = warping_error_per_pair(frames, method)
    ok = e[~np.isnan(e)]
    return float(math.fsum(ok) / len(ok)) if len(ok) else float("nan")
