"""Scene facts derived from ``skyloom-gt`` v1 ground truth (the input of scene-graph captions).

Motion is derived from the per-frame trajectories, velocities, visibility and collision events
(not from the optional ``initial.motion`` summary, which only breaks ties): an object *falls*
while it is above its resting height and moving down, *bounces* when its vertical velocity turns
from down to up near the floor, *rolls* or *slides* when it moves along the floor (rolling when
its spin matches its speed, ``|w| r ~ |v|``), *collides with X* at collision events with another
object, *comes to rest* when it moved and ends still, *leaves the frame* when it was visible and
is not at the end, and *stays still* when it never moves.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from skyloom.errors import UserError

SPEED_EPS = 0.05  # m/s: below this an object counts as still
VZ_EPS = 0.15  # m/s: vertical speed that counts as falling / rising
GROUND_TOL = 0.03  # m above the resting height that still counts as "on the floor"


class GroundTruthError(UserError, ValueError):
    """Ground truth that does not follow the ``skyloom-gt`` v1 format."""


@dataclass(frozen=True)
class ObjectFacts:
    """What a caption may say about one object."""

    name: str
    shape: str
    colour: str
    size: str
    material: str
    start: str  # "left" | "centre" | "right" (image thirds) ... free text phrase key
    start_height: str  # "air" | "floor"
    motions: tuple[str, ...]  # canonical motions in time order: fall, bounce, roll, slide, rest, leave, static
    collides_with: tuple[str, ...] = ()  # other object names, in time order
    direction: str = ""  # "left" | "right" | "" (horizontal image direction of travel)
    bounces: int = 0

    @property
    def key(self) -> tuple[str, str]:
        return (self.colour, self.shape)


@dataclass(frozen=True)
class SceneFacts:
    """All facts of one clip: objects, camera, lighting, floor, background, timing."""

    objects: tuple[ObjectFacts, ...]
    camera: str = "static"
    lighting: dict[str, Any] = field(default_factory=dict)
    floor: dict[str, Any] = field(default_factory=dict)
    background: dict[str, Any] = field(default_factory=dict)
    duration_s: float = 0.0

    def by_name(self, name: str) -> ObjectFacts | None:
        return next((o for o in self.objects if o.name == name), None)


def _half_height(shape: str, size: list[float], quat: list[float] | None = None) -> float:
    """Vertical half-extent of a MuJoCo geom (sizes as in gt: radius / half-extents / half-length),
    for its orientation ``quat`` = (w, x, y, z) (upright when None)."""
    s = [float(x) for x in size] or [0.1]
    w, x, y, z = (quat if quat is not None and len(quat) == 4 else (1.0, 0.0, 0.0, 0.0))
    r20, r21, r22 = 2 * (x * z - w * y), 2 * (y * z + w * x), 1 - 2 * (x * x + y * y)  # world-z row of R
    if shape == "sphere":
        return s[0]
    if shape == "box":
        h = (s + s[-1:] * 3)[:3]
        return h[0] * abs(r20) + h[1] * abs(r21) + h[2] * abs(r22)
    half = s[1] if len(s) > 1 else s[0]
    if shape == "cylinder":
        return half * abs(r22) + s[0] * float(np.sqrt(max(0.0, 1 - r22 * r22)))
    if shape == "capsule":
        return half * abs(r22) + s[0]
    return s[0]


def _radius(shape: str, size: list[float]) -> float:
    return float(size[0]) if size else 0.1


def check_gt(gt: dict[str, Any], where: str = "ground truth") -> None:
    """Raise :class:`GroundTruthError` naming the first missing or malformed field."""
    if not isinstance(gt, dict):
        raise GroundTruthError(f"{where}: expected a JSON object, got {type(gt).__name__}")
    if gt.get("format") != "skyloom-gt":
        raise GroundTruthError(f"{where}: field 'format' is {gt.get('format')!r}, expected 'skyloom-gt'")
    if int(gt.get("version", 0)) != 1:
        raise GroundTruthError(f"{where}: field 'version' is {gt.get('version')!r}; this captioner reads version 1")
    for key in ("objects", "frames"):
        if not isinstance(gt.get(key), list):
            raise GroundTruthError(f"{where}: field {key!r} must be a list")
    for i, o in enumerate(gt["objects"]):
        for key in ("name", "shape", "colour"):
            if key not in o:
                raise GroundTruthError(f"{where}: objects[{i}] has no field {key!r}")


def _per_object(gt: dict[str, Any]) -> dict[str, list[dict[str, Any]]]:
    """Per-frame records grouped by object name (one pass over the frames)."""
    out: dict[str, list[dict[str, Any]]] = {}
    for fr in gt["frames"]:
        for x in fr.get("objects", []):
            out.setdefault(x.get("name"), []).append(x)
    return out


def _series(gt: dict[str, Any], name: str, rows: list[dict[str, Any]] | None = None) -> dict[str, np.ndarray]:
    pos, vel, ang, vis, cx, quat = [], [], [], [], [], []
    if rows is None:
        rows = _per_object(gt).get(name, [])
    for o in rows:
        pos.append(o.get("position", [np.nan] * 3))
        vel.append(o.get("velocity") or [np.nan] * 3)
        ang.append(o.get("angular_velocity") or [0.0] * 3)
        vis.append(bool(o.get("visible", True)))
        quat.append(o.get("quaternion") or [1.0, 0.0, 0.0, 0.0])
        bb = o.get("bbox")
        cx.append((bb[0] + bb[2]) / 2 if bb else np.nan)
    p = np.asarray(pos, float).reshape(-1, 3)  # (T, 3)
    v = np.asarray(vel, float).reshape(-1, 3)  # (T, 3)
    if len(p) > 1 and np.isnan(v).any():  # finite differences where velocities are missing
        fps = float(gt.get("fps") or 8)
        dv = np.gradient(p, axis=0) * fps
        v = np.where(np.isnan(v), dv, v)
    return {"pos": p, "vel": np.nan_to_num(v), "ang": np.asarray(ang, float).reshape(-1, 3),
            "vis": np.asarray(vis, bool), "cx": np.asarray(cx, float),
            "quat": quat}


def _camera_motion(gt: dict[str, Any]) -> str:
    cam = gt.get("camera") or {}
    frames = cam.get("frames") or []
    if len(frames) >= 2:
        p = np.asarray([f["position"] for f in frames], float)
        la = np.asarray([f.get("lookat", [0, 0, 0]) for f in frames], float)
        moved = np.linalg.norm(p - p[0], axis=1).max()
        look_moved = np.linalg.norm(la - la[0], axis=1).max()
        if moved < 1e-3 and look_moved < 1e-3:
            return "static"
        dist = np.linalg.norm(p - la, axis=1)
        if moved >= 1e-3 and abs(dist[-1] - dist[0]) < 0.05 * max(dist[0], 1e-6) and look_moved < 1e-3:
            return "orbit"
        if look_moved >= 1e-3 and moved < 1e-3:
            return "pan"
        if dist[-1] < dist[0] - 1e-3 or dist[-1] > dist[0] + 1e-3:
            return "dolly"
        return str(cam.get("motion") or "pan")
    return str(cam.get("motion") or "static")


def _start_place(cx0: float, width: float) -> str:
    if np.isnan(cx0) or width <= 0:
        return "centre"
    f = cx0 / width
    return "left" if f < 1 / 3 else "right" if f > 2 / 3 else "centre"


def object_facts(gt: dict[str, Any], obj: dict[str, Any], floor_z: float = 0.0,
                 rows: list[dict[str, Any]] | None = None) -> ObjectFacts:
    """Derive one object's facts from its per-frame trajectory and the event list."""
    name, shape = obj["name"], obj["shape"]
    size = list(obj.get("size") or [0.1])
    s = _series(gt, name, rows)
    p, v, w, vis = s["pos"], s["vel"], s["ang"], s["vis"]
    if len(p) == 0:
        return ObjectFacts(name, shape, obj["colour"], obj.get("size_name", "medium"), obj.get("material", ""),
                           "centre", "floor", ("static",))
    rest_z = floor_z + np.array([_half_height(shape, size, q) for q in s["quat"]])  # (T,) per orientation
    speed = np.linalg.norm(v, axis=1)
    hspeed = np.linalg.norm(v[:, :2], axis=1)
    on_floor = p[:, 2] <= rest_z + GROUND_TOL
    motions: list[str] = []

    def add(m: str) -> None:
        if m not in motions:
            motions.append(m)

    collisions = [e for e in gt.get("events", []) if e.get("kind", "collision") == "collision"
                  and name in (e.get("a"), e.get("b"))]
    partners = {int(e.get("frame", 0)): (e["b"] if e.get("a") == name else e["a"]) for e in collisions}
    object_names = {o["name"] for o in gt["objects"]}
    collides: list[str] = []
    bounces = 0
    for t in range(len(p)):
        if not on_floor[t] and v[t, 2] < -VZ_EPS:
            add("fall")
        if t > 0 and v[t - 1, 2] < -VZ_EPS and v[t, 2] > VZ_EPS and p[t, 2] <= rest_z[t] + 0.25:
            add("bounce")
            bounces += 1
        if on_floor[t] and hspeed[t] > SPEED_EPS and abs(v[t, 2]) < VZ_EPS:
            r = _radius(shape, size)
            spin = np.linalg.norm(w[t, :2]) * r if shape in ("sphere", "cylinder", "capsule") else 0.0
            add("roll" if spin > 0.5 * hspeed[t] else "slide")
        other = partners.get(t)
        if other in object_names and other not in collides:
            collides.append(other)
            add("collide")
    moved = bool((speed > SPEED_EPS).any())
    if vis.any() and not vis[-1] and vis[: max(1, len(vis) - 1)].any():
        first_vis = int(np.argmax(vis))
        if not vis[first_vis:].all():
            add("leave")
    if not moved:
        motions = ["static"]
    elif speed[-1] <= SPEED_EPS and "leave" not in motions:
        add("rest")
    cx = s["cx"]
    valid = ~np.isnan(cx)
    direction = ""
    if valid.sum() >= 2 and moved:
        dx = cx[valid][-1] - cx[valid][0]
        if abs(dx) > 0.1 * float(gt.get("width") or 64):
            direction = "right" if dx > 0 else "left"
    return ObjectFacts(
        name=name, shape=shape, colour=obj["colour"], size=obj.get("size_name", "medium"),
        material=obj.get("material", ""), start=_start_place(cx[0] if len(cx) else np.nan, float(gt.get("width") or 0)),
        start_height="floor" if on_floor[0] else "air", motions=tuple(motions), collides_with=tuple(collides),
        direction=direction, bounces=bounces,
    )


def scene_facts(gt: dict[str, Any]) -> SceneFacts:
    """All facts of a clip from its ground truth (validated first)."""
    check_gt(gt)
    floor = dict(gt.get("floor") or {})
    floor_z = float(floor.get("z", floor.get("height", 0.0)) or 0.0)
    per = _per_object(gt)
    objs = tuple(object_facts(gt, o, floor_z, per.get(o["name"], [])) for o in gt["objects"])
    n = int(gt.get("num_frames") or len(gt["frames"]))
    fps = float(gt.get("fps") or 8)
    return SceneFacts(objects=objs, camera=_camera_motion(gt), lighting=dict(gt.get("lighting") or {}),
                      floor=floor, background=dict(gt.get("background") or {}), duration_s=n / fps)
