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

  W(V_{t+1})(x) = V_{t+1}(x + F(x)) with F the dense flow t → t+1 (:func:`skyloom.optical_flow.dense_flow`:
  OpenCV DIS at its medium preset, or Farnebäck; no weights). M_t masks occlusions, with B the flow
  t+1 → t sampled at x + F(x) (B_w):
  occluded if ‖F + B_w‖² > 0.01 (‖F‖² + ‖B_w‖²) + 0.5, or on a motion boundary
  ‖∇F‖² > 0.01 ‖F‖² + 0.002 (forward differences). Lower is better.

Protocols (recorded in every result):

* warping error ``lai2018`` (default) is Lai et al.'s ``evaluate_WarpError.py``: the error of a
  pair is Σ M·(W(V_{t+1}) − V_t)² over the three channels divided by the *three-channel* mask sum
  (a per-channel mean), a fully occluded pair counts 0, the sum is divided by T − 1, and warping
  is the bilinear sampler of FlowNet2's ``Resample2d`` (neighbour indices clamped to the image,
  float32). ``rgb-sum`` is skyloom's earlier variant (squared error summed over RGB per valid
  pixel, i.e. 3× larger; fully occluded pairs skipped; OpenCV ``remap``).
* ``dynamic_degree`` (VBench, Huang et al. 2024) is VBench's rule with OpenCV flow in place of
  RAFT (protocol ``vbench-opencv-<flow>``): VBench first keeps every ``max(1, round(fps/8))``-th
  frame (``DynamicDegree.get_frames``: 30 fps -> every 4th, 25 fps -> every 3rd, 8 fps -> all;
  :func:`vbench_frame_interval`), then per consecutive pair takes the mean of the top 5 % flow
  magnitudes; the video is dynamic when at least round(4·T/16) of the kept frames' pairs exceed
  6·min(H, W)/256 px.
* flickering is scored, as in VBench, only on videos its static filter accepts (protocol
  ``vbench-static``; top 2 % flow magnitudes against 3·min(H, W)/256 px, see
  :func:`vbench_is_static`); ``all`` scores every video.

Example:
    >>> import numpy as np
    >>> temporal_flickering(np.zeros((4, 8, 8, 3), np.uint8))
    1.0
