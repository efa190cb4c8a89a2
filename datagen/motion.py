"""Motion facts of scene objects, as the clip shows them at its own frame rate: defined once.

Every stage asks this module. datagen writes the facts into the ground truth (``objects[k].motion``
of ``skyloom-gt`` v2, :mod:`skyloom.datagen.groundtruth`); scene-graph captions state exactly
those labels, ``caption verify`` checks captions against them, and prompt upsampling completes a
prompt's labels with :func:`implied_labels`. Ground truth without stored facts (``skyloom-gt`` v1)
gets them from :func:`derive_motion`, the same function datagen calls, on its per-frame data.

The labels are read off the frames of the clip, not off the physics steps between them: MuJoCo
steps every ~2 ms, a clip samples every 1/fps s, and a bounce that happens between two frames and
leaves no visible rise is a floor ``collision`` event of the ground truth but not a stated fact.
What a clip shows is decided by one rule, :func:`min_visible_change`: a change of height or
position is visible when it is at least :data:`VISIBLE_FRACTION` of the object's upright height.
Measured relative to the object and not in pixels, the same scene gets the same labels at any
render size (a 3.7 cm rebound of a 29 cm ball is stated; a 1 cm one is not).

Per object, with ``h[t]`` the height of its lowest point above the floor at frame ``t`` (its centre
height minus :func:`~skyloom.datagen.geometry.half_height` in that frame's orientation), ``v`` the
visible change and "airborne" meaning ``h > v``:

- ``fall``: a run of frames in which ``h`` keeps decreasing, starting airborne, drops by >= v;
- ``bounce`` (counted): a floor collision event after which ``h`` rises by >= v above its lower
  sample around the impact, before the next floor impact;
- ``roll`` / ``slide``: the object travels >= v along the floor in one run of consecutive frames
  in which it is not airborne; a ball, or a cylinder or capsule lying on its side, rolls, anything else
  slides (the spin of a plain ball or about a cylinder's axis does not show in the clip);
- ``collide``: a collision event with another object (partners in time order);
- ``tip``: a box, cylinder or capsule whose up axis turns by more than :data:`TIP_DEG`;
- ``enter`` / ``leave``: out of the frame at the start and in it later / in the frame once and out
  at the end (in the frame = any visible pixel, or the centre projects into the image, so an
  occluded object has not left);
- ``rest``: it moved (>= v from its start, or tipped), is in the frame at the end and its speed at
  the last frame is below :data:`REST_SPEED`; ``static``: it never moved (it may still be hit, or
  enter or leave the frame as the camera moves).

Example:
    >>> from skyloom.captioning.fake_gt import make_gt
    >>> gt = make_gt(0, num_objects=1, motions=["dropped"], camera_motion="static")
    >>> labels(derive_motion(gt)["obj0"])
    ['fall', 'bounce']
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from skyloom.datagen.geometry import half_height, quat_to_mat

MOTION_LABELS = ("fall", "bounce", "collide", "roll", "slide", "tip", "enter", "leave", "rest", "static")
VISIBLE_FRACTION = 0.1  # of the object's upright height: the smallest change of height or position a clip shows
REST_SPEED = 0.05  # m/s: slower at the last frame = at rest
LYING_COS = math.cos(math.radians(45))  # |up_z| below this: a cylinder or capsule lies on its side
TIP_DEG = 30.0  # turn of the up axis that is a tip-over
DIRECTION_FRACTION = 0.1  # horizontal image travel (fraction of the width) that has a direction
# What a stated label implies: a visible rebound needs a visible drop before it (it rises less than it fell).
IMPLIES = {"bounce": ("fall",)}


def min_visible_change(shape: str, size: list[float]) -> float:
    """The visibility rule: the smallest change of height or position (m) the clip shows of an object.

    :data:`VISIBLE_FRACTION` of the object's upright height (``2 * half_height``), the same at every
    render size and camera distance.
    """
    return VISIBLE_FRACTION * 2 * half_height(shape, size)


def _floor_events(events: list[dict[str, Any]], name: str) -> list[int]:
    """Frames of the floor impacts of ``name`` (``a``/``b`` in either order), one per frame interval."""
    return sorted({int(e.get("frame", 0)) for e in events if e.get("kind", "collision") == "collision"
                   and {e.get("a"), e.get("b")} == {"floor", name}})


def object_motion(obj: dict[str, Any], rows: list[dict[str, Any]], events: list[dict[str, Any]], width: int,
                  height: int, floor_z: float = 0.0, object_names: set[str] | None = None) -> dict[str, Any]:
    """Motion facts of one object from its per-frame ground-truth records (see the module docstring).

    Args:
        obj: the object (``name``, ``shape``, ``size``).
        rows: its per-frame records in frame order: ``position``, ``quaternion``, ``velocity``,
            ``angular_velocity``, ``visible``, ``bbox`` and (optional) ``center_px``.
        events: the clip's events (``frame``, ``kind``, ``a``, ``b``, time order).
        width, height: image size in pixels.
        floor_z: height of the floor.
        object_names: names of the other objects (collision partners); default: any non-floor name.

    Returns:
        ``{"events": [{"label", "frame"[, "rise"][, "with"]}...], "start_height": "air"|"floor",
        "direction": "left"|"right"|""}``; events in time order (one per label, one per bounce,
        one per collision partner).
    """
    name, shape, size = obj["name"], obj["shape"], [float(s) for s in obj["size"]]
    T = len(rows)
    if T == 0:
        return {"events": [{"label": "static", "frame": 0}], "start_height": "floor", "direction": ""}
    p = np.array([r["position"] for r in rows], float)  # (T, 3)
    vel = np.array([r.get("velocity") or [0.0, 0.0, 0.0] for r in rows], float)  # (T, 3)
    quat = [r.get("quaternion") or [1.0, 0.0, 0.0, 0.0] for r in rows]
    vis = np.array([bool(r.get("visible", True)) for r in rows])  # (T,)
    v = min_visible_change(shape, size)
    h = p[:, 2] - floor_z - np.array([half_height(shape, size, q) for q in quat])  # (T,) lowest point
    air = h > v
    out: list[dict[str, Any]] = []

    t = 0  # fall: a run of decreasing h that starts airborne and drops by >= v
    while t < T - 1:
        if h[t + 1] < h[t]:
            s = t
            while t < T - 1 and h[t + 1] < h[t]:
                t += 1
            if air[s] and h[s] - h[t] >= v:
                out.append({"label": "fall", "frame": s})
                break
        else:
            t += 1

    impacts = _floor_events(events, name)
    for i, f in enumerate(impacts):  # bounce: a visible rise after a floor impact
        f = min(f, T - 1)
        end = min(impacts[i + 1], T) if i + 1 < len(impacts) else T  # the next impact happens after frame end - 1
        low = min(h[f - 1], h[f]) if f >= 1 else h[f]
        rise = float(h[f:end].max() - low) if end > f else 0.0
        if rise >= v:
            out.append({"label": "bounce", "frame": f, "rise": round(rise, 4)})

    up = np.array([quat_to_mat(np.asarray(q, float) / np.linalg.norm(q))[:, 2] for q in quat])  # (T, 3) body z
    lying = np.abs(up[:, 2]) < LYING_COS  # (T,) a cylinder's or capsule's axis closer to horizontal
    first: dict[str, int] = {}
    run, travel = None, 0.0
    for t in range(T - 1):  # roll / slide: visible travel along the floor in one run of frames
        kind = None
        if not (air[t] or air[t + 1]):
            kind = "roll" if shape == "sphere" or (shape != "box" and lying[t] and lying[t + 1]) else "slide"
        run, travel = kind, (travel if kind == run else 0.0) + float(np.linalg.norm(p[t + 1, :2] - p[t, :2]))
        if kind is not None and travel >= v and kind not in first:
            first[kind] = t + 1  # the frame where the travel has become visible
    out += [{"label": k, "frame": f} for k, f in first.items()]

    names = object_names
    seen: set[str] = set()
    for e in events:  # collide: other objects, first contact with each
        if e.get("kind", "collision") != "collision" or name not in (e.get("a"), e.get("b")):
            continue
        other = e["b"] if e.get("a") == name else e.get("a")
        if other == "floor" or other in seen or (names is not None and other not in names):
            continue
        seen.add(other)
        out.append({"label": "collide", "frame": int(e.get("frame", 0)), "with": other})

    tipped = None
    if shape != "sphere":  # tip: the body's up axis turns by more than TIP_DEG
        tilt = np.degrees(np.arccos(np.clip(up @ up[0], -1.0, 1.0)))  # (T,)
        over = np.nonzero(tilt > TIP_DEG)[0]
        if over.size:
            tipped = int(over[0])
            out.append({"label": "tip", "frame": tipped})

    in_frame = vis.copy()
    for t, row in enumerate(rows):  # an occluded object whose centre projects into the image is in the frame
        c = row.get("center_px")
        if not in_frame[t] and c is not None and row.get("depth", 1.0) > 0:
            in_frame[t] = 0 <= c[0] < width and 0 <= c[1] < height
    if in_frame.any():
        if not in_frame[0]:
            out.append({"label": "enter", "frame": int(np.argmax(in_frame))})
        if not in_frame[-1]:
            last_in = T - 1 - int(np.argmax(in_frame[::-1]))
            out.append({"label": "leave", "frame": last_in + 1})

    moved = bool(np.linalg.norm(p - p[0], axis=1).max() >= v) or tipped is not None
    if not moved:
        out = [e for e in out if e["label"] in ("collide", "enter", "leave")]
        out.append({"label": "static", "frame": 0})
    elif in_frame[-1] and float(np.linalg.norm(vel[-1])) < REST_SPEED:
        away = np.nonzero(np.linalg.norm(p - p[-1], axis=1) >= v)[0]  # frames visibly away from the final position
        seen_moving = [e["frame"] for e in out if e["label"] not in ("enter", "leave")]
        last = max([int(away[-1]) + 1 if away.size else 0, *seen_moving])
        out.append({"label": "rest", "frame": last})

    cx = np.array([(r["bbox"][0] + r["bbox"][2]) / 2 if r.get("bbox") else np.nan for r in rows])  # (T,)
    valid = ~np.isnan(cx)
    direction = ""
    if moved and valid.sum() >= 2:
        dx = cx[valid][-1] - cx[valid][0]
        if abs(dx) > DIRECTION_FRACTION * width:
            direction = "right" if dx > 0 else "left"
    order = {m: i for i, m in enumerate(MOTION_LABELS)}
    out.sort(key=lambda e: (e["frame"], order[e["label"]]))
    return {"events": out, "start_height": "air" if air[0] else "floor", "direction": direction}


def derive_motion(gt: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Motion facts of every object of a ground-truth dict, from its frames and events (name -> facts)."""
    rows: dict[str, list[dict[str, Any]]] = {o["name"]: [] for o in gt["objects"]}
    for fr in gt["frames"]:
        for r in fr.get("objects", []):
            if r.get("name") in rows:
                rows[r["name"]].append(r)
    floor = gt.get("floor") or {}
    floor_z = float(floor.get("z", 0.0) or 0.0)
    names = set(rows)
    w, h = int(gt.get("width") or 0), int(gt.get("height") or 0)
    events = sorted(gt.get("events") or [], key=lambda e: (e.get("t", 0.0), e.get("frame", 0)))
    return {o["name"]: object_motion(o, rows[o["name"]], events, w, h, floor_z, names) for o in gt["objects"]}


