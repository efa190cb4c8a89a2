"""MuJoCo physics of a scene spec: the MJCF model, the simulation, and its contact events.

One simulation per scene (``timestep`` from the spec, shortened to ``1 / (fps * steps_per_frame)``
so frames fall exactly on ``i / fps``). Object states are recorded at every frame; contacts are
checked at every step: a pair of geoms that starts touching with an approach speed above
:data:`EVENT_MIN_SPEED` is a ``collision`` event. This is the one source of truth that every
renderer shows and the ground truth (:mod:`skyloom.datagen.groundtruth`) is assembled from, as in
kubric, where simulator and renderer are two views of one scene.

Example:
    >>> from skyloom.datagen.scenes import SceneConfig, sample_spec
    >>> sim = simulate(sample_spec(SceneConfig(num_frames=4), seed=0))
    >>> len(sim.states), sorted(sim.states[0][0])
    (4, ['angular_velocity', 'name', 'position', 'quaternion', 'velocity'])
"""

from __future__ import annotations

import logging
import math
import os
from typing import Any
from xml.sax.saxutils import quoteattr

import numpy as np

from skyloom.datagen.scenes import MATERIALS, validate_spec
from skyloom.geometry import quat_to_mat

# Headless GL for the renderers: MuJoCo picks its GL backend when it is first imported, which
# happens here (mujoco_render imports this module first).
os.environ.setdefault("MUJOCO_GL", "egl")

logger = logging.getLogger(__name__)

STAT_EXTENT = 4.0  # m: fixed model extent -> the same depth range (znear, zfar) and GL context for every scene
CONTACT_TIMECONST = 0.02  # s, MuJoCo solref time constant of object contacts (see scenes.MATERIALS)
EVENT_MIN_SPEED = 0.2  # m/s: slower contact onsets (settling, resting) are not collision events
EVENT_DEBOUNCE_S = 0.1  # a pair must be apart this long before touching again counts again


class SimulationError(RuntimeError):
    """The simulation became unstable (NaN, Inf or huge values): the scene cannot be rendered."""


def _f(v) -> str:
    return " ".join(f"{float(x):.6g}" for x in v)


def steps_per_frame(spec: dict[str, Any]) -> int:
    """Physics steps per frame: the spec's timestep, shortened so frames fall exactly on i / fps."""
    r = spec["render"]
    return max(1, math.ceil(1.0 / (float(r["fps"]) * float(r["timestep"])) - 1e-9))