"""

from __future__ import annotations

import math

import numpy as np

from skyloom.errors import InvalidInputError
from skyloom.optical_flow import FLOW_METHODS, dense_flow  # noqa: F401 - FLOW_METHODS: metrics check flow names with it

WARP_PROTOCOLS = ("lai2018", "rgb-sum")


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

    def mag(u: np.ndarray) -> np.ndarray:
        return np.sum(u * u, axis=-1)

    occ = mag(f + bw) > 0.01 * (mag(f) + mag(bw)) + 0.5
    du = np.zeros_like(f)
    dv = np.zeros_like(f)
    du[:, :-1] = f[:, :-1] - f[:, 1:]  # forward differences, last column 0
    dv[:-1, :] = f[:-1, :] - f[1:, :]
    grad = mag(du) + mag(dv)  # ‖∇F‖²
    boundary = grad > 0.01 * mag(f) + 0.002
    return occ | boundary


def warp_resample2d(img: np.ndarray, flow: np.ndarray) -> np.ndarray:
    """FlowNet2's ``Resample2d`` (used by Lai et al.): bilinear sample of ``img`` (H, W, C) at x + flow(x).

    Weights come from the unclamped position, the four neighbour indices are clamped to the image,
    arithmetic in float32 (the CUDA kernel's).
    """
    im = np.asarray(img, np.float32)
    fl = np.asarray(flow, np.float32)
    h, w = fl.shape[:2]
    xf = np.arange(w, dtype=np.float32)[None, :] + fl[..., 0]  # (H, W)
    yf = np.arange(h, dtype=np.float32)[:, None] + fl[..., 1]
    x0, y0 = np.floor(xf), np.floor(yf)
    a, b = (xf - x0)[..., None], (yf - y0)[..., None]  # (H, W, 1)
    xl, xr = np.clip(x0, 0, w - 1).astype(np.int64), np.clip(x0 + 1, 0, w - 1).astype(np.int64)
    yt, yb = np.clip(y0, 0, h - 1).astype(np.int64), np.clip(y0 + 1, 0, h - 1).astype(np.int64)
    one = np.float32(1.0)
    out = (one - a) * (one - b) * im[yt, xl]
    out = out + a * (one - b) * im[yt, xr]
    out = out + (one - a) * b * im[yb, xl]
    out = out + a * b * im[yb, xr]
    return out.astype(np.float32)  # (H, W, C)


def _lai_occlusion(fw: np.ndarray, bw: np.ndarray) -> np.ndarray:
    """Lai et al.'s ``detect_occlusion`` with Resample2d warping and float32 flows; True = occluded."""
    fw32, bw32 = np.asarray(fw, np.float32), np.asarray(bw, np.float32)
    bw_w = warp_resample2d(bw32, fw32)  # (H, W, 2)

    def mag(u: np.ndarray) -> np.ndarray:
        return u[..., 0] ** 2 + u[..., 1] ** 2

    occ = mag(bw_w + fw32) > 0.01 * (mag(bw_w) + mag(fw32)) + 0.5
    du = np.zeros(fw32.shape, np.float64)
    dv = np.zeros(fw32.shape, np.float64)
    du[:, :-1] = fw32[:, :-1] - fw32[:, 1:]
    dv[:-1, :] = fw32[:-1, :] - fw32[1:, :]
    boundary = (du[..., 0] ** 2 + dv[..., 0] ** 2) + (du[..., 1] ** 2 + dv[..., 1] ** 2) > 0.01 * mag(fw32) + 0.002
    return occ | boundary


def pair_flows(frames: np.ndarray, method: str = "dis") -> list[tuple[np.ndarray, np.ndarray]]:
    """(forward t → t+1, backward t+1 → t) flows of each consecutive pair of uint8 frames."""
    v = _check_frames(frames)
    return [(dense_flow(v[t], v[t + 1], method), dense_flow(v[t + 1], v[t], method)) for t in range(len(v) - 1)]


def warping_error_per_pair(frames: np.ndarray, method: str = "dis", protocol: str = "lai2018",
                           flows: list[tuple[np.ndarray, np.ndarray]] | None = None) -> np.ndarray:
    """Warping error of each consecutive pair, (T−1,).

    Args:
        frames: uint8 (T, H, W, 3).
        method: OpenCV flow (``dis`` or ``farneback``) when ``flows`` is not given.
        protocol: ``lai2018`` (per-channel mean, fully occluded pair = 0) or ``rgb-sum``
            (sum over RGB per valid pixel, NaN where all occluded).
        flows: precomputed ``(forward, backward)`` flows per pair (e.g. from another estimator).
    """
    if protocol not in WARP_PROTOCOLS:
        raise InvalidInputError(f"unknown warping-error protocol {protocol!r}; valid: {', '.join(WARP_PROTOCOLS)}")
    v = _check_frames(frames)
    if flows is None:
        flows = pair_flows(v, method)
    if len(flows) != len(v) - 1:
        raise ValueError(f"flows: {len(flows)} pairs for {len(v)} frames (need {len(v) - 1})")
    x = v.astype(np.float32) / np.float32(255.0)  # (T, H, W, 3) in [0, 1]
    errs = np.full(v.shape[0] - 1, np.nan)
    for t, (fw, bw) in enumerate(flows):
        if protocol == "lai2018":
            noc = (~_lai_occlusion(fw, bw)).astype(np.float32)[..., None].repeat(3, axis=-1)  # (H, W, 3)
            diff = (warp_resample2d(x[t + 1], fw) - x[t]) * noc
            n = float(np.sum(noc)) or float(diff.size)  # fully occluded: diff is 0, Lai divides by H·W·3
            errs[t] = float(np.sum(np.square(diff))) / n
            continue
        m = ~occlusion_mask(fw, bw)  # (H, W) valid pixels
        if not m.any():
            continue
        diff = x[t] - warp(x[t + 1], fw)  # (H, W, 3)
        errs[t] = float(np.sum(np.sum(diff.astype(np.float64) ** 2, axis=-1)[m]) / m.sum())
    return errs


def warping_error(frames: np.ndarray, method: str = "dis", protocol: str = "lai2018",
                  flows: list[tuple[np.ndarray, np.ndarray]] | None = None) -> float:
    """Warping error of uint8 (T, H, W, 3) frames; lower is better.

    ``lai2018``: sum over pairs / (T − 1) (Lai et al.); ``rgb-sum``: mean over the pairs that have a
    valid pixel (NaN if none).
    """
    e = warping_error_per_pair(frames, method, protocol, flows)
    if protocol == "lai2018":
        return float(math.fsum(e) / len(e))
    ok = e[~np.isnan(e)]
    return float(math.fsum(ok) / len(ok)) if len(ok) else float("nan")


# -- VBench's motion rules with OpenCV flow ---------------------------------------------------
def top_flow_magnitude(flow: np.ndarray, fraction: float) -> float:
    """Mean of the largest ``int(H·W·fraction)`` flow magnitudes (VBench's ``get_score``)."""
    f = np.asarray(flow, np.float64)
    rad = np.sqrt(f[..., 0] ** 2 + f[..., 1] ** 2).reshape(-1)
    k = max(1, int(rad.size * fraction))
    return float(np.mean(np.sort(rad)[::-1][:k]))


def vbench_frame_interval(fps: float | None) -> int:
    """VBench's dynamic-degree frame step: ``max(1, round(fps / 8))`` (1 when the rate is unknown)."""
    return max(1, round(fps / 8)) if fps else 1


def dynamic_degree(frames: np.ndarray, method: str = "dis", fps: float | None = None) -> tuple[bool, list[float]]:
    """VBench's dynamic-degree rule with OpenCV flow: (is the video dynamic, per-pair top-5 % magnitude px).

    With ``fps`` the frames are first subsampled as VBench's ``get_frames`` does (every
    :func:`vbench_frame_interval`-th frame, from the first). Dynamic when at least ``round(4·T/16)``
    consecutive kept pairs have a top-5 % mean flow magnitude above ``6·min(H, W)/256`` px (VBench
    ``DynamicDegree.set_params``/``check_move``; T counts the kept frames).
    """
    v = _check_frames(frames)[:: vbench_frame_interval(fps)]
    thres, count_num = 6.0 * min(v.shape[1:3]) / 256.0, round(4 * (len(v) / 16.0))
    scores = [top_flow_magnitude(dense_flow(v[t], v[t + 1], method), 0.05) for t in range(len(v) - 1)]
    return sum(s > thres for s in scores) >= count_num, scores


def vbench_is_static(frames: np.ndarray, method: str = "dis") -> bool:
    """VBench's static filter (``static_filter.py``) with OpenCV flow in place of RAFT.

    Pairs: consecutive frames, then (first, last) and (last, first); score = mean of the top 2 %
    flow magnitudes; threshold ``3·min(H, W)/256`` px, ``count_num = round(2·T/16)``. Static when
    at most ``count_num`` consecutive pairs exceed the threshold and neither end-to-end pair exceeds
    ``threshold · count_num · 2``.
    """
    v = _check_frames(frames)
    thres, count_num = 3.0 * min(v.shape[1:3]) / 256.0, round(2 * (len(v) / 16.0))
    pairs = [(v[t], v[t + 1]) for t in range(len(v) - 1)] + [(v[0], v[-1]), (v[-1], v[0])]
    scores = [top_flow_magnitude(dense_flow(a, b, method), 0.02) for a, b in pairs]
    if sum(s > thres for s in scores[:-2]) > count_num:
        return False
    return all(s <= thres * count_num * 2 for s in scores[-2:])
