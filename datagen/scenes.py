"""Declarative, seeded scene specs (plain data) and the sampler that draws them from a preset.

A scene spec is a JSON-able dict (Kubric's "scene is plain data"): objects with shape, size,
colour, material, mass, initial pose and velocity; floor, background, lighting, camera (static,
orbit, pan, dolly) and render settings including the render quality. The spec is stored whole in
every clip's ground truth and its canonical JSON hash is the clip's ``source_sha256``. The same
spec renders to the same clip, bit for bit; the same (preset config, seed, index) samples the
same spec.

Example:
    >>> spec = sample_spec(SceneConfig(), seed=7, preset="demo")
    >>> validate_spec(spec) is None and spec["objects"][0]["shape"]
    'sphere'
"""

from __future__ import annotations

import copy
import hashlib
import json
import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from skyloom.colours import BALL_COLOURS, RENDER_RGB
from skyloom.errors import UserError
from skyloom.geometry import half_height

SPEC_VERSION = 1
SHAPES = ("sphere", "box", "cylinder", "capsule")
SIZE_NAMES = ("small", "medium", "large")
MOTIONS = ("dropped", "thrown", "rolling", "sliding", "resting")
CAMERA_MOTIONS = ("static", "orbit", "pan", "dolly")
FLOORS = ("plain", "checker", "grid")
BACKGROUNDS = ("plain", "gradient")
PROBES = ("drop", "throw", "collide", "roll", "stack")

# Colour name -> linear RGB in [0, 1] of every colour a scene can draw: the one vocabulary's
# (skyloom.colours), which captions, the heuristic captioner and colour_motion also read.
COLOURS: dict[str, tuple[float, float, float]] = RENDER_RGB

# material -> physical and visual properties. damping is the damping ratio of MuJoCo's contact
# solref (time constant 0.02 s): measured restitution of a ball on the floor is 0.68 (rubber),
# 0.52 (plastic), 0.38 (metal), 0.29 (wood). Lower ratios with a shorter time constant make the
# discrete soft contact gain energy (restitution > 1), so do not go below 0.1.
MATERIALS: dict[str, dict[str, float]] = {
    "rubber": {"density": 1100.0, "friction": 1.0, "damping": 0.1, "specular": 0.2, "shininess": 0.2},
    "plastic": {"density": 950.0, "friction": 0.5, "damping": 0.25, "specular": 0.5, "shininess": 0.6},
    "wood": {"density": 700.0, "friction": 0.6, "damping": 0.5, "specular": 0.1, "shininess": 0.1},
    "metal": {"density": 7800.0, "friction": 0.4, "damping": 0.35, "specular": 0.9, "shininess": 0.9},
}

# Characteristic half-size in metres per size name (multiplied by SceneConfig.size_scale).
SIZE_SCALE = {"small": 0.08, "medium": 0.12, "large": 0.17}


class SpecError(UserError, ValueError):
    """A scene spec that does not follow the spec format; the message names the field."""


@dataclass(frozen=True)
class QualityConfig:
    """Render quality, recorded in each spec (the shadow map size dominates the CPU cost, docs/datagen-render.md)."""

    shadowsize: int = 512
    offsamples: int = 0
    shadows: bool = True


@dataclass(frozen=True)
class SceneConfig:
    """What a preset's scene sampler may draw. Each tuple lists the allowed choices."""

    width: int = 32
    height: int = 32
    fps: float = 8.0
    num_frames: int = 16
    timestep: float = 0.002
    min_objects: int = 1
    max_objects: int = 3
    shapes: tuple[str, ...] = ("sphere",)
    colours: tuple[str, ...] = BALL_COLOURS
    distinct_colours: bool = True
    materials: tuple[str, ...] = ("rubber",)
    sizes: tuple[str, ...] = SIZE_NAMES
    size_scale: float = 1.0
    motions: tuple[str, ...] = ("dropped", "thrown", "rolling")
    aim_fraction: float = 0.0
    area: tuple[float, float] = (1.2, 0.8)
    camera_motions: tuple[str, ...] = ("static",)
    camera_distance: float = 2.2
    camera_height: float = 0.15
    camera_elevation: float = -20.0
    camera_azimuth: float = 90.0
    camera_jitter_deg: float = 0.0
    camera_speed_deg: float = 15.0
    dolly_speed: float = 0.3
    fovy: float = 45.0
    floors: tuple[str, ...] = ("plain",)
    floor_colours: tuple[str, ...] = ("light grey",)
    backgrounds: tuple[str, ...] = ("plain",)
    background_colours: tuple[str, ...] = ("sky blue",)
    vary_lighting: bool = False
    probes: tuple[str, ...] = ()
    quality: QualityConfig = field(default_factory=QualityConfig)


