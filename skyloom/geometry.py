"""Geometry shared by the simulator, the renderers and the ground truth: one definition each.

Rotations, the vertical extent of an object (where it rests on the floor), and the pinhole camera
of a scene (MuJoCo's free camera: z-up world, no roll). Pure numpy, no MuJoCo.

Example:
    >>> half_height("box", [0.1, 0.2, 0.3])
    0.3
    >>> round(half_height("box", [0.1, 0.2, 0.3], [0.7071068, 0.7071068, 0.0, 0.0]), 4)  # on its side
    0.2
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np


def quat_to_mat(q: Sequence[float]) -> np.ndarray:
    """Rotation matrix (3, 3) of a unit quaternion ``(w, x, y, z)``."""
    w, x, y, z = q
    return np.array([[1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w)],
                     [2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w)],
                     [2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y)]])


def half_height(shape: str, size: Sequence[float], quat: Sequence[float] | None = None) -> float:
    """Vertical half-extent of a MuJoCo geom: the height of its centre when it rests on the floor.

    Args:
        shape: ``sphere``, ``box``, ``cylinder`` or ``capsule``.
        size: MuJoCo sizes as in a scene spec: sphere [radius], box [3 half-extents],
            cylinder [radius, half-height], capsule [radius, half-length].
        quat: orientation ``(w, x, y, z)``; upright (identity) when None.

    Returns:
        Metres from the centre to the lowest point of the geom in that orientation.
    """
    s = [float(v) for v in size]
    if shape == "sphere":
        return s[0]
    w, x, y, z = (1.0, 0.0, 0.0, 0.0) if quat is None else (float(v) for v in quat)
    r20, r21, r22 = 2 * (x * z - w * y), 2 * (y * z + w * x), 1 - 2 * (x * x + y * y)  # world-z row of R
    if shape == "box":
        return s[0] * abs(r20) + s[1] * abs(r21) + s[2] * abs(r22)
    if shape == "cylinder":
        return s[1] * abs(r22) + s[0] * math.sqrt(max(0.0, 1 - r22 * r22))
    if shape == "capsule":
        return s[1] * abs(r22) + s[0]
    raise ValueError(f"half_height: unknown shape {shape!r}; valid: sphere, box, cylinder, capsule")


def camera_basis(cam: dict[str, Any]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Unit forward, right and up vectors of a camera frame (z-up world, no roll)."""
    az, el = math.radians(cam["azimuth"]), math.radians(cam["elevation"])
    f = np.array([math.cos(el) * math.cos(az), math.cos(el) * math.sin(az), math.sin(el)])
    right = np.array([math.sin(az), -math.cos(az), 0.0])  # f x z, normalised
    up = np.array([-math.sin(el) * math.cos(az), -math.sin(el) * math.sin(az), math.cos(el)])  # right x f
    return f, right, up


def project(points: np.ndarray, cam: dict[str, Any], fovy: float, width: int, height: int) -> np.ndarray:
    """Pinhole projection of world points (N, 3) into pixel (x, y) of a camera frame, and depth.

    Returns (N, 3): pixel x (right), pixel y (down), distance along the view axis in metres.
    """
    f, right, up = camera_basis(cam)
    rel = np.asarray(points, float) - np.asarray(cam["position"], float)  # (N, 3)
    z = rel @ f
    fpx = (height / 2) / math.tan(math.radians(fovy) / 2)
    x = width / 2 + fpx * (rel @ right) / z
    y = height / 2 - fpx * (rel @ up) / z
    return np.stack([x, y, z], axis=-1)