def build_mjcf(spec: dict[str, Any]) -> str:
    """The MJCF model of a scene spec (floor, skybox, light, one free body per object)."""
    r, q, cam, light = spec["render"], spec["render"]["quality"], spec["camera"], spec["lighting"]
    floor, bg = spec["floor"], spec["background"]
    frgb = np.asarray(floor["rgb"], float)
    builtin = "checker"
    mark = ""
    if floor["texture"] == "plain":
        rgb2 = frgb
    elif floor["texture"] == "checker":
        rgb2 = frgb * 0.7
    else:  # grid: plain tiles with darker edge lines
        rgb2, mark = frgb, f' mark="edge" markrgb="{_f(frgb * 0.5)}"'
    bg_rgb = np.asarray(bg["rgb"], float)
    bg2 = bg_rgb if bg["kind"] == "plain" else bg_rgb * 0.45
    el, az = math.radians(light["elevation"]), math.radians(light["azimuth"])
    ldir = -np.array([math.cos(el) * math.cos(az), math.cos(el) * math.sin(az), math.sin(el)])
    amb = light["ambient"]
    parts = [
        '<mujoco model="skyloom">',
        f'<statistic extent="{STAT_EXTENT}" center="0 0 0.3"/>',
        f'<option timestep="{1.0 / (float(r["fps"]) * steps_per_frame(spec)):.12g}" gravity="{_f(spec["gravity"])}"/>',
        f'<visual><global fovy="{cam["fovy"]:.6g}" offwidth="{r["width"]}" offheight="{r["height"]}"/>',
        f'<quality shadowsize="{int(q["shadowsize"])}" offsamples="{int(q["offsamples"])}"/>',
        f'<headlight ambient="{_f([amb] * 3)}" diffuse="0.35 0.35 0.35" specular="0.05 0.05 0.05"/></visual>',
        "<asset>",
        f'<texture name="sky" type="skybox" builtin="gradient" rgb1="{_f(bg_rgb)}" rgb2="{_f(bg2)}" '
        'width="32" height="32"/>',
        f'<texture name="floortex" type="2d" builtin="{builtin}" rgb1="{_f(frgb)}" rgb2="{_f(rgb2)}" '
        f'width="64" height="64"{mark}/>',
        '<material name="floor" texture="floortex" texrepeat="2 2" texuniform="true" reflectance="0"/>',
    ]
    for o in spec["objects"]:
        m = MATERIALS[o["material"]]
        parts.append(f'<material name="m_{o["name"]}" rgba="{_f(o["rgb"])} 1" specular="{m["specular"]}" '
                     f'shininess="{m["shininess"]}" reflectance="0"/>')
    parts += ["</asset>", "<worldbody>",
              # a wide spot light, not a directional one: MuJoCo's directional shadow map leaves
              # acne stripes on a large floor at the edge of its shadow box (seen at 256 px)
              (f'<light name="key" directional="false" cutoff="70" exponent="1" '
              f'castshadow="{str(bool(light["shadows"])).lower()}" pos="{_f(-ldir * 4.5)}" dir="{_f(ldir)}" '
              f'diffuse="{_f([light["intensity"]] * 3)}" specular="0.2 0.2 0.2"/>'),
              f'<geom name="floor" type="plane" size="20 20 0.1" material="floor" '
              f'friction="{floor["friction"]} 0.005 0.0001"/>']
    for o in spec["objects"]:
        m = MATERIALS[o["material"]]
        parts.append(
            f'<body name={quoteattr(o["name"])} pos="{_f(o["position"])}" quat="{_f(o["quaternion"])}">'
            f'<freejoint name={quoteattr(o["name"])}/>'
            f'<geom name={quoteattr(o["name"])} type="{o["shape"]}" size="{_f(o["size"])}" mass="{o["mass"]:.6g}" '
            f'material="m_{o["name"]}" condim="6" friction="{m["friction"]} 0.005 0.0002" '
            f'solref="{CONTACT_TIMECONST} {m["damping"]}"/></body>')
    parts += ["</worldbody>", "</mujoco>"]
    return "\n".join(parts)


def load_model(spec: dict[str, Any]):
    """Compile the spec's MJCF and set the initial velocities; returns (model, data)."""
    import mujoco

    model = mujoco.MjModel.from_xml_string(build_mjcf(spec))
    data = mujoco.MjData(model)
    for i, o in enumerate(spec["objects"]):
        adr = model.jnt_dofadr[i]
        q = np.asarray(o["quaternion"], float)
        rot = quat_to_mat(q / np.linalg.norm(q))
        data.qvel[adr:adr + 3] = o["velocity"]  # world frame for a free joint
        data.qvel[adr + 3:adr + 6] = rot.T @ np.asarray(o["angular_velocity"], float)  # body frame
    mujoco.mj_forward(model, data)
    return model, data


