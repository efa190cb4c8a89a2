"""The ground-truth format of a synthetic clip (``skyloom-gt``), its checker and a typed view: defined once.

Ground truth is a contract between stages: datagen writes it (``gt/<id>.json``, assembled from the
simulation by :func:`skyloom.datagen.groundtruth.assemble_ground_truth`), captioning states its facts,
``caption verify`` checks captions against it, and evaluation scores trajectories and physics
against it. Every reader checks it with :func:`check_gt`, or reads it with :func:`read_ground_truth`,
which checks it and returns the typed :class:`GroundTruth` (objects with their motion facts as
:class:`skyloom.motion.MotionFacts`). The fields are documented in docs/datagen-render.md.

Versions: 2 adds ``objects[k].motion`` (motion facts as the clip shows them) and drops v1's
``motion_summary`` and ``num_bounces``; readers accept both (:func:`skyloom.motion.read_motion`
derives v1's facts from its frames).

Example:
    >>> from skyloom.captioning.fake_gt import make_gt
    >>> gt = read_ground_truth(make_gt(0, num_objects=1, motions=["dropped"], camera_motion="static"))
    >>> gt.objects[0].motion.labels
    ('fall', 'bounce')
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from skyloom.errors import UserError
from skyloom.motion import MotionFacts, read_motion

GT_FORMAT = "skyloom-gt"
GT_VERSION = 2
READABLE_VERSIONS = (1, 2)


class GroundTruthError(UserError, ValueError):
    """Ground truth that does not follow the ``skyloom-gt`` format."""


def check_gt(gt: Any, where: str = "ground truth") -> None:
    """Raise :class:`GroundTruthError` naming the first missing or malformed field."""
    if not isinstance(gt, dict):
        raise GroundTruthError(f"{where}: expected a JSON object, got {type(gt).__name__}")
    if gt.get("format") != GT_FORMAT:
        raise GroundTruthError(f"{where}: field 'format' is {gt.get('format')!r}, expected {GT_FORMAT!r}")
    if gt.get("version") not in READABLE_VERSIONS:
        raise GroundTruthError(f"{where}: field 'version' is {gt.get('version')!r}; readable versions: "
                               f"{', '.join(map(str, READABLE_VERSIONS))}")
    for key in ("objects", "frames"):
        if not isinstance(gt.get(key), list):
            raise GroundTruthError(f"{where}: field {key!r} must be a list")
    for i, o in enumerate(gt["objects"]):
        for key in ("name", "shape", "colour"):
            if key not in o:
                raise GroundTruthError(f"{where}: objects[{i}] has no field {key!r}")


@dataclass(frozen=True)
class GroundTruthObject:
    """One object of a clip's ground truth (``objects[k]``) with its motion facts."""

    name: str
    shape: str
    colour: str  # a name of skyloom.colours.COLOURS
    size: tuple[float, ...]  # MuJoCo sizes, as in the scene spec
    size_name: str  # "small" | "medium" | "large" ("" when the scene did not name it)
    material: str
    motion: MotionFacts
    collides_with: tuple[str, ...] = ()  # every contact partner, the floor included


@dataclass(frozen=True)
class GroundTruth:
    """A checked ``skyloom-gt`` file, typed where stages read it; ``raw`` is the dict as stored.

    Per-frame states (``frames``) and events stay plain data in ``raw``: they are read by index, in
    bulk, by the functions that know their fields (:mod:`skyloom.motion`, the trajectory metrics).
    """

    version: int
    renderer: str
    fps: float
    num_frames: int
    width: int
    height: int
    objects: tuple[GroundTruthObject, ...]
    camera_motion: str
    raw: dict[str, Any]

    def object(self, name: str) -> GroundTruthObject | None:
        return next((o for o in self.objects if o.name == name), None)


def read_ground_truth(gt: Any, where: str = "ground truth") -> GroundTruth:
    """Check ``gt`` (:func:`check_gt`) and return its typed view; motion facts stored (v2) or derived (v1)."""
    check_gt(gt, where)
    motion = read_motion(gt)
    objects = tuple(GroundTruthObject(
        name=str(o["name"]), shape=str(o["shape"]), colour=str(o["colour"]),
        size=tuple(float(s) for s in o.get("size") or ()), size_name=str(o.get("size_name", "")),
        material=str(o.get("material", "")), motion=MotionFacts.from_dict(motion[o["name"]]),
        collides_with=tuple(o.get("collides_with") or ()),
    ) for o in gt["objects"])
    num_frames = int(gt.get("num_frames") or len(gt["frames"]))
    return GroundTruth(version=int(gt["version"]), renderer=str(gt.get("renderer", "")),
                       fps=float(gt.get("fps") or 8), num_frames=num_frames, width=int(gt.get("width") or 0),
                       height=int(gt.get("height") or 0), objects=objects,
                       camera_motion=str((gt.get("camera") or {}).get("motion") or "static"), raw=gt)


__all__ = ["GT_FORMAT", "GT_VERSION", "READABLE_VERSIONS", "GroundTruth", "GroundTruthError", "GroundTruthObject",
           "check_gt", "read_ground_truth"]
