"""Physics plausibility against simulator ground truth: Physics-IQ's metrics and trajectory checks.

A physics-probe scene is rendered; the model continues its first ``cond_frames`` frames and the
continuation is compared with the simulator's.

**Physics-IQ metrics** (Motamed et al. 2025, arXiv 2501.09038), on motion masks: grey frame,
5×5 Gaussian blur, running-average background (α = 0.3), |frame − background| > 10, 5×5
opening then closing. With masks A (generated) and B (ground truth), (T, H, W) bool:

* spatial IoU = |∨_t A ∧ ∨_t B| / |∨_t A ∨ ∨_t B| (masks max-collapsed over time)
* spatiotemporal IoU = mean_t |A_t ∧ B_t| / |A_t ∨ B_t|
* weighted spatial IoU = Σ min(W_A, W_B) / Σ max(W_A, W_B), W = fraction of frames a pixel moves
* MSE = mean squared pixel error of the frames in [0, 1]

(an empty union counts as IoU 1). Each is normalised by the **physical variance**: the same
metric between the ground truth and a re-simulation of the scene with tiny perturbations of its
initial conditions (``skyloom.datagen.perturb_spec`` + ``skyloom.datagen.render_spec``), which is what Physics-IQ
measures with two real takes. Normalised scores: IoU / IoU_variance and MSE_variance / MSE, each
capped at 1 (as good as physics itself allows); ``physics_iq = 100 · mean`` of the four.

**Trajectory checks** track objects by colour (or a segmentation) in the generated frames:
gravity-consistent acceleration (a quadratic fit of the image-space fall has the acceleration of
the simulator's own trajectory, within a tolerance), no teleporting (no per-frame jump larger than
the ground truth's largest step allows), object permanence (no object vanishes while the ground
truth shows it) and no interpenetration (nothing sinks through the floor line, no two objects
overlap deeper than the ground truth ever does). 2-D heuristics: documented in docs/metrics.md.

Example:
    >>> import numpy as np
    >>> v = np.zeros((8, 32, 32, 3), np.uint8); v[:, 10:14, :] = 200
    >>> physics_iq_raw(v, v)["spatial_iou"]
    1.0
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable
from typing import Any

import numpy as np

from skyloom.eval.features import NO_WEIGHTS
from skyloom.eval.metrics import METRICS, PerItemMetric

log = logging.getLogger(__name__)

ALPHA = 0.3
THRESHOLD = 10
KERNEL = 5
RAW_KEYS = ("spatial_iou", "spatiotemporal_iou", "weighted_spatial_iou", "mse")
PREPROCESSING = {"grey": "cv2 RGB2GRAY", "blur": "Gaussian 5x5", "background": "running average alpha=0.3",
                 "threshold": THRESHOLD, "morphology": "open then close, 5x5", "mse_range": [0, 1]}


# -- Physics-IQ ------------------------------------------------------------------------------
def motion_masks(frames: np.ndarray) -> np.ndarray:
    """Physics-IQ motion masks of uint8 (T, H, W, 3) frames -> bool (T, H, W); frame 0 is empty."""
    import cv2

    v = np.asarray(frames)
    if v.ndim != 4 or v.shape[-1] != 3 or v.dtype != np.uint8:
        raise ValueError(f"frames: expected uint8 (T, H, W, 3), got {v.dtype} {v.shape}")
    kernel = np.ones((KERNEL, KERNEL), np.uint8)
    masks = np.zeros(v.shape[:3], bool)
    bg = None
    for t, f in enumerate(v):
        g = cv2.GaussianBlur(cv2.cvtColor(f, cv2.COLOR_RGB2GRAY), (KERNEL, KERNEL), 0).astype(np.float32)
        if bg is None:
            bg = g.copy()
            continue
        m = (np.abs(g - bg) > THRESHOLD).astype(np.uint8)
        m = cv2.morphologyEx(cv2.morphologyEx(m, cv2.MORPH_OPEN, kernel), cv2.MORPH_CLOSE, kernel)
        masks[t] = m.astype(bool)
        cv2.accumulateWeighted(g, bg, ALPHA)  # bg = (1 - α) bg + α g
    return masks


def _iou(a: np.ndarray, b: np.ndarray) -> float:
    union = np.logical_or(a, b).sum()
    return 1.0 if union == 0 else float(np.logical_and(a, b).sum() / union)


def spatial_iou(ma: np.ndarray, mb: np.ndarray) -> float:
    """IoU of the masks max-collapsed over time."""
    return _iou(ma.any(axis=0), mb.any(axis=0))


def spatiotemporal_iou(ma: np.ndarray, mb: np.ndarray) -> float:
    """Mean over frames of the per-frame IoU."""
    return float(np.mean([_iou(a, b) for a, b in zip(ma, mb)]))


def weighted_spatial_iou(ma: np.ndarray, mb: np.ndarray) -> float:
    """Σ min(W_A, W_B) / Σ max(W_A, W_B) with W the fraction of frames each pixel moves."""
    wa, wb = ma.mean(axis=0), mb.mean(axis=0)  # (H, W)
    den = np.maximum(wa, wb).sum()
    return 1.0 if den == 0 else float(np.minimum(wa, wb).sum() / den)


def physics_iq_raw(generated: np.ndarray, reference: np.ndarray, start: int = 0) -> dict[str, float]:
    """The four Physics-IQ metrics of a generated vs ground-truth clip, on frames ``start:``."""
    g, r = np.asarray(generated), np.asarray(reference)
    if g.shape != r.shape:
        raise ValueError(f"generated clip {g.shape} and ground truth {r.shape} differ in shape")
    ma, mb = motion_masks(g)[start:], motion_masks(r)[start:]
    diff = g[start:].astype(np.float64) / 255.0 - r[start:].astype(np.float64) / 255.0
    return {"spatial_iou": spatial_iou(ma, mb), "spatiotemporal_iou": spatiotemporal_iou(ma, mb),
            "weighted_spatial_iou": weighted_spatial_iou(ma, mb), "mse": float(np.mean(diff ** 2))}


def normalise(raw: dict[str, float], variance: dict[str, float], eps: float = 1e-12) -> dict[str, float]:
    """skyloom's per-scene score: each metric relative to the physical variance (1 = as close as a
    re-simulation), capped at 1; ``physics_iq = 100 · mean`` of the four.

    A degenerate variance is handled explicitly, never as NaN: when the re-simulation shares no
    motion with the ground truth (variance IoU 0, e.g. a collision whose perturbed take diverges),
    that IoU is used raw (normalised by 1) and its key is listed in ``degenerate``; a zero variance
    MSE (a re-simulation identical to the truth) gives ``mse_norm = 1`` only for an exact copy.
    """
    out: dict[str, Any] = {}
    degenerate = []
    for k in RAW_KEYS[:3]:
        if variance[k] > eps:
            out[f"{k}_norm"] = min(1.0, raw[k] / variance[k])
        else:
            out[f"{k}_norm"] = min(1.0, raw[k])
            degenerate.append(k)
    if raw["mse"] <= eps:
        out["mse_norm"] = 1.0
    elif variance["mse"] <= eps:
        out["mse_norm"], _ = 0.0, degenerate.append("mse")
    else:
        out["mse_norm"] = min(1.0, variance["mse"] / raw["mse"])
    out["physics_iq"] = 100.0 * float(np.mean([out[f"{k}_norm"] for k in RAW_KEYS]))
    out["degenerate"] = degenerate
    return out


def physical_variance(spec: dict[str, Any], cond_frames: int, scale: float = 0.01, takes: int = 1, seed: int = 0,
                      reference: np.ndarray | None = None, render: Callable | None = None,
                      perturb: Callable | None = None) -> dict[str, float]:
    """Physics-IQ metrics between the ground truth and ``takes`` perturbed re-simulations (mean), and
    under ``"physics_iq"`` Physics-IQ's own variance terms (continuations, :func:`piq_view`) against
    the first re-simulation, the second take.

    Args:
        spec: the scene spec (``gt["spec"]``).
        cond_frames: frames given to the model; metrics use frames ``cond_frames:``.
        scale, seed: perturbation size and seed (``skyloom.datagen.perturb_spec(spec, scale, seed + k)``).
        reference: the ground-truth frames if already rendered.
        render, perturb: injectable for tests; default ``skyloom.datagen.render_spec`` / ``perturb_spec``.
    """
    if render is None or perturb is None:
        from skyloom import datagen  # lazy: heavy (MuJoCo) and owned by another stage

        render = render or datagen.render_spec
        perturb = perturb or datagen.perturb_spec
    ref = reference if reference is not None else render(spec)[0]
    takes_frames = [render(perturb(spec, scale, seed + k))[0] for k in range(takes)]
    vals = [physics_iq_raw(f, ref, start=cond_frames) for f in takes_frames]
    out: dict[str, Any] = {k: float(np.mean([v[k] for v in vals])) for k in RAW_KEYS}
    view = piq_view(ref[cond_frames:], ref[cond_frames:], takes_frames[0][cond_frames:])  # take 2 = first re-simulation
    out["physics_iq"] = {k: v for k, v in piq_view_summary(view).items() if k == "frames" or k.startswith("variance_")}
    return out


# -- Physics-IQ's own pipeline (protocol "physics-iq") ----------------------------------------
# Motamed et al.'s code (google-deepmind/physics-IQ-benchmark, code/): binary_mask_generator.py,
# calculate_and_write_metrics_to_csv.py (process_view) and calculate_iq_score.py.
PIQ_PROTOCOL = {"protocol": "physics-iq", "masks": "continuation only; background updated first "
                "(accumulateWeighted alpha=0.3), rounded to uint8, |gray - bg| > 10, open+close 5x5",
                "downscale": "frames and masks resized to (W//4, H//4) (cv2 INTER_LINEAR), masks > 127",
                "mse": "per frame, frames/255", "score": "calculate_iq_score over the set of scenes, per-frame "
                "values rounded to 4 dp, variances rounded to 4 dp (spatial 5 dp), clipped to [0, 100], 2 dp"}
PIQ_KEYS = ("mse", "spatiotemporal_iou", "spatial_iou", "weighted_spatial_iou")


def piq_masks(frames: np.ndarray, threshold: int = THRESHOLD) -> np.ndarray:
    """Physics-IQ's ``generate_mask`` on uint8 (T, H, W, 3) RGB frames -> uint8 (T, H, W) in {0, 255}.

    Frame 0 initialises the background and gets an empty mask; for every later frame the running
    average is updated *first* (``accumulateWeighted``, α = 0.3), rounded to uint8
    (``convertScaleAbs``), and the pixel moves where |blurred grey − background| > ``threshold``.
    """
    import cv2

    v = np.asarray(frames)
    if v.ndim != 4 or v.shape[-1] != 3 or v.dtype != np.uint8 or len(v) < 1:
        raise ValueError(f"frames: expected uint8 (T, H, W, 3), got {v.dtype} {v.shape}")
    kernel = np.ones((KERNEL, KERNEL), np.uint8)

    def grey(f: np.ndarray) -> np.ndarray:
        return cv2.GaussianBlur(cv2.cvtColor(np.ascontiguousarray(f), cv2.COLOR_RGB2GRAY), (KERNEL, KERNEL), 0)

    avg = grey(v[0]).astype("float")
    out = np.zeros(v.shape[:3], np.uint8)
    for t in range(1, len(v)):
        g = grey(v[t])
        cv2.accumulateWeighted(g, avg, ALPHA)
        diff = cv2.absdiff(g, cv2.convertScaleAbs(avg))
        _, b = cv2.threshold(diff, threshold, 255, cv2.THRESH_BINARY)
        out[t] = cv2.morphologyEx(cv2.morphologyEx(b, cv2.MORPH_OPEN, kernel), cv2.MORPH_CLOSE, kernel)
    return out


def _piq_down(frames: np.ndarray, size: tuple[int, int]) -> list[np.ndarray]:
    import cv2

    return [cv2.resize(np.ascontiguousarray(f), size) for f in frames]


def _piq_iou(a: np.ndarray, b: np.ndarray) -> float:
    union = np.logical_or(a, b).sum()
    return 1.0 if union == 0 else float(np.logical_and(a, b).sum() / union)


def _piq_weighted(masks: list[np.ndarray]) -> np.ndarray:
    return np.sum(masks, axis=0, dtype=np.uint16) / len(masks)


def piq_view(generated: np.ndarray, real: np.ndarray, real2: np.ndarray | None = None) -> dict[str, Any]:
    """Physics-IQ's ``process_view`` on continuations (frames after the conditioning only).

    Args:
        generated, real, real2: uint8 (T, H, W, 3) continuations: the model's, the ground truth
            (take 1) and a second take of the same experiment (take 2; here a perturbed
            re-simulation) for the physical variance.

    Returns:
        ``mse``/``spatiotemporal_iou`` per-frame lists and ``spatial_iou``/``weighted_spatial_iou``
        of generated vs take 1; with ``real2``, ``variance_*`` the same between the two takes.
    """
    g, r = np.asarray(generated), np.asarray(real)
    if g.shape != r.shape:
        raise ValueError(f"generated continuation {g.shape} and ground truth {r.shape} differ in shape")
    size = (r.shape[2] // 4, r.shape[1] // 4)  # (W/4, H/4) as Physics-IQ
    if min(size) < 1:
        raise ValueError(f"frames {r.shape[1]}x{r.shape[2]} are too small for Physics-IQ's 1/4 downscale")

    def frames(v: np.ndarray) -> list[np.ndarray]:
        return [f / 255.0 for f in _piq_down(v, size)]

    def masks(v: np.ndarray) -> list[np.ndarray]:
        return [(m > 127).astype(np.uint8) for m in _piq_down(piq_masks(v), size)]

    def mse(a: list[np.ndarray], b: list[np.ndarray]) -> list[float]:
        return [float(np.mean((x.astype(np.float32) - y.astype(np.float32)) ** 2)) for x, y in zip(a, b)]

    def spatial(ms: list[np.ndarray]) -> np.ndarray:
        return (np.max(ms, axis=0) > 0).astype(np.uint8) * 255

    fr, fg, mr, mg = frames(r), frames(g), masks(r), masks(g)
    wr, wg = _piq_weighted(mr), _piq_weighted(mg)
    union = np.maximum(wr, wg)
    out: dict[str, Any] = {
        "mse": mse(fr, fg), "spatiotemporal_iou": [_piq_iou(a, b) for a, b in zip(mr, mg)],
        "spatial_iou": _piq_iou(spatial(mr), spatial(mg)),
        "weighted_spatial_iou": 1.0 if not (union > 0).any() else
        float(np.sum(np.minimum(wr, wg)[union > 0]) / np.sum(union[union > 0]))}
    if real2 is not None:
        r2 = np.asarray(real2)
        if r2.shape != r.shape:
            raise ValueError(f"second take {r2.shape} and ground truth {r.shape} differ in shape")
        f2, m2 = frames(r2), masks(r2)
        w2 = _piq_weighted(m2)
        u = np.maximum(wr, w2)
        out.update({"variance_mse": mse(fr, f2),
                    "variance_spatiotemporal_iou": [_piq_iou(a, b) for a, b in zip(mr, m2)],
                    "variance_spatial_iou": _piq_iou(spatial(mr), spatial(m2)),
                    "variance_weighted_spatial_iou": 1.0 if np.sum(u) == 0 else
                    float(np.sum(np.minimum(wr, w2)) / np.sum(u))})
    return out


def _r4(xs: list[float]) -> list[float]:
    return [round(float(x), 4) for x in xs]  # calculate_iq_score's parse_list_of_floats


def piq_view_summary(view: dict[str, Any]) -> dict[str, float]:
    """A view's numbers as ``calculate_iq_score`` uses them: per-frame lists rounded to 4 dp and
    averaged (``frames`` = their length), scalars as they are."""
    out = {"frames": float(len(view["mse"]))}
    for k in ("mse", "spatiotemporal_iou", "variance_mse", "variance_spatiotemporal_iou"):
        if k in view:
            out[k] = float(np.mean(_r4(view[k])))
    for k in ("spatial_iou", "weighted_spatial_iou", "variance_spatial_iou", "variance_weighted_spatial_iou"):
        if k in view:
            out[k] = float(view[k])
    return out


def _piq_view_variance(summaries: list[dict[str, float]]) -> dict[str, float]:
    """One view's physical variance over the scenes (frame-weighted for per-frame metrics), unrounded."""
    if not summaries:
        raise ValueError("physics-iq: no scenes to compute the physical variance over")
    w = np.array([s["frames"] for s in summaries])

    def frame_mean(k: str) -> float:  # Physics-IQ's explode().mean(): every frame weighs the same
        return float(np.sum([s[k] * n for s, n in zip(summaries, w)]) / w.sum())

    return {"mse": frame_mean("variance_mse"), "spatiotemporal_iou": frame_mean("variance_spatiotemporal_iou"),
            "spatial_iou": float(np.mean([s["variance_spatial_iou"] for s in summaries])),
            "weighted_spatial_iou": float(np.mean([s["variance_weighted_spatial_iou"] for s in summaries]))}