class Simulation:
    """Steps one scene and records per-frame object states and contact events."""

    def __init__(self, spec: dict[str, Any]) -> None:
        import mujoco

        self._mj = mujoco
        self.spec = spec
        self.model, self.data = load_model(spec)
        r = spec["render"]
        self.fps = float(r["fps"])
        self.num_frames = int(r["num_frames"])
        self.steps_per_frame = steps_per_frame(spec)
        self.names = [o["name"] for o in spec["objects"]]
        self.geom_owner = {}
        for g in range(self.model.ngeom):
            self.geom_owner[g] = mujoco.mj_id2name(self.model, mujoco.mjtObj.mjOBJ_GEOM, g)
        self.events: list[dict[str, Any]] = []
        self._last_touch: dict[tuple[int, int], float] = {}  # geom pair -> last time in contact
        self._bad = [int(mujoco.mjtWarning.mjWARN_BADQACC), int(mujoco.mjtWarning.mjWARN_BADQVEL),
                     int(mujoco.mjtWarning.mjWARN_BADQPOS)]
        self.states: list[list[dict[str, Any]]] = []

    def _body_vel(self, name: str, qvel: np.ndarray | None = None) -> np.ndarray:
        if name == "floor":
            return np.zeros(3)
        adr = self.model.jnt_dofadr[self.names.index(name)]
        return np.asarray((self.data.qvel if qvel is None else qvel)[adr:adr + 3])

    def _check(self) -> None:
        d = self.data
        if any(d.warning[k].number for k in self._bad) or not math.isfinite(float(d.qvel.sum()) + float(d.qpos.sum())):
            raise SimulationError(f"simulation blew up at t={d.time:.4f} s (NaN/Inf or huge accelerations); "
                                  "check the spec's velocities, masses and timestep")

    def _contacts(self, t: float, qvel: np.ndarray) -> None:
        """Contacts found by the step that started at time ``t`` with velocities ``qvel``."""
        d = self.data
        ncon = d.ncon
        if ncon:
            last_touch = self._last_touch
            for k, (g1, g2) in enumerate(np.asarray(d.contact.geom)[:ncon].tolist()):  # (ncon, 2)
                key = (g1, g2) if g1 < g2 else (g2, g1)
                last = last_touch.get(key)
                last_touch[key] = t
                if last is not None and t - last <= EVENT_DEBOUNCE_S:
                    continue  # still touching (or a second contact point of the same pair this step)
                a, b = self.geom_owner[g1], self.geom_owner[g2]
                if a == b:
                    continue
                pair = (a, b) if (a == "floor" or (b != "floor" and a < b)) else (b, a)
                normal = np.asarray(d.contact.frame[k][:3])
                speed = abs(float(np.dot(self._body_vel(a, qvel) - self._body_vel(b, qvel), normal)))
                if speed < EVENT_MIN_SPEED:
                    continue
                frame = min(self.num_frames - 1, math.ceil(t * self.fps - 1e-9))
                self.events.append({"frame": frame, "t": round(t, 5), "kind": "collision", "a": pair[0], "b": pair[1],
                                    "speed": round(speed, 4)})

    def _record(self, index: int) -> None:
        d, out = self.data, []
        for i, name in enumerate(self.names):
            body = i + 1
            adr = self.model.jnt_dofadr[i]
            rot = np.asarray(d.xmat[body]).reshape(3, 3)
            out.append({"name": name, "position": [round(float(x), 6) for x in d.xpos[body]],
                        "quaternion": [round(float(x), 6) for x in d.xquat[body]],
                        "velocity": [round(float(x), 6) for x in d.qvel[adr:adr + 3]],
                        "angular_velocity": [round(float(x), 6) for x in rot @ d.qvel[adr + 3:adr + 6]]})
        self.states.append(out)

    def run(self, on_frame=None) -> None:
        """Simulate ``num_frames`` frames; ``on_frame(index, model, data)`` after each is recorded."""
        for i in range(self.num_frames):
            if i:
                for _ in range(self.steps_per_frame):
                    t, qvel = self.data.time, self.data.qvel.copy()
                    self._mj.mj_step(self.model, self.data)
                    self._contacts(t, qvel)
            self._check()  # MuJoCo's warning counters accumulate: once a frame is enough
            self._record(i)
            if on_frame is not None:
                on_frame(i, self.model, self.data)


def simulate(spec: dict[str, Any]) -> Simulation:
    """Validate ``spec`` and run its physics for ``num_frames`` frames, without rendering.

    Raises:
        SpecError: the spec is invalid (the message names the field).
        SimulationError: the simulation blew up.
    """
    validate_spec(spec)
    sim = Simulation(spec)
    sim.run()
    return sim