def canonical_json(spec: dict[str, Any]) -> str:
    """Canonical JSON of a spec (sorted keys, no spaces): hashing and equality go through it."""
    return json.dumps(spec, sort_keys=True, separators=(",", ":"), allow_nan=False)


def spec_sha256(spec: dict[str, Any]) -> str:
    """sha256 of the canonical spec JSON (the ``source_sha256`` of a synthetic clip)."""
    return hashlib.sha256(canonical_json(spec).encode()).hexdigest()


def scene_seed(job_seed: int, index: int) -> int:
    """The seed of scene ``index`` of a job seeded ``job_seed`` (independent streams)."""
    return int(np.random.SeedSequence([int(job_seed), int(index)]).generate_state(1, np.uint32)[0])


def _check_choices(name: str, values: tuple[str, ...], valid) -> None:
    if not values:
        raise SpecError(f"scene.{name} is empty; choose from {', '.join(valid)}")
    bad = [v for v in values if v not in valid]
    if bad:
        raise SpecError(f"scene.{name}: unknown {bad}; valid: {', '.join(valid)}")


def check_scene_config(cfg: SceneConfig) -> None:
    """Validate a preset's scene section; raise SpecError naming the key."""
    _check_choices("shapes", cfg.shapes, SHAPES)
    _check_choices("colours", cfg.colours, COLOURS)
    _check_choices("materials", cfg.materials, MATERIALS)
    _check_choices("sizes", cfg.sizes, SIZE_NAMES)
    _check_choices("motions", cfg.motions, MOTIONS)
    _check_choices("camera_motions", cfg.camera_motions, CAMERA_MOTIONS)
    _check_choices("floors", cfg.floors, FLOORS)
    _check_choices("floor_colours", cfg.floor_colours, COLOURS)
    _check_choices("backgrounds", cfg.backgrounds, BACKGROUNDS)
    _check_choices("background_colours", cfg.background_colours, COLOURS)
    if cfg.probes:
        _check_choices("probes", cfg.probes, PROBES)
    if not 1 <= cfg.min_objects <= cfg.max_objects:
        raise SpecError(f"scene.min_objects/max_objects must satisfy 1 <= min <= max, "
                        f"got {cfg.min_objects}, {cfg.max_objects}")
    if cfg.distinct_colours and cfg.max_objects > len(cfg.colours):
        raise SpecError(f"scene.distinct_colours needs >= max_objects={cfg.max_objects} colours, "
                        f"got {len(cfg.colours)}")


# -- sampling -------------------------------------------------------------------------------

def _radius_xy(shape: str, size: list[float]) -> float:
    return math.hypot(size[0], size[1]) if shape == "box" else size[0]


def _make_size(shape: str, base: float, rng: np.random.Generator) -> list[float]:
    if shape == "sphere":
        return [base]
    if shape == "box":
        return [round(base * float(rng.uniform(0.8, 1.2)), 4) for _ in range(3)]
    if shape == "cylinder":
        return [base, round(base * float(rng.uniform(0.8, 1.3)), 4)]
    return [round(base * 0.7, 4), round(base * 0.8, 4)]  # capsule: radius, half-length


def _object(i: int, shape: str, size_name: str, colour: str, material: str, cfg: SceneConfig,
            rng: np.random.Generator) -> dict[str, Any]:
    base = round(SIZE_SCALE[size_name] * cfg.size_scale, 4)
    size = _make_size(shape, base, rng)
    return {"name": f"obj{i}", "shape": shape, "size": size, "size_name": size_name, "colour": colour,
            "rgb": list(COLOURS[colour]), "material": material, "mass": round(_mass(shape, size, material), 5),
            "position": [0.0, 0.0, 0.0], "quaternion": [1.0, 0.0, 0.0, 0.0], "velocity": [0.0, 0.0, 0.0],
            "angular_velocity": [0.0, 0.0, 0.0], "motion": "resting"}


def _mass(shape: str, size: list[float], material: str) -> float:
    if shape == "sphere":
        vol = 4 / 3 * math.pi * size[0] ** 3
    elif shape == "box":
        vol = 8 * size[0] * size[1] * size[2]
    elif shape == "cylinder":
        vol = math.pi * size[0] ** 2 * 2 * size[1]
    else:
        vol = math.pi * size[0] ** 2 * 2 * size[1] + 4 / 3 * math.pi * size[0] ** 3
    return vol * MATERIALS[material]["density"]