def _piq_round_variance(var: dict[str, float]) -> dict[str, float]:
    return {k: round(v, 5 if k == "spatial_iou" else 4) for k, v in var.items()}


def piq_dataset_variance(summaries: list[dict[str, float]]) -> dict[str, float]:
    """Physics-IQ's physical variance over a set of single-view scenes, rounded as calculate_iq_score."""
    return _piq_round_variance(_piq_view_variance(summaries))


def _check_piq_variance(var: dict[str, float]) -> None:
    bad = [k for k in ("spatiotemporal_iou", "spatial_iou", "weighted_spatial_iou") if not var[k] > 0]
    if bad:
        raise ValueError(f"physics-iq: the physical variance of {', '.join(bad)} is 0 over these scenes (the second "
                         "takes share no motion with the ground truth), so Physics-IQ's ratio is undefined; use "
                         "more or less chaotic scenes or a smaller perturbation")


def piq_contribution(summary: dict[str, float], var: dict[str, float]) -> float:
    """One scene's term of Physics-IQ's score: 100·[(st/V_st + sp/V_sp + w/V_w)/3 − mse + V_mse].

    The mean of these over the scenes is Physics-IQ's score before clipping (single-view scenes of
    equal length); :func:`piq_score` clips and rounds it.
    """
    _check_piq_variance(var)
    return 100.0 * ((summary["spatiotemporal_iou"] / var["spatiotemporal_iou"] + summary["spatial_iou"] /
                     var["spatial_iou"] + summary["weighted_spatial_iou"] / var["weighted_spatial_iou"]) / 3
                    - (summary["mse"] - var["mse"]))


