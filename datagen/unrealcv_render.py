"""UnrealCV backend: physics from MuJoCo, pixels from a running Unreal Engine game.

The scene is simulated by :mod:`skyloom.datagen.simulate`, exactly as for the MuJoCo backend (so
poses, velocities, collision events and motion facts are the same ground truth); each object is
then spawned in the game through the UnrealCV plugin, posed frame by frame, and the camera's
``lit`` image, ``depth`` and ``object_mask`` are read back with the ``unrealcv`` client
(``Client((host, port))``; every message framed as uint32 magic 0x9E2B83C1, uint32 length,
payload). Segmentation comes from the object mask: each object gets a unique
annotation colour (``vset /object/<name>/color r g b``) that is mapped back to its seg_id.

Conventions: Unreal is left-handed in centimetres (x forward, y right, z up); skyloom is
right-handed in metres (z up). A point (x, y, z) m is sent as (100 x, -100 y, 100 z) cm
(``unit_scale``); camera yaw = -azimuth, pitch = elevation; UnrealCV depth (cm) is divided by
``unit_scale``. Object classes per shape are configurable (``renderer_options.sphere_class`` ...): your
project must provide them (e.g. Blueprints around the engine's basic shapes, 100 cm across) and,
for the object colour, a Blueprint function called as ``vbp <object> <colour_function> r g b``.
See docs/datagen-render.md for launching a packaged game headless.
"""

from __future__ import annotations

import io
import logging
import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from skyloom.datagen.groundtruth import assemble_ground_truth
from skyloom.datagen.renderers import RenderOutput
from skyloom.datagen.scenes import camera_frames, spec_sha256, validate_spec
from skyloom.datagen.simulate import simulate
from skyloom.errors import UserError
from skyloom.geometry import quat_to_mat

logger = logging.getLogger(__name__)


class UnrealCVError(UserError, RuntimeError):
    """The UnrealCV server answered a command with an error."""


@dataclass(frozen=True)
class UnrealCVOptions:
    """Where the UnrealCV server is and how scene objects map to the game's actor classes.

    Set in a render config as ``renderer_options`` (``--set renderer_options.port=9001``).
    """

    host: str = "127.0.0.1"
    port: int = 9000
    timeout_s: float = 30.0  # per request; a dropped connection fails fast and Ray retries the task
    unit_scale: float = 100.0  # Unreal units (cm) per metre
    sphere_class: str = "BP_Sphere"  # actor classes your project provides, 100 cm across
    box_class: str = "BP_Cube"
    cylinder_class: str = "BP_Cylinder"
    capsule_class: str = "BP_Capsule"
    colour_function: str = "SetColour"  # blueprint function called as `vbp <obj> <fn> r g b`; "" skips


def annotation_colour(seg_id: int) -> tuple[int, int, int]:
    """A unique, non-black mask colour for ``seg_id`` (1..254)."""
    return ((seg_id * 97 + 31) % 256, (seg_id * 53 + 80) % 256, (seg_id * 181 + 40) % 256)


def to_unreal(p, scale: float) -> list[float]:
    """Right-handed metres -> Unreal's left-handed centimetres (flip y)."""
    return [p[0] * scale, -p[1] * scale, p[2] * scale]


def quat_to_rotator(q) -> tuple[float, float, float]:
    """(pitch, yaw, roll) degrees of Unreal's FRotator for a skyloom (w, x, y, z) quaternion."""
    q = np.asarray(q, float)
    s = np.diag([1.0, -1.0, 1.0])
    r = s @ quat_to_mat(q / np.linalg.norm(q)) @ s  # same rotation in the mirrored (left-handed) frame
    x, y, z = r[:, 0], r[:, 1], r[:, 2]
    pitch = math.degrees(math.atan2(x[2], math.hypot(x[0], x[1])))
    yaw = math.degrees(math.atan2(x[1], x[0]))
    sy = np.array([-math.sin(math.radians(yaw)), math.cos(math.radians(yaw)), 0.0])
    roll = math.degrees(math.atan2(float(z @ sy), float(y @ sy)))
    return pitch, yaw, roll


