"""Ground truth of a synthetic clip, assembled from the simulation, by every renderer.

The simulation (:mod:`skyloom.datagen.simulate`) gives per-frame object states and collision
events; a renderer gives the segmentation. :func:`assemble_ground_truth` turns them into the
``skyloom-gt`` dict that ``gt/<id>.json`` stores: per-frame states with bounding boxes, visibility,
pixel counts and the projected centre, the events, and per object its motion facts
(:mod:`skyloom.motion`), the same for every backend. The format, its version and the reader's
check are core's (:mod:`skyloom.groundtruth`), shared by every stage that reads ground truth.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from skyloom.geometry import project
from skyloom.groundtruth import GT_FORMAT, GT_VERSION
from skyloom.motion import derive_motion


def assemble_ground_truth(spec: dict[str, Any], states: list[list[dict[str, Any]]], events: list[dict[str, Any]],
                          seg: np.ndarray, cams: list[dict[str, Any]], *, renderer: str,
                          renderer_version: str) -> dict[str, Any]:
    """The ``skyloom-gt`` v2 dict of one clip.

    Args:
        spec: the scene spec.
        states: per frame, per object ``name, position, quaternion, velocity, angular_velocity``
            (:attr:`skyloom.datagen.simulate.Simulation.states`).
        events: collision events of the simulation.
        seg: uint8 (T, H, W) segmentation, 0 = background, seg_id = object index + 1.
        cams: per-frame cameras (:func:`skyloom.datagen.scenes.camera_frames`).
        renderer, renderer_version: who drew the pixels.

    bbox and visibility come from the segmentation (visible pixels); ``center_px`` is the
    pinhole projection of the object's centre (it may lie outside the image).
    """
    r = spec["render"]
    T, H, W = int(r["num_frames"]), int(r["height"]), int(r["width"])
    fps, fovy = float(r["fps"]), float(spec["camera"]["fovy"])
    objs = spec["objects"]
    frames, visible = [], {o["name"]: 0 for o in objs}
    for i in range(T):
        fo = []
        centers = project(np.array([s["position"] for s in states[i]]), cams[i], fovy, W, H)
        for k, s in enumerate(states[i]):
            ys, xs = np.nonzero(seg[i] == k + 1)
            vis = xs.size > 0
            visible[s["name"]] += int(vis)
            bbox = [int(xs.min()), int(ys.min()), int(xs.max()) + 1, int(ys.max()) + 1] if vis else None
            fo.append({**s, "bbox": bbox, "visible": bool(vis), "pixels": int(xs.size),
                       "center_px": [round(float(centers[k, 0]), 3), round(float(centers[k, 1]), 3)],
                       "depth": round(float(centers[k, 2]), 5)})
        frames.append({"index": i, "t": round(i / fps, 6), "objects": fo})
    gt_objects = []
    for k, o in enumerate(objs):
        partners = {e["b"] if e["a"] == o["name"] else e["a"] for e in events if o["name"] in (e["a"], e["b"])}
        gt_objects.append({
            "name": o["name"], "seg_id": k + 1, "shape": o["shape"], "size": list(o["size"]),
            "size_name": o.get("size_name", ""), "colour": o.get("colour", ""), "rgb": list(o["rgb"]),
            "material": o["material"], "mass": o["mass"],
            "initial": {"position": list(o["position"]), "velocity": list(o["velocity"]),
                        "motion": o.get("motion", "")},
            "collides_with": sorted(partners),  # every contact partner, the floor included
            "visible_frames": visible[o["name"]],
        })
    gt = {
        "format": GT_FORMAT, "version": GT_VERSION, "renderer": renderer, "renderer_version": renderer_version,
        "spec": spec, "probe": spec.get("probe"), "fps": fps, "num_frames": T, "width": W, "height": H,
        "gravity": list(spec["gravity"]),
        "camera": {"motion": spec["camera"]["motion"], "fovy": fovy,
                   "frames": [{"position": c["position"], "lookat": c["lookat"]} for c in cams]},
        "objects": gt_objects, "frames": frames, "events": events,
        "floor": spec["floor"], "background": spec["background"], "lighting": spec["lighting"],
        "arrays": None,
    }
    motion = derive_motion(gt)  # from the assembled frames: what a v1 reader derives from the same file
    for o in gt_objects:
        o["motion"] = motion[o["name"]]
    return gt
