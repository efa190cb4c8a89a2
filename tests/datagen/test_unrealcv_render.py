"""The UnrealCV backend against a local TCP server that speaks UnrealCV's framing.

The server (127.0.0.1, a free port) frames every message as uint32 magic 0x9E2B83C1, uint32
length, payload; greets with "connected to <project>"; answers "{id}:{reply}" to "{id}:{command}";
records every command; and serves canned 64x64 images: a lit PNG, a depth npy (250 cm) and an
object mask where each spawned object is a square painted in the annotation colour it was given.
"""

from __future__ import annotations

import dataclasses
import io
import re
import socket
import struct
import threading

import cv2
import numpy as np
import pytest

MAGIC = 0x9E2B83C1
SIZE = 64
TEMPLATES = ["vget /unrealcv/commands", "vget /unrealcv/version", "vset /camera/[id]/size [w] [h]",
             "vset /camera/[id]/fov [fov]", "vset /objects/spawn [class] [name]",
             "vset /object/[name]/scale [x] [y] [z]",
             "vset /object/[name]/color [r] [g] [b]", "vbp [name] [fn] [r] [g] [b]",
             "vset /object/[name]/location [x] [y] [z]", "vset /object/[name]/rotation [p] [y] [r]",
             "vset /camera/[id]/location [x] [y] [z]", "vset /camera/[id]/rotation [p] [y] [r]",
             "vget /camera/[id]/lit png", "vget /camera/[id]/depth npy", "vget /camera/[id]/object_mask png",
             "vset /object/[name]/destroy"]


def lit_image() -> np.ndarray:
    img = np.zeros((SIZE, SIZE, 3), np.uint8)  # (H, W, 3) RGB
    img[..., 0] = np.linspace(0, 255, SIZE, dtype=np.uint8)[None, :]
    img[..., 1] = 120
    img[..., 2] = np.linspace(255, 0, SIZE, dtype=np.uint8)[:, None]
    return img


def square(k: int) -> tuple[int, int, int, int]:
    """x0, y0, x1, y1 (64 px image) of the k-th spawned object's square in the mask."""
    return 8 + 16 * k, 8, 8 + 16 * k + 12, 20


class FakeUnrealCV:
    def __init__(self) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(4)
        self.port = self.sock.getsockname()[1]
        self.commands: list[str] = []
        self.colours: dict[str, tuple[int, int, int]] = {}
        self.spawned: list[str] = []
        self.connections = 0
        self.drop_first_lit = False  # close the first connection at its first lit request
        self._stop = False
        threading.Thread(target=self._serve, daemon=True).start()

    def _recv(self, conn, n):
        buf = b""
        while len(buf) < n:
            chunk = conn.recv(n - len(buf))
            if not chunk:
                return None
            buf += chunk
        return buf

    def _send(self, conn, payload: bytes) -> None:
        conn.sendall(struct.pack("I", MAGIC) + struct.pack("I", len(payload)) + payload)

    def _serve(self) -> None:
        while not self._stop:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self._handle, args=(conn,), daemon=True).start()

    def _handle(self, conn) -> None:
        self.connections += 1
        first = self.connections == 1
        self._send(conn, b"connected to SkyloomTestProject")
        while True:
            head = self._recv(conn, 8)
            if head is None:
                return
            magic, n = struct.unpack("II", head)
            assert magic == MAGIC
            payload = self._recv(conn, n)
            if payload is None:
                return
            mid, _, cmd = payload.partition(b":")
            if first and self.drop_first_lit and cmd == b"vget /camera/0/lit png":
                conn.close()  # the game went away mid-scene
                return
            self._send(conn, mid + b":" + self.reply(cmd.decode()))

    def reply(self, cmd: str) -> bytes:
        self.commands.append(cmd)
        if cmd == "vget /unrealcv/commands":
            return "\n".join(TEMPLATES).encode()
        if cmd == "vget /unrealcv/version":
            return b"v1.1.0-fake"
        if m := re.fullmatch(r"vset /objects/spawn (\S+) (\S+)", cmd):
            self.spawned.append(m.group(2))
            return b"ok"
        if m := re.fullmatch(r"vset /object/(\S+)/color (\d+) (\d+) (\d+)", cmd):
            self.colours[m.group(1)] = tuple(int(v) for v in m.groups()[1:])
            return b"ok"
        if cmd.endswith("/destroy"):
            name = cmd.split("/")[2]
            self.spawned = [s for s in self.spawned if s != name]
            return b"ok"
        if cmd == "vget /camera/0/lit png":
            return cv2.imencode(".png", lit_image()[..., ::-1])[1].tobytes()
        if cmd == "vget /camera/0/depth npy":
            b = io.BytesIO()
            np.save(b, np.full((SIZE, SIZE), 250.0, np.float32))
            return b.getvalue()
        if cmd == "vget /camera/0/object_mask png":
            mask = np.zeros((SIZE, SIZE, 3), np.uint8)
            for k, name in enumerate(self.spawned):
                x0, y0, x1, y1 = square(k)
                mask[y0:y1, x0:x1] = self.colours[name]
            return cv2.imencode(".png", mask[..., ::-1])[1].tobytes()
        if cmd.startswith(("vset ", "vbp ")):
            return b"ok"
        return b"error: unknown command"

    def close(self) -> None:
        self._stop = True
        self.sock.close()


