"""Trajectories on generated frames: objects tracked by colour, compared with the simulator's trajectories.

:func:`simulator_agreement` (the ``physics_trajectory`` metric): per frame, is each object's centre
within the perturbed re-simulation's tolerance of the simulator's, and does it move with the
simulator's velocity; documented in docs/metrics.md. The pass/fail checks (gravity-consistent
acceleration, no teleporting, object permanence, no interpenetration; :func:`trajectory_checks`) are
2-D heuristics kept as functions; they are no longer a metric (a frozen video passed them).
"""

from __future__ import annotations

import logging
import math
from typing import Any

import numpy as np

log = logging.getLogger(__name__)


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




# -- simulator agreement (physics_trajectory v2) -----------------------------------------------
def track_component(masks: np.ndarray, min_area: int = 3) -> np.ndarray:
    """Centre (x, y) px of the largest 8-connected component of each frame's mask with at least
    ``min_area`` pixels: (T, 2), NaN where there is none (scattered pixels of the colour, as noise
    has, are not an object)."""
    import cv2

    T = masks.shape[0]
    cen = np.full((T, 2), np.nan)
    for t in range(T):
        n, _, stats, cents = cv2.connectedComponentsWithStats(masks[t].astype(np.uint8), connectivity=8)
        if n <= 1:
            continue
        k = 1 + int(np.argmax(stats[1:, cv2.CC_STAT_AREA]))
        if stats[k, cv2.CC_STAT_AREA] >= min_area:
            cen[t] = cents[k]
    return cen


def object_tracks(frames: np.ndarray, objects: list[dict[str, Any]], tol: int = 40,
                  min_area: dict[str, int] | None = None) -> dict[str, np.ndarray]:
    """``{name: (T, 2) centres}`` of each ``{"name", "rgb"}`` object (:func:`track_component`)."""
    return {o["name"]: track_component(colour_masks(frames, o["rgb"], tol), (min_area or {}).get(o["name"], 3))
            for o in objects}


VELOCITY_LAG = 2  # steps over two frames: a continuation that repeats frames is measured at its mean speed


def _steps(c: np.ndarray, lag: int = 1) -> np.ndarray:
    """c(t) − c(t − lag): (T − lag, 2), NaN where either end is missing."""
    return c[lag:] - c[:-lag]


