"""Physics-IQ's computations (pure functions): motion masks, IoUs, the physical variance and the score.

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
measures with two real takes. skyloom's per-scene scores (:func:`normalise`): IoU / IoU_variance and
MSE_variance / MSE (capped at 1 unless asked otherwise); Physics-IQ's own score: :func:`piq_score`.

Trajectories (agreement with the simulator's tracks) live in :mod:`skyloom.eval.functional.trajectory`.

Example:
    >>> import numpy as np
    >>> v = np.zeros((8, 32, 32, 3), np.uint8); v[:, 10:14, :] = 200
    >>> physics_iq_raw(v, v)["spatial_iou"]
    1.0
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import numpy as np

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


def normalise(raw: dict[str, float], variance: dict[str, float], eps: float = 1e-12,
              cap_iou: bool = True) -> dict[str, float]:
    """skyloom's per-scene score: each metric relative to the physical variance (1 = as close as a
    re-simulation), capped at 1; ``physics_iq = 100 · mean`` of the four.

    ``cap_iou=False`` leaves the IoU ratios uncapped (the truth's IoU 1 gives 1/V, the most any
    candidate can reach, so a continuation closer than a re-simulation is not tied with the truth); the
    MSE ratio stays capped at 1 (a near-copy's tiny MSE would otherwise beat the truth's 0 → 1).

    A degenerate variance is handled explicitly, never as NaN: when the re-simulation shares no
    motion with the ground truth (variance IoU 0, e.g. a collision whose perturbed take diverges),
    that IoU is used raw (normalised by 1) and its key is listed in ``degenerate``; a zero variance
    MSE (a re-simulation identical to the truth) gives ``mse_norm = 1`` only for an exact copy.
    """
    out: dict[str, Any] = {}
    degenerate = []
    for k in RAW_KEYS[:3]:
        if variance[k] > eps:
            out[f"{k}_norm"] = min(1.0, raw[k] / variance[k]) if cap_iou else raw[k] / variance[k]
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
                      perturb: Callable | None = None, keep_take: bool = False) -> dict[str, Any]:
    """Physics-IQ metrics between the ground truth and ``takes`` perturbed re-simulations (mean), and
    under ``"physics_iq"`` Physics-IQ's own variance terms (continuations, :func:`piq_view`) against
    the first re-simulation, the second take.

    Args:
        spec: the scene spec (``gt["spec"]``).
        cond_frames: frames given to the model; metrics use frames ``cond_frames:``.
        scale, seed: perturbation size and seed (``skyloom.datagen.perturb_spec(spec, scale, seed + k)``).
        reference: the ground-truth frames if already rendered.
        render, perturb: injectable for tests; default ``skyloom.datagen.render_spec`` / ``perturb_spec``
            (the physics suite renders through an H.264 round trip, as candidates are stored).
        keep_take: also return the first re-simulation's frames under ``"take"`` (the trajectory
            metric's tolerance).
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
    if keep_take:
        out["take"] = takes_frames[0]
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

    Physics-IQ's resizing rule: the real video fixes the size, (W/4, H/4) of take 1; the generated
    masks are computed at the generated video's own size and then resized to it, and so are its
    frames (``cv2.resize``, bilinear). A generated video of another size is accepted as Physics-IQ
    accepts it (skyloom's ``physics_iq`` resizes the candidate to the probe's size *before* the masks:
    :func:`to_size`).

    Args:
        generated, real, real2: uint8 (T, H, W, 3) continuations: the model's, the ground truth
            (take 1) and a second take of the same experiment (take 2; here a perturbed
            re-simulation) for the physical variance. ``generated`` may differ in H, W.

    Returns:
        ``mse``/``spatiotemporal_iou`` per-frame lists and ``spatial_iou``/``weighted_spatial_iou``
        of generated vs take 1; with ``real2``, ``variance_*`` the same between the two takes.
    """
    g, r = np.asarray(generated), np.asarray(real)
    if len(g) != len(r) or g.shape[-1:] != r.shape[-1:]:
        raise ValueError(f"generated continuation {g.shape} and ground truth {r.shape} differ in frame count")
    size = (r.shape[2] // 4, r.shape[1] // 4)  # (W/4, H/4) of the *real* video, as Physics-IQ
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


def to_size(frames: np.ndarray, height: int, width: int) -> np.ndarray:
    """uint8 (T, H, W, 3) frames resized to (T, height, width, 3) (``cv2.INTER_LINEAR``; unchanged
    when already that size): how the physics metrics bring a candidate to the probe's resolution."""
    from skyloom.video import conform_clip  # the one clip-conforming function, with Physics-IQ's filter

    return conform_clip(frames, height=height, width=width, interpolation="linear")


def moving_cells(continuation: np.ndarray) -> int:
    """Moving cells of a continuation under Physics-IQ's own masks: :func:`piq_masks`, resized to
    (W/4, H/4) and thresholded at 127 as :func:`piq_view` does, summed over frames. A probe whose
    ground truth has few of them rewards any static output (an empty union of masks is IoU 1)."""
    v = np.asarray(continuation)
    size = (v.shape[2] // 4, v.shape[1] // 4)
    return int(sum(int((m > 127).sum()) for m in _piq_down(piq_masks(v), size)))


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