def _set_motion(obj: dict[str, Any], motion: str, xy: np.ndarray, rng: np.random.Generator,
                aim: np.ndarray | None = None) -> None:
    """Initial pose/velocity for one of MOTIONS (rolling only for spheres, else sliding)."""
    hz = half_height(obj["shape"], obj["size"])
    if motion == "rolling" and obj["shape"] != "sphere":
        motion = "sliding"
    z = hz
    v = np.zeros(3)
    if motion == "dropped":
        z = hz + float(rng.uniform(0.4, 1.0))
    elif motion == "thrown":
        z = hz + float(rng.uniform(0.1, 0.5))
        d = rng.normal(size=2)
        v[:2] = d / (np.linalg.norm(d) + 1e-9) * rng.uniform(0.6, 1.5)
        v[2] = rng.uniform(1.5, 3.0)
    elif motion in ("rolling", "sliding"):
        d = rng.normal(size=2)
        v[:2] = d / (np.linalg.norm(d) + 1e-9) * rng.uniform(0.5, 1.2)
    if aim is not None and motion != "resting":
        d = aim - xy
        speed = max(float(np.linalg.norm(v[:2])), 0.8)
        v[:2] = d / (np.linalg.norm(d) + 1e-9) * speed
    obj["position"] = [round(float(xy[0]), 4), round(float(xy[1]), 4), round(z, 4)]  # on the floor: touching it
    obj["velocity"] = [round(float(x), 4) for x in v]
    if motion == "rolling":  # no slip: omega = z_hat x v / r
        r = obj["size"][0]
        obj["angular_velocity"] = [round(-v[1] / r, 4), round(v[0] / r, 4), 0.0]
    obj["motion"] = motion


def _place(objs: list[dict[str, Any]], area: tuple[float, float], rng: np.random.Generator) -> list[np.ndarray]:
    """Non-overlapping xy positions (rejection sampling; overlap allowed after 200 tries)."""
    out: list[np.ndarray] = []
    for o in objs:
        r = _radius_xy(o["shape"], o["size"])
        for _ in range(200):
            xy = np.array([rng.uniform(-area[0] / 2, area[0] / 2), rng.uniform(-area[1] / 2, area[1] / 2)])
            if all(np.linalg.norm(xy - p) > r + _radius_xy(q["shape"], q["size"]) + 0.02 for p, q in zip(out, objs)):
                break
        out.append(xy)
    return out


def _base_spec(cfg: SceneConfig, seed: int, preset: str, rng: np.random.Generator) -> dict[str, Any]:
    floor_colour = str(rng.choice(cfg.floor_colours))
    bg_colour = str(rng.choice(cfg.background_colours))
    cam_motion = str(rng.choice(cfg.camera_motions))
    jitter = cfg.camera_jitter_deg
    lighting = {"azimuth": 225.0, "elevation": 60.0, "intensity": 0.7, "ambient": 0.35,
                "shadows": cfg.quality.shadows}
    if cfg.vary_lighting:
        lighting.update(azimuth=round(float(rng.uniform(200, 340)), 2), elevation=round(float(rng.uniform(35, 80)), 2),
                        intensity=round(float(rng.uniform(0.5, 0.9)), 3),
                        ambient=round(float(rng.uniform(0.2, 0.45)), 3))
    speed = {"static": 0.0, "orbit": cfg.camera_speed_deg, "pan": cfg.camera_speed_deg / 2,
             "dolly": cfg.dolly_speed}[cam_motion]
    if cam_motion != "static" and rng.random() < 0.5:
        speed = -speed
    return {
        "spec_version": SPEC_VERSION, "preset": preset, "seed": int(seed), "probe": None,
        "render": {"width": cfg.width, "height": cfg.height, "fps": cfg.fps, "num_frames": cfg.num_frames,
                   "timestep": cfg.timestep,
                   "quality": {"shadowsize": cfg.quality.shadowsize, "offsamples": cfg.quality.offsamples,
                               "shadows": cfg.quality.shadows}},
        "gravity": [0.0, 0.0, -9.81],
        "floor": {"texture": str(rng.choice(cfg.floors)), "colour": floor_colour, "rgb": list(COLOURS[floor_colour]),
                  "friction": 0.8},
        "background": {"kind": str(rng.choice(cfg.backgrounds)), "colour": bg_colour, "rgb": list(COLOURS[bg_colour])},
        "lighting": lighting,
        "camera": {"motion": cam_motion, "fovy": cfg.fovy, "lookat": [0.0, 0.0, cfg.camera_height],
                   "distance": round(cfg.camera_distance * float(rng.uniform(0.95, 1.05)) if jitter
                                     else cfg.camera_distance, 4),
                   "azimuth": round(cfg.camera_azimuth + float(rng.uniform(-jitter, jitter)), 3),
                   "elevation": round(cfg.camera_elevation + float(rng.uniform(-jitter, jitter) / 2), 3),
                   "speed": speed},
        "objects": [],
    }