def read_motion(gt: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The motion facts of a ground-truth dict: stored ones (``skyloom-gt`` v2), else derived (v1)."""
    if all(isinstance(o.get("motion"), dict) for o in gt["objects"]):
        return {o["name"]: o["motion"] for o in gt["objects"]}
    return derive_motion(gt)


def labels(facts: dict[str, Any]) -> list[str]:
    """The distinct labels of one object's motion facts, in the order they first happen."""
    return list(dict.fromkeys(e["label"] for e in facts["events"]))


def bounces(facts: dict[str, Any]) -> int:
    """How many visible bounces."""
    return sum(1 for e in facts["events"] if e["label"] == "bounce")


def collides_with(facts: dict[str, Any]) -> list[str]:
    """Collision partners in time order."""
    return [e["with"] for e in facts["events"] if e["label"] == "collide"]


def implied_labels(stated: list[str]) -> list[str]:
    """Complete labels a prompt states with what they imply (:data:`IMPLIES`), in time order."""
    out = list(dict.fromkeys(stated))
    for label, needs in IMPLIES.items():
        if label in out:
            for n in needs:
                if n not in out:
                    out.insert(out.index(label), n)
    return out


__all__ = ["IMPLIES", "MOTION_LABELS", "REST_SPEED", "VISIBLE_FRACTION", "bounces", "collides_with", "derive_motion",
           "implied_labels", "labels", "min_visible_change", "object_motion", "read_motion"]