def piq_score(scenarios: list[list[dict[str, Any]]]) -> dict[str, float]:
    """Physics-IQ's ``calculate_iq_score`` over scenarios, each a list of views (:func:`piq_view` dicts).

    Returns ``score`` (clipped to [0, 100], 2 dp, as published), ``unclipped`` and the variance.
    """
    if not scenarios or not all(scenarios):
        raise ValueError("physics-iq: need at least one scenario with at least one view")
    rows = [[piq_view_summary(v) for v in views] for views in scenarios]
    nviews = len(rows[0])
    if any(len(r) != nviews for r in rows):
        raise ValueError("physics-iq: every scenario needs the same number of views")

    def concat_mean(r: list[dict[str, Any]], k: str) -> float:
        return float(np.sum([v[k] * v["frames"] for v in r]) / np.sum([v["frames"] for v in r]))

    total = {"mse": float(np.mean([concat_mean(r, "mse") for r in rows])),
             "spatiotemporal_iou": float(np.mean([concat_mean(r, "spatiotemporal_iou") for r in rows])),
             "spatial_iou": float(np.mean([np.mean([r[j]["spatial_iou"] for r in rows]) for j in range(nviews)])),
             "weighted_spatial_iou": float(np.mean([np.mean([r[j]["weighted_spatial_iou"] for r in rows])
                                                    for j in range(nviews)]))}
    per_view_var = [_piq_view_variance([r[j] for r in rows]) for j in range(nviews)]
    var = _piq_round_variance({k: float(np.mean([pv[k] for pv in per_view_var])) for k in PIQ_KEYS})
    _check_piq_variance(var)
    raw = 100.0 * ((total["spatiotemporal_iou"] / var["spatiotemporal_iou"] + total["spatial_iou"] / var["spatial_iou"]
                    + total["weighted_spatial_iou"] / var["weighted_spatial_iou"]) / 3 - (total["mse"] - var["mse"]))
    return {"score": round(max(min(raw, 100.0), 0.0), 2), "unclipped": raw,
            **{f"total_{k}": v for k, v in total.items()}, **{f"variance_{k}": v for k, v in var.items()}}


