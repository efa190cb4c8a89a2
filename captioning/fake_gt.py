"""Synthetic ``skyloom-gt`` ground truth without a renderer, for tests and benchmarks.

A tiny point-mass simulator (gravity, floor bounces with restitution, floor friction, equal-mass
head-on collisions) writes per-frame positions, velocities, angular velocities, image bboxes of a
pinhole camera and visibility exactly in the documented format. It is NOT the MuJoCo renderer
(``skyloom.datagen.render``); it exists so that captioning can be tested and benchmarked on many scenes in
milliseconds.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from skyloom.colours import CAPTION_COLOURS
from skyloom.groundtruth import GT_FORMAT, GT_VERSION
from skyloom.motion import derive_motion

SHAPES = ("sphere", "box", "cylinder", "capsule")
COLOURS = (*CAPTION_COLOURS[:6], "white", "black")  # of the one vocabulary: red ... purple, white, black
MATERIALS = ("rubber", "wood", "metal", "plastic")
SIZE_M = {"small": 0.08, "medium": 0.12, "large": 0.18}
RESTITUTION = {"rubber": 0.75, "wood": 0.4, "metal": 0.3, "plastic": 0.5}
MOTIONS = ("dropped", "thrown", "rolling", "sliding", "resting")


def _size(shape: str, r: float) -> list[float]:
    return {"sphere": [r], "box": [r, r, r], "cylinder": [r, r], "capsule": [r, r]}[shape]


def _look_at(pos: np.ndarray, target: np.ndarray) -> np.ndarray:
    f = target - pos
    f = f / np.linalg.norm(f)
    right = np.cross(f, [0, 0, 1.0])
    right = right / np.linalg.norm(right)
    up = np.cross(right, f)
    return np.stack([right, up, f])  # (3, 3) world -> camera rows


def project(point: np.ndarray, cam_pos: np.ndarray, lookat: np.ndarray, fovy: float, w: int, h: int):
    """Pinhole projection of a world point -> (x, y) pixels, or None if behind the camera."""
    R = _look_at(cam_pos, lookat)
    c = R @ (point - cam_pos)  # (3,) right, up, forward
    if c[2] <= 1e-6:
        return None
    fpix = (h / 2) / math.tan(math.radians(fovy) / 2)
    return (w / 2 + fpix * c[0] / c[2], h / 2 - fpix * c[1] / c[2])


def make_gt(seed: int, num_objects: int | None = None, num_frames: int = 16, fps: int = 8, width: int = 64,
            height: int = 64, camera_motion: str | None = None, motions: list[str] | None = None) -> dict[str, Any]:
    """A seeded ``skyloom-gt`` dict of 1-3 objects (or ``num_objects``) with simulated motion and its motion facts."""
    rng = np.random.default_rng(seed)
    n = num_objects or int(rng.integers(1, 4))
    g, dt_sub, sub = 9.81, 1.0 / (fps * 10), 10
    objs, state = [], []
    lanes = rng.permutation(np.linspace(-0.8, 0.8, max(n, 3)))[:n]
    used: set[tuple[str, str]] = set()
    for i in range(n):
        shape = str(rng.choice(SHAPES))
        colour = str(rng.choice(COLOURS))
        while (colour, shape) in used:
            colour = str(rng.choice(COLOURS))
        used.add((colour, shape))
        size_name = str(rng.choice(list(SIZE_M)))
        r = SIZE_M[size_name]
        material = str(rng.choice(MATERIALS))
        motion = motions[i] if motions else str(rng.choice(MOTIONS))
        p = np.array([lanes[i], float(rng.uniform(-0.3, 0.3)), r])
        v = np.zeros(3)
        if motion == "dropped":
            p[2] = float(rng.uniform(0.6, 1.2))
        elif motion == "thrown":
            p[2] = float(rng.uniform(0.4, 0.8))
            v = np.array([float(rng.choice([-1, 1]) * rng.uniform(0.8, 2.0)), 0.0, float(rng.uniform(0.5, 1.5))])
        elif motion in ("rolling", "sliding"):
            v = np.array([float(rng.choice([-1, 1]) * rng.uniform(0.5, 1.5)), 0.0, 0.0])
        if shape == "box" and motion == "rolling":
            motion = "sliding"
        rgb = [float(x) for x in rng.uniform(0, 1, 3)]
        objs.append({"name": f"obj{i}", "seg_id": i + 1, "shape": shape, "size": _size(shape, r),
                     "size_name": size_name, "colour": colour, "rgb": rgb, "material": material,
                     "mass": float(round(rng.uniform(0.1, 1.0), 3)),
                     "initial": {"position": p.tolist(), "velocity": v.tolist(), "motion": motion}})
        state.append({"name": f"obj{i}", "p": p, "v": v, "r": r, "e": RESTITUTION[material],
                      "roll": motion == "rolling"})
    cam_motion = camera_motion or str(rng.choice(["static", "static", "orbit", "pan", "dolly"]))
    fovy = 45.0
    frames, events, cam_frames = [], [], []
    for t in range(num_frames):
        if t > 0:
            for _ in range(sub):
                for s in state:
                    s["p"] = s["p"] + s["v"] * dt_sub
                    on = s["p"][2] <= s["r"] + 1e-3
                    if not on:
                        s["v"][2] -= g * dt_sub
                    if s["p"][2] < s["r"]:
                        s["p"][2] = s["r"]
                        if s["v"][2] < -0.3:
                            s["v"][2] = -s["v"][2] * s["e"]
                            if not any(e["frame"] == t and e["a"] == s["name"] for e in events):
                                events.append({"frame": t, "t": t / fps, "kind": "collision", "a": s["name"],
                                               "b": "floor"})
                        else:
                            s["v"][2] = 0.0
                    if s["p"][2] <= s["r"] + 1e-3 and abs(s["v"][2]) < 1e-9:
                        h = math.hypot(s["v"][0], s["v"][1])
                        dec = (0.3 if s["roll"] else 2.5) * dt_sub
                        s["v"][:2] = 0.0 if h <= dec else s["v"][:2] * (1 - dec / h)
                for a in range(len(state)):
                    for b in range(a + 1, len(state)):
                        A, B = state[a], state[b]
                        d = B["p"] - A["p"]
                        if np.linalg.norm(d) < A["r"] + B["r"] and np.dot(B["v"] - A["v"], d) < 0:
                            A["v"], B["v"] = B["v"].copy(), A["v"].copy()
                            events.append({"frame": t, "t": t / fps, "kind": "collision", "a": A["name"],
                                           "b": B["name"]})
        angle = {"orbit": 0.04 * t, "pan": 0.0, "dolly": 0.0, "static": 0.0}.get(cam_motion, 0.0)
        dist = 4.0 - (0.08 * t if cam_motion == "dolly" else 0.0)
        cam_pos = np.array([dist * math.sin(angle), -dist * math.cos(angle), 1.5])
        lookat = np.array([0.05 * t if cam_motion == "pan" else 0.0, 0.0, 0.3])
        cam_frames.append({"position": cam_pos.tolist(), "lookat": lookat.tolist()})
        fobjs = []
        for o, s in zip(objs, state):
            c = project(s["p"], cam_pos, lookat, fovy, width, height)
            bbox, vis = None, False
            if c is not None:
                rad = project(s["p"] + np.array([0, 0, s["r"]]), cam_pos, lookat, fovy, width, height)
                hr = abs(c[1] - rad[1]) if rad else 1.0
                x0, y0, x1, y1 = c[0] - hr, c[1] - hr, c[0] + hr, c[1] + hr
                vis = x1 > 0 and x0 < width and y1 > 0 and y0 < height
                bbox = [max(0.0, x0), max(0.0, y0), min(float(width), x1), min(float(height), y1)] if vis else None
            spin = [-s["v"][1] / s["r"], s["v"][0] / s["r"], 0.0] if s["roll"] else [0.0, 0.0, 0.0]
            fobjs.append({"name": o["name"], "position": s["p"].tolist(), "quaternion": [1.0, 0.0, 0.0, 0.0],
                          "velocity": s["v"].tolist(), "angular_velocity": spin, "bbox": bbox, "visible": bool(vis)})
        frames.append({"index": t, "t": t / fps, "objects": fobjs})
    lighting = {"preset": str(rng.choice(["studio", "sunset", "overcast", "night"])),
                "intensity": float(round(rng.uniform(0.4, 1.2), 2))}
    floor = {"material": str(rng.choice(["checker", "wood", "concrete", "grass"])),
             "colour": str(rng.choice(["grey", "white", "beige", "green"])), "z": 0.0}
    background = {"kind": str(rng.choice(["sky", "plain", "gradient"])),
                  "colour": str(rng.choice(["light blue", "white", "dark grey"]))}
    spec = {"seed": seed, "preset": "fake", "objects": [o["initial"] | {"shape": o["shape"]} for o in objs]}
    gt = {"format": GT_FORMAT, "version": GT_VERSION, "renderer": "fake", "renderer_version": "captioning.fake_gt",
          "spec": spec, "fps": fps, "num_frames": num_frames, "width": width, "height": height,
          "gravity": [0, 0, -g], "camera": {"motion": cam_motion, "fovy": fovy, "frames": cam_frames},
          "objects": objs, "frames": frames, "events": events, "floor": floor, "background": background,
          "lighting": lighting, "arrays": None}
    motion = derive_motion(gt)  # the motion facts, as datagen writes them
    for o in objs:
        o["motion"] = motion[o["name"]]
    return gt