@pytest.fixture
def fake_unrealcv():
    srv = FakeUnrealCV()
    yield srv
    srv.close()


def test_unrealcv_backend_direct(fake_unrealcv):
    from skyloom.datagen.render import RenderConfig, sample_specs
    from skyloom.datagen.unrealcv_render import UnrealCVOptions, UnrealCVRenderer, quat_to_rotator

    cfg = RenderConfig(scene=dataclasses.replace(RenderConfig().scene, num_frames=3, min_objects=2, max_objects=2))
    spec = sample_specs(cfg, 1, seed=4)[0]
    r = UnrealCVRenderer(UnrealCVOptions(port=fake_unrealcv.port))
    out = r.render(spec)
    r.close()
    assert out.frames.shape == (3, 32, 32, 3)
    expect = cv2.resize(lit_image(), (32, 32), interpolation=cv2.INTER_AREA)
    assert np.array_equal(out.frames[0], expect)
    np.testing.assert_allclose(out.depth, 2.5)  # 250 cm -> metres
    for k in range(2):  # squares halve with the 64 -> 32 resize
        x0, y0, x1, y1 = (v // 2 for v in square(k))
        assert out.gt["frames"][0]["objects"][k]["bbox"] == [x0, y0, x1, y1]
        assert (out.segmentation[0, y0:y1, x0:x1] == k + 1).all()
    assert out.gt["renderer"] == "unrealcv" and "v1.1.0-fake" in out.gt["renderer_version"]
    # poses sent in Unreal's left-handed centimetres; ground truth stays in skyloom's metres
    o = spec["objects"][0]
    name = next(s for s in fake_unrealcv.colours if s.endswith("_obj0"))
    loc = next(c for c in fake_unrealcv.commands if c.startswith(f"vset /object/{name}/location"))
    x, y, z = (float(v) for v in loc.split()[-3:])
    p = o["position"]
    assert (x, y, z) == pytest.approx((100 * p[0], -100 * p[1], 100 * p[2]), abs=1e-3)
    assert f"vset /objects/spawn BP_Sphere {name}" in fake_unrealcv.commands
    assert fake_unrealcv.spawned == []  # destroyed after the scene
    cam = next(c for c in fake_unrealcv.commands if c.startswith("vset /camera/0/rotation"))
    want = [spec["camera"]["elevation"], -spec["camera"]["azimuth"], 0]
    assert [float(v) for v in cam.split()[-3:]] == pytest.approx(want, abs=1e-3)
    # rotator: identity -> zeros; a 90 degree turn about z (right-handed) is yaw -90 in Unreal
    assert quat_to_rotator([1, 0, 0, 0]) == pytest.approx((0, 0, 0))
    s = np.sqrt(0.5)
    assert quat_to_rotator([s, 0, 0, s]) == pytest.approx((0, -90, 0), abs=1e-6)


def test_unrealcv_render_job_into_corpus(fake_unrealcv, tmp_path, ray_local):
    from skyloom.corpus import Corpus
    from skyloom.datagen.render import RenderConfig, run_render

    cfg = RenderConfig(preset="balls-bounce", renderer="unrealcv", num_scenes=2, out=str(tmp_path / "c"),
                       scene=dataclasses.replace(RenderConfig().scene, num_frames=4),
                       renderer_options={"port": fake_unrealcv.port})
    res = run_render(cfg, show_progress=False)
    assert (res.rendered, res.failed) == (2, 0)
    c = Corpus(cfg.out)
    recs = c.records()
    assert len(recs) == 2 and all(r.meta["renderer"] == "unrealcv" for r in recs)
    clip = c.read_clip(recs[0].id)
    assert clip.shape == (4, 32, 32, 3)
    expect = cv2.resize(lit_image(), (32, 32), interpolation=cv2.INTER_AREA).astype(int)
    assert np.abs(clip.astype(int) - expect).mean() < 6  # H.264 of the canned lit image
    gt = c.read_ground_truth(recs[0].id)
    arrays = np.load(c.gt_path(recs[0].id, ".npz"))
    assert gt["renderer"] == "unrealcv" and arrays["depth"].dtype == np.float16
    assert (arrays["segmentation"][:, 4:10, 4:10] == 1).all()


def test_unrealcv_unreachable_server_is_a_clear_error():
    from skyloom.datagen.unrealcv_render import UnrealCVOptions, UnrealCVRenderer

    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    with pytest.raises(ConnectionError, match=f"127.0.0.1:{port}"):
        UnrealCVRenderer(UnrealCVOptions(port=port))._connect()


def test_dropped_connection_is_retried_by_the_job(fake_unrealcv, tmp_path, ray_local):
    from skyloom.corpus import Corpus
    from skyloom.datagen.render import RenderConfig, run_render

    fake_unrealcv.drop_first_lit = True
    cfg = RenderConfig(preset="balls-bounce", renderer="unrealcv", num_scenes=1, out=str(tmp_path / "c"), max_retries=2,
                       scene=dataclasses.replace(RenderConfig().scene, num_frames=2),
                       renderer_options={"port": fake_unrealcv.port})
    res = run_render(cfg, show_progress=False)
    assert (res.rendered, res.failed) == (1, 0)
    assert fake_unrealcv.connections == 2  # dropped once, reconnected on the retry
    assert len(Corpus(cfg.out).records()) == 1


def test_renderer_options_belong_to_the_backend():
    """``renderer_options`` are checked against the chosen backend's Options dataclass."""
    from skyloom import config
    from skyloom.config import ConfigError
    from skyloom.datagen.render import RenderConfig, renderer_options
    from skyloom.datagen.unrealcv_render import UnrealCVOptions

    cfg = config.load(RenderConfig, "tabletop", ["renderer=unrealcv", "renderer_options.port=9001"], group="datagen")
    opts = renderer_options(cfg.renderer, cfg.renderer_options)
    assert opts == dataclasses.asdict(UnrealCVOptions(port=9001))  # defaults filled in
    with pytest.raises(ConfigError,
                       match=r"renderer 'unrealcv': unknown config key 'prot' in renderer_options; .*port"):
        renderer_options("unrealcv", {"prot": 9001})
    with pytest.raises(ConfigError, match=r"renderer_options.port.*integer"):
        renderer_options("unrealcv", {"port": "nine"})
    with pytest.raises(ConfigError, match="'port'"):  # the MuJoCo renderer has no options
        renderer_options("mujoco", {"port": 9001})