def _pick_colours(cfg: SceneConfig, n: int, rng: np.random.Generator) -> list[str]:
    if cfg.distinct_colours:
        return [str(c) for c in rng.choice(cfg.colours, size=n, replace=False)]
    return [str(c) for c in rng.choice(cfg.colours, size=n)]


def sample_spec(cfg: SceneConfig, seed: int, preset: str = "custom", index: int | None = None) -> dict[str, Any]:
    """Draw one scene spec from ``cfg`` with ``seed`` (pure: same inputs -> same spec)."""
    check_scene_config(cfg)
    rng = np.random.default_rng(int(seed))
    spec = _base_spec(cfg, seed, preset, rng)
    if cfg.probes:
        probe = cfg.probes[index % len(cfg.probes)] if index is not None else str(rng.choice(cfg.probes))
        spec["probe"] = probe
        spec["objects"] = _probe_objects(probe, cfg, rng)
        return spec
    n = int(rng.integers(cfg.min_objects, cfg.max_objects + 1))
    colours = _pick_colours(cfg, n, rng)
    objs = [_object(i, str(rng.choice(cfg.shapes)), str(rng.choice(cfg.sizes)), colours[i],
                    str(rng.choice(cfg.materials)), cfg, rng) for i in range(n)]
    xys = _place(objs, cfg.area, rng)
    for i, (o, xy) in enumerate(zip(objs, xys)):
        aim = None
        if n > 1 and rng.random() < cfg.aim_fraction:
            aim = xys[(i + 1) % n]
        _set_motion(o, str(rng.choice(cfg.motions)), xy, rng, aim)
    spec["objects"] = objs
    return spec


def _probe_objects(probe: str, cfg: SceneConfig, rng: np.random.Generator) -> list[dict[str, Any]]:
    """Objects of one physics probe: drop, throw, collide, roll or stack (exact, simple set-ups)."""
    colours = _pick_colours(cfg, min(3, len(cfg.colours)) if cfg.distinct_colours else 3, rng)
    mat = str(rng.choice(cfg.materials))
    size = str(rng.choice(cfg.sizes))
    if probe == "drop":
        o = _object(0, str(rng.choice([s for s in cfg.shapes if s in ("sphere", "box")] or ["sphere"])),
                    size, colours[0], mat, cfg, rng)
        _set_motion(o, "dropped", np.array([rng.uniform(-0.2, 0.2), rng.uniform(-0.1, 0.1)]), rng)
        return [o]
    if probe == "throw":
        o = _object(0, "sphere", size, colours[0], mat, cfg, rng)
        _set_motion(o, "thrown", np.array([rng.uniform(-0.5, -0.3), rng.uniform(-0.1, 0.1)]), rng)
        o["velocity"][:2] = [round(float(rng.uniform(0.6, 1.0)), 4), 0.0]
        return [o]
    if probe == "roll":
        o = _object(0, "sphere", size, colours[0], mat, cfg, rng)
        x0 = float(rng.uniform(-0.6, -0.4))
        _set_motion(o, "rolling", np.array([x0, rng.uniform(-0.1, 0.1)]), rng, aim=np.array([0.6, 0.0]))
        return [o]
    if probe == "collide":
        a = _object(0, "sphere", size, colours[0], mat, cfg, rng)
        b = _object(1, "sphere", size, colours[1], mat, cfg, rng)
        ya = float(rng.uniform(-0.05, 0.05))
        _set_motion(a, "rolling", np.array([-0.5, ya]), rng, aim=np.array([0.0, ya]))
        if rng.random() < 0.5:
            _set_motion(b, "resting", np.array([0.1, ya + float(rng.uniform(-0.03, 0.03))]), rng)
        else:
            _set_motion(b, "rolling", np.array([0.5, ya]), rng, aim=np.array([0.0, ya]))
        return [a, b]
    if probe == "stack":
        n = int(rng.integers(2, 4))
        objs, z = [], 0.0
        for i in range(n):
            o = _object(i, "box", size, colours[i % len(colours)], "wood", cfg, rng)
            hz = o["size"][2]
            off = rng.normal(scale=0.3 * o["size"][0], size=2) if i else np.zeros(2)
            o["position"] = [round(float(off[0]), 4), round(float(off[1]), 4), round(z + hz, 4)]
            z += 2 * hz  # each box touches the one below: a resting stack has no collision events
            objs.append(o)
        return objs
    raise SpecError(f"probe {probe!r} is unknown; valid: {', '.join(PROBES)}")