# -- trajectories ----------------------------------------------------------------------------
def colour_masks(frames: np.ndarray, rgb: Any, tol: int = 40) -> np.ndarray:
    """Pixels within ``tol`` (L∞) of colour ``rgb`` (0..255 or 0..1 floats): bool (T, H, W)."""
    c = np.asarray(rgb, np.float64)
    if c.max() <= 1.0:
        c = c * 255.0
    return np.all(np.abs(np.asarray(frames, np.int16) - c.astype(np.int16)) <= tol, axis=-1)


def track(masks: np.ndarray, min_area: int = 3) -> dict[str, np.ndarray]:
    """Centroid (T, 2) as (x, y) px (NaN when absent), area (T,), bbox (T, 4), visible (T,)."""
    T = masks.shape[0]
    cen, bbox = np.full((T, 2), np.nan), np.full((T, 4), np.nan)
    area = masks.reshape(T, -1).sum(axis=1)
    visible = area >= min_area
    for t in np.flatnonzero(visible):
        ys, xs = np.nonzero(masks[t])
        cen[t] = xs.mean(), ys.mean()
        bbox[t] = xs.min(), ys.min(), xs.max() + 1, ys.max() + 1
    return {"centroid": cen, "area": area.astype(np.float64), "bbox": bbox, "visible": visible}


