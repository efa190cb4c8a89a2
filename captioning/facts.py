"""Scene facts of a clip from its ``skyloom-gt`` ground truth (the input of scene-graph captions).

Motion facts are not derived here: they are the ground truth's own (``objects[k].motion`` of
``skyloom-gt`` v2, written by datagen with :mod:`skyloom.motion`; for v1 files the same
function derives them from the per-frame data), so captions, ``caption verify`` and the ground truth
state one set of labels: fall, bounce (counted), collide (with partners, in time order), roll,
slide, tip, enter, leave, rest, static. This module adds what only captions need: where each
object starts in the image (left / centre / right third of its first bbox) and the camera motion.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from skyloom.groundtruth import GroundTruthError, check_gt, read_ground_truth
from skyloom.motion import MotionFacts

__all__ = ["GroundTruthError", "ObjectFacts", "SceneFacts", "check_gt", "object_facts", "scene_facts"]


@dataclass(frozen=True)
class ObjectFacts:
    """What a caption may say about one object."""

    name: str
    shape: str
    colour: str
    size: str
    material: str
    start: str  # "left" | "centre" | "right": image third of the first bbox
    start_height: str  # "air" | "floor"
    motions: tuple[str, ...]  # motion labels (skyloom.motion.MOTION_LABELS) in the order they first happen
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


def object_facts(gt: dict[str, Any], obj: dict[str, Any], motion: MotionFacts | dict[str, Any]) -> ObjectFacts:
    """One object's facts: its attributes, where it starts in the image and its motion facts."""
    if isinstance(motion, dict):
        motion = MotionFacts.from_dict(motion)
    first_bbox = next((fr_obj["bbox"] for fr in gt["frames"] for fr_obj in fr.get("objects", [])
                       if fr_obj.get("name") == obj["name"] and fr_obj.get("bbox")), None)
    cx0 = (first_bbox[0] + first_bbox[2]) / 2 if first_bbox else np.nan
    return ObjectFacts(
        name=obj["name"], shape=obj["shape"], colour=obj["colour"], size=obj.get("size_name", "medium"),
        material=obj.get("material", ""), start=_start_place(cx0, float(gt.get("width") or 0)),
        start_height=motion.start_height, motions=motion.labels, collides_with=motion.collides_with,
        direction=motion.direction, bounces=motion.bounces,
    )


def scene_facts(gt: dict[str, Any]) -> SceneFacts:
    """All facts of a clip from its ground truth (validated first)."""
    typed = read_ground_truth(gt)
    objs = tuple(object_facts(gt, o, t.motion) for o, t in zip(gt["objects"], typed.objects, strict=True))
    n, fps = typed.num_frames, typed.fps
    return SceneFacts(objects=objs, camera=_camera_motion(gt), lighting=dict(gt.get("lighting") or {}),
                      floor=dict(gt.get("floor") or {}), background=dict(gt.get("background") or {}),
                      duration_s=n / fps)