# -- validation and perturbation --------------------------------------------------------------

_SIZE_LEN = {"sphere": 1, "box": 3, "cylinder": 2, "capsule": 2}
_SIZE_DOC = {"sphere": "radius", "box": "3 half-extents", "cylinder": "radius, half-height",
             "capsule": "radius, half-length"}


def _vec(spec: dict, path: str, value: Any, n: int) -> None:
    if not isinstance(value, (list, tuple)) or len(value) != n:
        raise SpecError(f"scene spec field {path}: expected {n} numbers, got {value!r}")
    for v in value:
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
            raise SpecError(f"scene spec field {path}: expected finite numbers, got {value!r}")


def validate_spec(spec: Any) -> None:
    """Check a scene spec; raise :class:`SpecError` naming the first bad field."""
    if not isinstance(spec, dict):
        raise SpecError(f"scene spec must be a mapping, got {type(spec).__name__}")
    for key in ("render", "camera", "objects", "floor", "background", "lighting", "gravity"):
        if key not in spec:
            raise SpecError(f"scene spec is missing field {key!r}")
    r = spec["render"]
    for k, lo, hi in (("width", 8, 4096), ("height", 8, 4096), ("num_frames", 1, 100000)):
        v = r.get(k)
        if not isinstance(v, int) or isinstance(v, bool) or not lo <= v <= hi:
            raise SpecError(f"scene spec field render.{k}: expected an integer in [{lo}, {hi}], got {v!r}")
    if r.get("segmentation", "auto") not in ("auto", "raycast", "raster"):
        raise SpecError(f"scene spec field render.segmentation: {r.get('segmentation')!r}; "
                        "valid: auto, raycast, raster")
    fps, dt = r.get("fps"), r.get("timestep")
    if not isinstance(fps, (int, float)) or not fps > 0:
        raise SpecError(f"scene spec field render.fps: expected a number > 0, got {fps!r}")
    if not isinstance(dt, (int, float)) or not 0 < dt <= 1.0 / fps:
        raise SpecError(f"scene spec field render.timestep: expected 0 < timestep <= 1/fps, got {dt!r}")
    _vec(spec, "gravity", spec["gravity"], 3)
    cam = spec["camera"]
    if cam.get("motion") not in CAMERA_MOTIONS:
        raise SpecError(f"scene spec field camera.motion: {cam.get('motion')!r}; valid: {', '.join(CAMERA_MOTIONS)}")
    _vec(spec, "camera.lookat", cam.get("lookat"), 3)
    if not isinstance(cam.get("fovy"), (int, float)) or not 1 <= cam["fovy"] <= 170:
        raise SpecError(f"scene spec field camera.fovy: expected degrees in [1, 170], got {cam.get('fovy')!r}")
    if not isinstance(cam.get("distance"), (int, float)) or not cam["distance"] > 0:
        raise SpecError(f"scene spec field camera.distance: expected > 0, got {cam.get('distance')!r}")
    objs = spec["objects"]
    if not isinstance(objs, list) or not objs:
        raise SpecError("scene spec field objects: expected a non-empty list of objects")
    names = set()
    for i, o in enumerate(objs):
        p = f"objects[{i}]"
        if not isinstance(o, dict):
            raise SpecError(f"scene spec field {p}: expected a mapping, got {o!r}")
        if o.get("shape") not in SHAPES:
            raise SpecError(f"scene spec field {p}.shape: {o.get('shape')!r}; valid: {', '.join(SHAPES)}")
        n = _SIZE_LEN[o["shape"]]
        _vec(spec, f"{p}.size", o.get("size"), n)
        if any(s <= 0 for s in o["size"]):
            raise SpecError(f"scene spec field {p}.size: {o['shape']} needs {_SIZE_DOC[o['shape']]} > 0, "
                            f"got {o['size']}")
        if not isinstance(o.get("mass"), (int, float)) or not o["mass"] > 0 or not math.isfinite(o["mass"]):
            raise SpecError(f"scene spec field {p}.mass: expected a finite number > 0 (kg), got {o.get('mass')!r}")
        if o.get("material") not in MATERIALS:
            raise SpecError(f"scene spec field {p}.material: {o.get('material')!r}; valid: {', '.join(MATERIALS)}")
        for k, n in (("rgb", 3), ("position", 3), ("quaternion", 4), ("velocity", 3), ("angular_velocity", 3)):
            _vec(spec, f"{p}.{k}", o.get(k), n)
        if not isinstance(o.get("name"), str) or not o["name"] or o["name"] in names or o["name"] == "floor":
            raise SpecError(f"scene spec field {p}.name: must be a unique non-empty string other than 'floor', "
                            f"got {o.get('name')!r}")
        names.add(o["name"])
    if len(objs) > 254:
        raise SpecError(f"scene spec field objects: at most 254 objects (uint8 segmentation), got {len(objs)}")