def track_objects(frames: np.ndarray, objects: list[dict[str, Any]], tol: int = 40) -> dict[str, dict[str, np.ndarray]]:
    """Track each ``{"name", "rgb"}`` object (e.g. ``gt["objects"]``) by colour."""
    return {o["name"]: track(colour_masks(frames, o["rgb"], tol)) for o in objects}


def fall_segment(y: np.ndarray, tol: float = 1.0) -> np.ndarray:
    """Indices of the free fall: the first contiguous visible run, cut before the object first
    comes within ``tol`` px of its lowest point (the impact frame is excluded; image y grows down)."""
    idx = np.flatnonzero(np.isfinite(y))
    if len(idx) == 0:
        return idx
    run = idx[: np.argmax(np.diff(np.append(idx, idx[-1] + 2)) > 1) + 1]  # first contiguous run
    low = np.flatnonzero(y[run] >= y[run].max() - tol)[0]
    return run[:low]


def fit_acceleration(y: np.ndarray, fps: float) -> tuple[float, int]:
    """Image-space vertical acceleration (px/s², down positive) of the fall segment, and its length."""
    seg = fall_segment(np.asarray(y, np.float64))
    if len(seg) < 4:
        return math.nan, len(seg)
    t = seg / fps
    a2, _, _ = np.polyfit(t, y[seg], 2)  # y = a2 t² + a1 t + a0 -> acceleration 2·a2
    return float(2.0 * a2), len(seg)


