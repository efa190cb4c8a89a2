"""Motion facts of scene objects, as the clip shows them at its own frame rate: defined once.

A fact of the world shared by every stage, so it lives in core and every stage asks this module.
datagen writes the facts into the ground truth (``objects[k].motion`` of ``skyloom-gt`` v2, format in
:mod:`skyloom.groundtruth`, assembled by :mod:`skyloom.datagen.groundtruth`); scene-graph captions state exactly
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
height minus :func:`~skyloom.geometry.half_height` in that frame's orientation), ``v`` the
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
from dataclasses import dataclass
from typing import Any

import numpy as np

from skyloom.geometry import half_height, quat_to_mat

MOTION_LABELS = ("fall", "bounce", "collide", "roll", "slide", "tip", "enter", "leave", "rest", "static")
VISIBLE_FRACTION = 0.1  # of the object's upright height: the smallest change of height or position a clip shows
REST_SPEED = 0.05  # m/s: slower at the last frame = at rest
LYING_COS = math.cos(math.radians(45))  # |up_z| below this: a cylinder or capsule lies on its side
TIP_DEG = 30.0  # turn of the up axis that is a tip-over
DIRECTION_FRACTION = 0.1  # horizontal image travel (fraction of the width) that has a direction
# What a stated label implies: a visible rebound needs a visible drop before it (it rises less than it fell).
IMPLIES = {"bounce": ("fall",)}


@dataclass(frozen=True)
class MotionEvent:
    """One stated motion fact: ``label`` (one of :data:`MOTION_LABELS`) first seen at ``frame``.

    ``rise`` (m) is set on a ``bounce``, ``partner`` (the other object's name) on a ``collide``;
    the file format stores the partner under the key ``"with"``.
    """

    label: str
    frame: int
    rise: float | None = None
    partner: str | None = None

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> MotionEvent:
        rise = d.get("rise")
        return cls(label=str(d["label"]), frame=int(d.get("frame", 0)), rise=None if rise is None else float(rise),
                   partner=d.get("with"))

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"label": self.label, "frame": self.frame}
        if self.rise is not None:
            out["rise"] = self.rise
        if self.partner is not None:
            out["with"] = self.partner
        return out


@dataclass(frozen=True)
class MotionFacts:
    """The motion facts of one object (``objects[k].motion`` of ``skyloom-gt`` v2), typed.

    Example:
        >>> f = MotionFacts.from_dict({"events": [{"label": "fall", "frame": 0},
        ...     {"label": "bounce", "frame": 4, "rise": 0.1}], "start_height": "air", "direction": ""})
        >>> f.labels, f.bounces
        (('fall', 'bounce'), 1)
    """

    events: tuple[MotionEvent, ...]
    start_height: str = "floor"  # "air" | "floor"
    direction: str = ""  # "left" | "right" | "": horizontal image direction of travel

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> MotionFacts:
        return cls(events=tuple(MotionEvent.from_dict(e) for e in d["events"]),
                   start_height=str(d.get("start_height", "floor")), direction=str(d.get("direction", "")))

    def to_dict(self) -> dict[str, Any]:
        return {"events": [e.to_dict() for e in self.events], "start_height": self.start_height,
                "direction": self.direction}

    @property
    def labels(self) -> tuple[str, ...]:
        """The distinct labels in the order they first happen."""
        return tuple(dict.fromkeys(e.label for e in self.events))

    @property
    def bounces(self) -> int:
        """How many visible bounces."""
        return sum(1 for e in self.events if e.label == "bounce")

    @property
    def collides_with(self) -> tuple[str, ...]:
        """Collision partners in time order."""
        return tuple(str(e.partner) for e in self.events if e.label == "collide")


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


def _fall(h: np.ndarray, air: np.ndarray, v: float) -> list[dict[str, Any]]:
    """The first run of decreasing ``h`` that starts airborne and drops by >= v."""
    t, T = 0, len(h)
    while t < T - 1:
        if h[t + 1] < h[t]:
            s = t
            while t < T - 1 and h[t + 1] < h[t]:
                t += 1
            if air[s] and h[s] - h[t] >= v:
                return [{"label": "fall", "frame": s}]
        else:
            t += 1
    return []


def _bounces(h: np.ndarray, impacts: list[int], v: float) -> list[dict[str, Any]]:
    """Floor impacts after which ``h`` rises by >= v above its lower sample around the impact."""
    out, T = [], len(h)
    for i, f in enumerate(impacts):
        f = min(f, T - 1)
        end = min(impacts[i + 1], T) if i + 1 < len(impacts) else T  # the next impact happens after frame end - 1
        low = min(h[f - 1], h[f]) if f >= 1 else h[f]
        rise = float(h[f:end].max() - low) if end > f else 0.0
        if rise >= v:
            out.append({"label": "bounce", "frame": f, "rise": round(rise, 4)})
    return out


def _travel(p: np.ndarray, air: np.ndarray, rolls: np.ndarray, v: float) -> list[dict[str, Any]]:
    """``roll`` / ``slide`` where one run of frames on the floor travels >= v (``rolls[t]``: pair t rolls)."""
    first: dict[str, int] = {}
    run, travel = None, 0.0
    for t in range(len(p) - 1):
        kind = None if air[t] or air[t + 1] else "roll" if rolls[t] else "slide"
        run, travel = kind, (travel if kind == run else 0.0) + float(np.linalg.norm(p[t + 1, :2] - p[t, :2]))
        if kind is not None and travel >= v and kind not in first:
            first[kind] = t + 1  # the frame where the travel has become visible
    return [{"label": k, "frame": f} for k, f in first.items()]


def _collisions(name: str, events: list[dict[str, Any]], names: set[str] | None) -> list[dict[str, Any]]:
    """The first collision event with each other object."""
    out, seen = [], set()
    for e in events:
        if e.get("kind", "collision") != "collision" or name not in (e.get("a"), e.get("b")):
            continue
        other = e["b"] if e.get("a") == name else e.get("a")
        if other == "floor" or other in seen or (names is not None and other not in names):
            continue
        seen.add(other)
        out.append({"label": "collide", "frame": int(e.get("frame", 0)), "with": other})
    return out


def _in_frame(rows: list[dict[str, Any]], width: int, height: int) -> np.ndarray:
    """(T,) bool: a visible pixel, or the centre projects into the image (an occluded object has not left)."""
    out = np.array([bool(r.get("visible", True)) for r in rows])
    for t, r in enumerate(rows):
        c = r.get("center_px")
        if not out[t] and c is not None and r.get("depth", 1.0) > 0:
            out[t] = 0 <= c[0] < width and 0 <= c[1] < height
    return out


def _direction(rows: list[dict[str, Any]], width: int) -> str:
    """Horizontal image direction of travel from the first to the last visible bbox centre."""
    cx = np.array([(r["bbox"][0] + r["bbox"][2]) / 2 if r.get("bbox") else np.nan for r in rows])  # (T,)
    cx = cx[~np.isnan(cx)]
    if len(cx) < 2 or abs(cx[-1] - cx[0]) <= DIRECTION_FRACTION * width:
        return ""
    return "right" if cx[-1] > cx[0] else "left"


def object_motion(obj: dict[str, Any], rows: list[dict[str, Any]], events: list[dict[str, Any]], width: int,
                  height: int, floor_z: float = 0.0, object_names: set[str] | None = None) -> dict[str, Any]:
    """Motion facts of one object from its per-frame ground-truth records (see the module docstring).

    Args:
        obj: the object (``name``, ``shape``, ``size``).
        rows: its per-frame records in frame order: ``position``, ``quaternion``, ``velocity``,
            ``visible``, ``bbox`` and (optional) ``center_px``, ``depth``.
        events: the clip's events (``frame``, ``kind``, ``a``, ``b``), in time order.
        width, height: image size in pixels.
        floor_z: height of the floor.
        object_names: names of the other objects (collision partners); default: any non-floor name.

    Returns:
        ``{"events": [{"label", "frame"[, "rise"][, "with"]}...], "start_height": "air"|"floor",
        "direction": "left"|"right"|""}``; events in time order (one per label, one per bounce,
        one per collision partner).
    """
    name, shape, size = obj["name"], obj["shape"], [float(s) for s in obj["size"]]
    if not rows:
        return {"events": [{"label": "static", "frame": 0}], "start_height": "floor", "direction": ""}
    p = np.array([r["position"] for r in rows], float)  # (T, 3)
    speed_end = float(np.linalg.norm(rows[-1].get("velocity") or [0.0, 0.0, 0.0]))
    quat = [r.get("quaternion") or [1.0, 0.0, 0.0, 0.0] for r in rows]
    up = np.array([quat_to_mat(np.asarray(q, float) / np.linalg.norm(q))[:, 2] for q in quat])  # (T, 3) body z
    v = min_visible_change(shape, size)
    h = p[:, 2] - floor_z - np.array([half_height(shape, size, q) for q in quat])  # (T,) lowest point
    air = h > v
    lying = np.abs(up[:, 2]) < LYING_COS  # (T,) a cylinder's or capsule's axis closer to horizontal
    rolls = (shape == "sphere") | ((shape != "box") & lying[:-1] & lying[1:])  # (T-1,) per frame pair
    out = (_fall(h, air, v) + _bounces(h, _floor_events(events, name), v) + _travel(p, air, rolls, v)
           + _collisions(name, events, object_names))

    tilt = np.degrees(np.arccos(np.clip(up @ up[0], -1.0, 1.0)))  # (T,) turn of the up axis
    over = np.nonzero(tilt > TIP_DEG)[0] if shape != "sphere" else np.array([], int)
    if over.size:
        out.append({"label": "tip", "frame": int(over[0])})

    in_frame = _in_frame(rows, width, height)
    if in_frame.any() and not in_frame[0]:
        out.append({"label": "enter", "frame": int(np.argmax(in_frame))})
    if in_frame.any() and not in_frame[-1]:
        out.append({"label": "leave", "frame": len(rows) - int(np.argmax(in_frame[::-1]))})  # after the last frame in

    moved = bool(np.linalg.norm(p - p[0], axis=1).max() >= v) or bool(over.size)
    if not moved:
        out = [e for e in out if e["label"] in ("collide", "enter", "leave")]
        out.append({"label": "static", "frame": 0})
    elif in_frame[-1] and speed_end < REST_SPEED:
        away = np.nonzero(np.linalg.norm(p - p[-1], axis=1) >= v)[0]  # frames visibly away from the final position
        seen_moving = [e["frame"] for e in out if e["label"] not in ("enter", "leave")]
        out.append({"label": "rest", "frame": max([int(away[-1]) + 1 if away.size else 0, *seen_moving])})

    order = {m: i for i, m in enumerate(MOTION_LABELS)}
    out.sort(key=lambda e: (e["frame"], order[e["label"]]))
    return {"events": out, "start_height": "air" if air[0] else "floor",
            "direction": _direction(rows, width) if moved else ""}


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


__all__ = ["IMPLIES", "MOTION_LABELS", "REST_SPEED", "VISIBLE_FRACTION", "MotionEvent", "MotionFacts", "bounces",
           "collides_with", "derive_motion", "implied_labels", "labels", "min_visible_change", "object_motion",
           "read_motion"]