def _scale(o: dict[str, Any]) -> list[float]:
    s = o["size"]
    if o["shape"] == "sphere":
        return [2 * s[0]] * 3
    if o["shape"] == "box":
        return [2 * v for v in s]
    if o["shape"] == "cylinder":
        return [2 * s[0], 2 * s[0], 2 * s[1]]
    return [2 * s[0], 2 * s[0], 2 * (s[1] + s[0])]


def _fmt(v) -> str:
    return " ".join(f"{float(x):.4f}" for x in v)


def decode_image(data: Any, what: str) -> np.ndarray:
    """PNG bytes from ``vget ... png`` -> uint8 RGB (H, W, 3)."""
    import cv2

    if isinstance(data, str) or not data:
        raise UnrealCVError(f"{what}: expected PNG bytes, got {str(data)[:200]!r}")
    img = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED)
    if img is None:
        raise UnrealCVError(f"{what}: reply is not a decodable PNG ({len(data)} bytes)")
    if img.ndim == 2:
        img = np.repeat(img[..., None], 3, axis=-1)
    return np.ascontiguousarray(img[..., :3][..., ::-1])  # BGR(A) -> RGB


def decode_npy(data: Any, what: str) -> np.ndarray:
    """``vget ... npy`` bytes -> float32 (H, W)."""
    if isinstance(data, str) or not data:
        raise UnrealCVError(f"{what}: expected npy bytes, got {str(data)[:200]!r}")
    arr = np.load(io.BytesIO(data), allow_pickle=False)
    return np.asarray(arr, np.float32).reshape(arr.shape[0], arr.shape[1])


def _fit(img: np.ndarray, h: int, w: int, nearest: bool) -> np.ndarray:
    if img.shape[:2] == (h, w):
        return img
    import cv2

    return cv2.resize(img, (w, h), interpolation=cv2.INTER_NEAREST if nearest else cv2.INTER_AREA)