def gravity_check(y: np.ndarray, fps: float, expected_accel: float | None = None, rel_tol: float = 0.5,
                  min_accel: float = 1.0) -> dict[str, Any]:
    """Does the fall accelerate like gravity? ``expected_accel`` (px/s²) from the simulator's track.

    Passes when the fitted acceleration is within ``rel_tol`` of the expected one (or, without
    one, at least ``min_accel`` px/s² downwards). A constant-velocity fall fits ~0 and fails.
    """
    a, n = fit_acceleration(y, fps)
    if not math.isfinite(a):  # no falling segment: a failure if the simulator's object falls
        return {"passed": False if expected_accel else None, "accel": None, "expected": expected_accel, "frames": n}
    ok = (abs(a - expected_accel) <= rel_tol * abs(expected_accel)) if expected_accel else (a >= min_accel)
    return {"passed": bool(ok), "accel": a, "expected": expected_accel, "frames": n}


def teleport_check(centroid: np.ndarray, max_step: float) -> dict[str, Any]:
    """No jump between consecutive visible frames (per frame of gap) larger than ``max_step`` px."""
    idx = np.flatnonzero(np.isfinite(centroid[:, 0]))
    if len(idx) < 2:
        return {"passed": None, "max_step": None, "limit": max_step}
    steps = np.linalg.norm(np.diff(centroid[idx], axis=0), axis=1) / np.diff(idx)
    return {"passed": bool(steps.max() <= max_step), "max_step": float(steps.max()), "limit": float(max_step)}


def permanence_check(visible: np.ndarray, expected_visible: np.ndarray) -> dict[str, Any]:
    """The object is detected in every frame where the ground truth shows it."""
    missing = np.flatnonzero(np.asarray(expected_visible, bool) & ~np.asarray(visible, bool))
    return {"passed": bool(len(missing) == 0), "missing_frames": missing.tolist()}


def interpenetration_check(tracks: dict[str, dict[str, np.ndarray]], floor_y: float | None = None,
                           min_sep: dict[tuple[str, str], float] | None = None, tol: float = 2.0) -> dict[str, Any]:
    """Nothing below the floor line (bbox bottom > ``floor_y + tol``) and no pair of objects whose
    centroid distance / (r_a + r_b) (r = √(area/π)) drops below ``min_sep`` (the ground truth's
    own minimum for that pair, default 0.5)."""
    bad: list[str] = []
    if floor_y is not None:
        for name, tr in tracks.items():
            frames = np.flatnonzero(tr["bbox"][:, 3] > floor_y + tol)
            if len(frames):
                bad.append(f"{name} below floor at frames {frames.tolist()[:5]}")
    names = sorted(tracks)
    for i, a in enumerate(names):
        for b in names[i + 1:]:
            ta, tb = tracks[a], tracks[b]
            both = ta["visible"] & tb["visible"]
            if not both.any():
                continue
            d = np.linalg.norm(ta["centroid"][both] - tb["centroid"][both], axis=1)
            r = np.sqrt(ta["area"][both] / np.pi) + np.sqrt(tb["area"][both] / np.pi)
            sep = float((d / np.maximum(r, 1e-9)).min())
            limit = (min_sep or {}).get((a, b), 0.5)
            if sep < limit:
                bad.append(f"{a}/{b} overlap (separation {sep:.2f} < {limit:.2f})")
    return {"passed": not bad, "violations": bad}


def pair_separations(tracks: dict[str, dict[str, np.ndarray]]) -> dict[tuple[str, str], float]:
    """Minimum normalised separation of each object pair (used as the ground-truth allowance)."""
    out = {}
    names = sorted(tracks)
    for i, a in enumerate(names):
        for b in names[i + 1:]:
            both = tracks[a]["visible"] & tracks[b]["visible"]
            if both.any():
                d = np.linalg.norm(tracks[a]["centroid"][both] - tracks[b]["centroid"][both], axis=1)
                r = np.sqrt(tracks[a]["area"][both] / np.pi) + np.sqrt(tracks[b]["area"][both] / np.pi)
                out[(a, b)] = 0.9 * float((d / np.maximum(r, 1e-9)).min())
    return out