def velocity_agreement(gen_step: np.ndarray, sim_step: np.ndarray, rest: float) -> np.ndarray:
    """Per step: ``max(0, cos(v_g, v_s)) · min(|v_g|, |v_s|) / max(|v_g|, |v_s|)`` (1: same direction and
    speed; a step at half speed scores 0.5, a reversed or stopped one 0); both below ``rest`` px (at rest): 1;
    a missing step (the object not found at either end): 0. (N, 2) steps -> (N,)."""
    sg, ss = np.linalg.norm(gen_step, axis=1), np.linalg.norm(sim_step, axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        cos = np.einsum("ij,ij->i", gen_step, sim_step) / (sg * ss)
        ratio = np.minimum(sg, ss) / np.maximum(sg, ss)
        out = np.clip(cos, 0, None) * ratio
    out = np.where((sg < rest) & (ss < rest), 1.0, np.nan_to_num(out, nan=0.0))
    return np.where(np.isfinite(sg) & np.isfinite(ss), out, np.where(np.isfinite(ss), 0.0, 1.0))


def simulator_agreement(generated: np.ndarray, reference: np.ndarray, objects: list[dict[str, Any]], start: int,
                        take: np.ndarray | None = None, tol: int = 40, base: float = 0.02, spread: float = 1.0,
                        velocity_weight: float = 0.5) -> dict[str, Any]:
    """How closely the generated continuation follows the simulator's trajectories, frame by frame.

    Every object is tracked by colour (:func:`track_component`; the minimum area is a quarter of its
    median area in the simulator's clip) in the generated clip, the simulator's clip ``reference``
    and, when given, a perturbed re-simulation ``take``. For every continuation frame t ≥ ``start``:

    * position p(t) ∈ {0, 1}: the generated centre lies within
      ``tol(t) = base·diag + spread·|c_take(t) − c_sim(t)|`` of the simulator's (``diag`` the frame
      diagonal; without a take the first term alone) — the perturbed take's tolerance;
    * velocity v(t) ∈ [0, 1]: :func:`velocity_agreement` of the generated step c(t) − c(t−2) with the
      simulator's (two frames, :data:`VELOCITY_LAG`, so a continuation that repeats frames is measured
      at its mean speed; the seam t = ``start`` steps one frame from the simulator's last given frame;
      at rest below ``base·diag/2`` px per frame): the direction and speed of the motion;
    * the frame's agreement ``(1 − w)·p(t) + w·v(t)`` (``w = velocity_weight``).

    An object the simulator shows but the generated frames do not is a miss (never a dropped check).
    Frames where the simulator itself does not show an object (occluded, out of view, shaded beyond
    the colour tolerance) are undecidable for it and left out of its mean; an object the simulator
    never shows is left out (``undecidable`` counts them), and with no decidable object the score is NaN.

    Returns:
        ``score`` (mean over frames and objects), ``position`` and ``velocity`` (means of p and v),
        ``found`` (fraction of frames the generated clip shows each object the simulator shows) and
        ``objects`` (the same per object).
    """
    gen, ref = np.asarray(generated), np.asarray(reference)
    if gen.shape != ref.shape:
        raise ValueError(f"generated clip {gen.shape} and simulator clip {ref.shape} differ in shape")
    if not 1 <= start < len(ref):
        raise ValueError(f"start {start} must be in [1, {len(ref)})")
    diag = math.hypot(*ref.shape[1:3])
    min_area = {}
    for o in objects:
        area = colour_masks(ref, o["rgb"], tol).reshape(len(ref), -1).sum(axis=1)
        seen = area[area > 0]
        min_area[o["name"]] = max(3, int(0.25 * np.median(seen))) if len(seen) else 3
    g = np.concatenate([ref[start - 1:start], gen[start:]])  # the seam: the last given frame is the simulator's
    tg, ts = object_tracks(g, objects, tol, min_area), object_tracks(ref[start - 1:], objects, tol, min_area)
    tt = object_tracks(np.asarray(take)[start - 1:], objects, tol, min_area) if take is not None else None
    per: dict[str, dict[str, float]] = {}
    for o in objects:
        n = o["name"]
        cg, cs = tg[n], ts[n]
        sim_here, gen_here = np.isfinite(cs[:, 0]), np.isfinite(cg[:, 0])
        dev = np.zeros(len(cs))
        if tt is not None:
            dev = np.nan_to_num(np.linalg.norm(tt[n] - cs, axis=1), nan=0.0)
        decidable = sim_here[1:]
        if not decidable.any():
            continue
        with np.errstate(invalid="ignore"):
            pos = (gen_here & (np.linalg.norm(cg - cs, axis=1) <= base * diag + spread * dev))[1:].astype(float)
        lag = VELOCITY_LAG  # the first continuation frame has one step to look back on: its lag-1 step
        vel = np.concatenate([velocity_agreement(_steps(cg[:2]), _steps(cs[:2]), base * diag / 2),
                              velocity_agreement(_steps(cg, lag), _steps(cs, lag), lag * base * diag / 2)])
        frame = ((1 - velocity_weight) * pos + velocity_weight * vel)[decidable]
        per[n] = {"score": float(frame.mean()), "position": float(pos[decidable].mean()),
                  "velocity": float(vel[decidable].mean()), "found": float(gen_here[1:][decidable].mean()),
                  "decidable_frames": float(decidable.mean())}

    def mean(k: str) -> float:
        return float(np.mean([p[k] for p in per.values()])) if per else math.nan

    return {"score": mean("score"), "position": mean("position"), "velocity": mean("velocity"), "found": mean("found"),
            "undecidable": len(objects) - len(per), "objects": per}