class UnrealCVRenderer:
    """Renders specs in a running UE game over UnrealCV (one connection per instance)."""

    name = "unrealcv"
    config_class = UnrealCVOptions

    def __init__(self, config: UnrealCVOptions | None = None) -> None:
        o = config or UnrealCVOptions()
        self.options = o
        self.host, self.port = o.host, int(o.port)
        self.timeout_s, self.unit_scale = float(o.timeout_s), float(o.unit_scale)
        self.classes = {"sphere": o.sphere_class, "box": o.box_class, "cylinder": o.cylinder_class,
                        "capsule": o.capsule_class}
        self.colour_function = o.colour_function
        self._client = None
        self._server_version = ""

    @property
    def version(self) -> str:
        import unrealcv

        return f"client {unrealcv.__version__}; server {self._server_version or 'unknown'}"

    def _connect(self):
        if self._client is not None and self._client.isconnected():
            return self._client
        import unrealcv

        client = unrealcv.Client((self.host, self.port))
        # fail fast on a dropped connection (the client's default waits ~40 s): Ray retries the task
        client.RECONNECT_ATTEMPTS, client.RECONNECT_BASE_DELAY = 1, 0.05
        if not client.connect(timeout=self.timeout_s):
            raise ConnectionError(f"cannot connect to an UnrealCV server at {self.host}:{self.port}: is the game "
                                  "running with the UnrealCV plugin, listening on this port (unrealcv.ini Port=)?")
        self._client = client
        v = client.request("vget /unrealcv/version", timeout=self.timeout_s)
        self._server_version = v if isinstance(v, str) and not v.lower().startswith("error") else ""
        return client

    def close(self) -> None:
        if self._client is not None:
            self._client.disconnect()
            self._client = None

    def _batch(self, commands: list[str], check: bool = True) -> list[Any]:
        client = self._connect()
        try:
            replies = client.request(commands, timeout=self.timeout_s) if len(commands) > 1 else \
                [client.request(commands[0], timeout=self.timeout_s)]
        except (ConnectionError, TimeoutError):
            self.close()  # drop the broken socket: the retried task reconnects
            raise
        if replies is None or any(r is None for r in replies):
            self.close()
            raise ConnectionError(f"UnrealCV server at {self.host}:{self.port} dropped the connection")
        if check:
            for cmd, rep in zip(commands, replies):
                if isinstance(rep, str) and rep.lower().startswith("error"):
                    raise UnrealCVError(f"UnrealCV command {cmd!r} failed: {rep}")
        return replies

    def render(self, spec: dict[str, Any]) -> RenderOutput:
        """Simulate with MuJoCo, then pose and capture every frame in the game."""
        validate_spec(spec)
        sim = simulate(spec)
        cams = camera_frames(spec)
        r = spec["render"]
        T, H, W = int(r["num_frames"]), int(r["height"]), int(r["width"])
        sc = self.unit_scale
        tag = spec_sha256(spec)[:8]
        names = [f"skyloom_{tag}_{o['name']}" for o in spec["objects"]]
        hfov = math.degrees(2 * math.atan(math.tan(math.radians(spec["camera"]["fovy"]) / 2) * W / H))
        self._batch([f"vset /camera/0/size {W} {H}"], check=False)  # older servers lack it: images are resized
        setup = [f"vset /camera/0/fov {hfov:.4f}"]
        colours = {}
        for k, (o, n) in enumerate(zip(spec["objects"], names)):
            colours[k + 1] = annotation_colour(k + 1)
            setup += [f"vset /objects/spawn {self.classes[o['shape']]} {n}",
                      f"vset /object/{n}/scale {_fmt(_scale(o))}",
                      "vset /object/{}/color {} {} {}".format(n, *colours[k + 1])]
            if self.colour_function:
                setup.append(f"vbp {n} {self.colour_function} {_fmt(o['rgb'])}")
        frames = np.empty((T, H, W, 3), np.uint8)  # (T, H, W, 3)
        seg = np.zeros((T, H, W), np.uint8)  # (T, H, W)
        depth = np.empty((T, H, W), np.float32)  # (T, H, W)
        try:
            self._batch(setup)
            for i in range(T):
                cmds = []
                for n, st in zip(names, sim.states[i]):
                    cmds += [f"vset /object/{n}/location {_fmt(to_unreal(st['position'], sc))}",
                             f"vset /object/{n}/rotation {_fmt(quat_to_rotator(st['quaternion']))}"]
                c = cams[i]
                cmds += [f"vset /camera/0/location {_fmt(to_unreal(c['position'], sc))}",
                         f"vset /camera/0/rotation {_fmt([c['elevation'], -c['azimuth'], 0.0])}"]
                self._batch(cmds)
                lit, dep, mask = self._batch(["vget /camera/0/lit png", "vget /camera/0/depth npy",
                                              "vget /camera/0/object_mask png"], check=False)
                frames[i] = _fit(decode_image(lit, f"frame {i} lit"), H, W, nearest=False)
                depth[i] = _fit(decode_npy(dep, f"frame {i} depth"), H, W, nearest=True) / sc
                m = _fit(decode_image(mask, f"frame {i} object_mask"), H, W, nearest=True).astype(np.int16)
                for sid, col in colours.items():
                    seg[i][np.all(np.abs(m - np.array(col, np.int16)) <= 3, axis=-1)] = sid
        finally:
            try:
                self._batch([f"vset /object/{n}/destroy" for n in names], check=False)
            except ConnectionError:
                pass
        gt = assemble_ground_truth(spec, sim.states, sim.events, seg, cams, renderer=self.name,
                                   renderer_version=self.version)
        return RenderOutput(frames=frames, segmentation=seg, depth=depth, gt=gt)