def trajectory_checks(generated: np.ndarray, reference: np.ndarray, objects: list[dict[str, Any]], fps: float,
                      start: int = 0, tol: int = 40, rel_tol: float = 0.5) -> dict[str, Any]:
    """All four checks on frames ``start:`` of ``generated``, with allowances from ``reference``
    (the simulator's frames of the same scene, tracked the same way).

    The track starts at the last given frame ``start − 1`` taken from ``reference``, so a
    continuation that does not start where the conditioning ended fails the teleport check even
    if it is smooth afterwards (e.g. a time-reversed flight, which is otherwise physically valid).
    """
    gen, ref = np.asarray(generated), np.asarray(reference)
    if start > 0:  # the seam: the continuation must start where the given (simulator) frames end
        g, r = np.concatenate([ref[start - 1:start], gen[start:]]), ref[start - 1:]
    else:
        g, r = gen, ref
    tg, tr = track_objects(g, objects, tol), track_objects(r, objects, tol)
    diag = math.hypot(*g.shape[1:3])
    floor_y = max((float(np.nanmax(t["bbox"][:, 3])) for t in tr.values() if t["visible"].any()), default=None)
    checks: dict[str, Any] = {"gravity": {}, "teleport": {}, "permanence": {}}
    for name in tg:
        exp, _ = fit_acceleration(tr[name]["centroid"][:, 1], fps)
        if math.isfinite(exp) and exp > 0:  # only objects that fall in the ground truth
            checks["gravity"][name] = gravity_check(tg[name]["centroid"][:, 1], fps, exp, rel_tol)
        ref_steps = teleport_check(tr[name]["centroid"], math.inf)["max_step"] or 0.0
        tele = teleport_check(tg[name]["centroid"], 1.5 * ref_steps + 0.05 * diag)
        if start > 0 and tele["passed"] is not None:  # seam: first generated step vs the simulator's
            cg, cr = tg[name]["centroid"][:2], tr[name]["centroid"][:2]
            if np.isfinite(cg).all() and np.isfinite(cr).all():
                seam, ref_seam = float(np.linalg.norm(cg[1] - cg[0])), float(np.linalg.norm(cr[1] - cr[0]))
                tele.update(seam_step=seam, seam_limit=ref_seam + max(2.0, 0.03 * diag))
                tele["passed"] = bool(tele["passed"] and seam <= tele["seam_limit"])
        checks["teleport"][name] = tele
        checks["permanence"][name] = permanence_check(tg[name]["visible"], tr[name]["visible"])
    checks["interpenetration"] = interpenetration_check(tg, floor_y, pair_separations(tr))
    flat = [c["passed"] for k in ("gravity", "teleport", "permanence") for c in checks[k].values()]
    flat.append(checks["interpenetration"]["passed"])
    decided = [p for p in flat if p is not None]
    checks["pass_rate"] = float(np.mean(decided)) if decided else math.nan
    return checks


# -- metrics ---------------------------------------------------------------------------------
class _PhysicsMetric(PerItemMetric):
    default_extractor = None
    inputs = ("videos", "item_ids", "reference")

    def __init__(self, cond_frames: int = 4, **kw: Any) -> None:
        self.cond_frames = int(cond_frames)
        super().__init__(None)
        self._identity = {"extractor": self.extractor_label, "weights": NO_WEIGHTS,
                          "preprocessing": dict(PREPROCESSING, cond_frames=self.cond_frames)}

    extractor_label = "motion-masks"


@METRICS.register("physics_iq")
class PhysicsIQ(_PhysicsMetric):
    """Physics-IQ score (protocol ``physics-iq``): Physics-IQ's own pipeline on the continuations
    (frames from ``cond_frames`` on) and its dataset-level score.

    Per scene the value is the scene's term of Physics-IQ's formula,
    100·[(st/V_st + sp/V_sp + w/V_w)/3 − mse + V_mse] (:func:`piq_contribution`), with V the physical
    variance over the *set* of scenes (``variance["physics_iq_dataset"]``, which the suite builds
    from every scene's perturbed re-simulation; one scene's own otherwise); the metric's value is
    their mean clipped to [0, 100] and rounded to 2 dp — Physics-IQ's ``calculate_iq_score`` for
    single-view scenes of equal length. ``update(videos, reference=[gt clips],
    variance=[physical_variance dicts] | specs=[specs])``. skyloom's per-scene normalised score is
    ``physics_iq_scene``.
    """

    name = "physics_iq"
    version = "2"  # 2: Physics-IQ's own protocol (v1 is physics_iq_scene)
    optional_inputs = ("variance", "specs")

    def __init__(self, cond_frames: int = 4, perturb_scale: float = 0.01, perturb_takes: int = 1,
                 seed: int = 0) -> None:
        self.perturb_scale, self.perturb_takes, self.seed = float(perturb_scale), int(perturb_takes), int(seed)
        super().__init__(cond_frames)
        self._identity["preprocessing"] = dict(PIQ_PROTOCOL, cond_frames=self.cond_frames,
                                               perturb_scale=self.perturb_scale)

    def update(self, videos: Any, reference: Any = None, variance: list[dict] | None = None,
               specs: list[dict] | None = None, item_ids: list[str] | None = None) -> None:
        if reference is None:
            raise ValueError(f"{self.name} needs the simulator's clips: update(videos, reference=[...])")
        super().update(videos, item_ids=item_ids, reference=list(reference), variance=variance, specs=specs)

    def _variance(self, reference: np.ndarray, variance: dict | None, specs: dict | None) -> dict | None:
        if variance is None and specs is not None:
            variance = physical_variance(specs, self.cond_frames, self.perturb_scale, self.perturb_takes,
                                         self.seed, reference=np.asarray(reference))
        return variance

    def score_video(self, video: np.ndarray, reference: np.ndarray, variance: dict | None = None,
                    specs: dict | None = None) -> tuple[float, dict[str, float]]:
        ref = np.asarray(reference)
        c = self.cond_frames
        summary = piq_view_summary(piq_view(np.asarray(video)[c:], ref[c:]))
        variance = self._variance(ref, variance, specs)
        if variance is None or "physics_iq" not in variance:
            return math.nan, summary
        var_set = variance.get("physics_iq_dataset") or piq_dataset_variance([variance["physics_iq"]])
        return piq_contribution(summary, var_set), {**summary, **{f"variance_{k}": v for k, v in var_set.items()}}

    def aggregate(self, values: list[float]) -> float:
        """Physics-IQ reports the mean clipped to [0, 100], 2 dp."""
        return round(max(min(math.fsum(values) / len(values), 100.0), 0.0), 2)