def perturb_spec(spec: dict[str, Any], scale: float, seed: int) -> dict[str, Any]:
    """A copy of ``spec`` with tiny Gaussian perturbations of its initial conditions.

    Positions move by N(0, scale) metres in x and y (z stays, so resting objects stay on the
    floor) and velocities by N(0, scale) metres per second in every axis. ``scale=0`` returns an
    identical copy (same frames, same hash). Used to measure the "physical variance" of a scene.

    Args:
        spec: a valid scene spec.
        scale: standard deviation of the perturbation (metres, metres per second); >= 0.
        seed: seed of the perturbation.
    """
    if not (isinstance(scale, (int, float)) and scale >= 0 and math.isfinite(scale)):
        raise ValueError(f"perturb_spec: scale must be a finite number >= 0, got {scale!r}")
    validate_spec(spec)
    out = copy.deepcopy(spec)
    if scale == 0:
        return out
    rng = np.random.default_rng([int(seed), 0x5EED])
    for o in out["objects"]:
        dp = rng.normal(scale=scale, size=2)
        dv = rng.normal(scale=scale, size=3)
        o["position"] = [o["position"][0] + float(dp[0]), o["position"][1] + float(dp[1]), o["position"][2]]
        o["velocity"] = [v + float(d) for v, d in zip(o["velocity"], dv)]
    out["perturbation"] = {"scale": float(scale), "seed": int(seed), "parent_sha256": spec_sha256(spec)}
    return out


# -- camera path ------------------------------------------------------------------------------

def forward_vector(azimuth: float, elevation: float) -> np.ndarray:
    """Unit viewing direction of MuJoCo's free camera (degrees; elevation < 0 looks down)."""
    az, el = math.radians(azimuth), math.radians(elevation)
    return np.array([math.cos(el) * math.cos(az), math.cos(el) * math.sin(az), math.sin(el)])


def camera_frames(spec: dict[str, Any]) -> list[dict[str, Any]]:
    """Per-frame camera of a spec: lookat, distance, azimuth, elevation and world position.

    ``orbit`` turns the azimuth around the lookat point at ``speed`` degrees per second; ``pan``
    keeps the camera in place and turns its view direction at ``speed`` degrees per second;
    ``dolly`` moves the camera towards the lookat point at ``speed`` metres per second.
    """
    cam, r = spec["camera"], spec["render"]
    lookat0 = np.asarray(cam["lookat"], float)
    d0, az0, el = float(cam["distance"]), float(cam["azimuth"]), float(cam["elevation"])
    speed = float(cam.get("speed", 0.0))
    pos0 = lookat0 - d0 * forward_vector(az0, el)
    out = []
    for i in range(int(r["num_frames"])):
        t = i / float(r["fps"])
        lookat, d, az = lookat0, d0, az0
        if cam["motion"] == "orbit":
            az = az0 + speed * t
        elif cam["motion"] == "pan":
            az = az0 + speed * t
            lookat = pos0 + d0 * forward_vector(az, el)
        elif cam["motion"] == "dolly":
            d = max(0.3, d0 - speed * t)
        pos = lookat - d * forward_vector(az, el)
        out.append({"lookat": [round(float(x), 6) for x in lookat], "distance": round(d, 6),
                    "azimuth": round(az, 6), "elevation": round(el, 6),
                    "position": [round(float(x), 6) for x in pos]})
    return out