@METRICS.register("physics_iq_scene")
class PhysicsIQScene(PhysicsIQ):
    """skyloom's per-scene normalised Physics-IQ score (0–100): the four Physics-IQ metrics of each
    scene (:func:`physics_iq_raw`, masks over the whole clip, no downscale) relative to that scene's
    physical variance, capped at 1, averaged (:func:`normalise`; degenerate variances explicit).
    Not comparable with published Physics-IQ numbers; use ``physics_iq`` for those."""

    name = "physics_iq_scene"
    version = "1"

    def __init__(self, cond_frames: int = 4, perturb_scale: float = 0.01, perturb_takes: int = 1,
                 seed: int = 0) -> None:
        super().__init__(cond_frames, perturb_scale, perturb_takes, seed)
        self._identity["preprocessing"] = dict(PREPROCESSING, cond_frames=self.cond_frames, protocol="skyloom-scene",
                                               perturb_scale=self.perturb_scale, perturb_takes=self.perturb_takes)

    def score_video(self, video: np.ndarray, reference: np.ndarray, variance: dict | None = None,
                    specs: dict | None = None) -> tuple[float, dict[str, float]]:
        raw = physics_iq_raw(video, np.asarray(reference), start=self.cond_frames)
        variance = self._variance(np.asarray(reference), variance, specs)
        if variance is None:
            return math.nan, raw
        norm = normalise(raw, variance)
        degenerate = norm.pop("degenerate")
        return norm.pop("physics_iq"), {**raw, **norm, "degenerate_terms": float(len(degenerate)),
                                        **{f"variance_{k}": variance[k] for k in RAW_KEYS}}

    def aggregate(self, values: list[float]) -> float:
        return math.fsum(values) / len(values)


@METRICS.register("physics_trajectory")
class PhysicsTrajectory(_PhysicsMetric):
    """Fraction of trajectory checks passed (gravity, teleport, permanence, interpenetration).
    ``update(videos, reference=[gt clips], ground_truth=[skyloom-gt dicts])``."""

    name = "physics_trajectory"
    extractor_label = "colour-tracking"
    inputs = ("videos", "item_ids", "reference", "ground_truth")

    def __init__(self, cond_frames: int = 4, colour_tol: int = 40, rel_tol: float = 0.5) -> None:
        self.colour_tol, self.rel_tol = int(colour_tol), float(rel_tol)
        super().__init__(cond_frames)
        self._identity["preprocessing"] = {"tracking": "colour L-inf", "colour_tol": self.colour_tol,
                                           "gravity_rel_tol": self.rel_tol, "cond_frames": self.cond_frames}

    def update(self, videos: Any, reference: Any = None, ground_truth: list[dict] | None = None,
               item_ids: list[str] | None = None) -> None:
        if reference is None or ground_truth is None:
            raise ValueError(f"{self.name} needs reference=[simulator clips] and ground_truth=[gt dicts]")
        super().update(videos, item_ids=item_ids, reference=list(reference), ground_truth=list(ground_truth))

    def score_video(self, video: np.ndarray, reference: np.ndarray,
                    ground_truth: dict) -> tuple[float, dict[str, float]]:
        objs = [o for o in ground_truth.get("objects", []) if "rgb" in o]
        if not objs:
            raise ValueError("ground truth has no objects with 'rgb' colours to track")
        c = trajectory_checks(video, np.asarray(reference), objs, float(ground_truth.get("fps", 8)),
                              start=self.cond_frames, tol=self.colour_tol, rel_tol=self.rel_tol)
        extra = {}
        for k in ("gravity", "teleport", "permanence"):
            ps = [v["passed"] for v in c[k].values() if v["passed"] is not None]
            extra[f"{k}_pass"] = float(np.mean(ps)) if ps else math.nan
        extra["interpenetration_pass"] = float(c["interpenetration"]["passed"])
        return c["pass_rate"], extra
