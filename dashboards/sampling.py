"""The prompt box: sample every selected checkpoint on one prompt, server-side, queued and cached.

A request names checkpoints by id (``<run>@<step>``, as listed by :func:`list_checkpoints`: only
complete checkpoints of the runs under ``--runs``, so a page can never make the server load an
arbitrary path), a prompt, a seed, optional sampler settings and an optional first frame
(image-to-video). Each checkpoint becomes one :class:`~skyloom.dashboards.jobs.JobQueue` job
whose key hashes the checkpoint (folder and the time it was completed), the prompt, the seed,
the settings and the image's bytes; its video is written to ``<cache>/samples/<key>.mp4``, so
asking again is answered from disk. Models are loaded only through the model's public pipeline
API (:func:`skyloom.model.load_pipeline`); the last one loaded is kept for the next job.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import io
import json
import logging
import math
import os
import threading
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from skyloom.rundir import RunDir

log = logging.getLogger(__name__)

MAX_PROMPT_CHARS = 2000
MAX_IMAGE_BYTES = 8 * 2**20
MAX_CHECKPOINTS = 12
LIMITS = {"steps": (1, 500), "guidance": (0.0, 50.0), "num_frames": (2, 512), "seed": (0, 2**31 - 1)}


class SampleError(ValueError):
    """A sampling request that cannot be served (the message says which field and why)."""


@dataclass(frozen=True)
class SampleRequest:
    """What to sample: the same for every checkpoint of one request."""

    prompt: str
    seed: int = 0
    steps: int | None = None  # sampler steps (None: the checkpoint's default)
    guidance: float | None = None  # classifier-free guidance scale (None: the checkpoint's default)
    num_frames: int | None = None  # video length (None: the training length)
    image_sha256: str | None = None  # of the decoded first frame's pixels (image-to-video)


def list_checkpoints(runs: list[RunDir]) -> list[dict[str, Any]]:
    """Every complete checkpoint of ``runs``: ``{"id": "<run>@<step>", "run", "step"}``, newest step last."""
    out, seen = [], set()
    for r in runs:
        try:
            cks = r.checkpoints()
        except OSError:
            continue
        for step, path in cks:
            cid = f"{r.name}@{step}"
            if cid in seen:  # two runs of the same name: tell them apart by their folder
                cid = f"{r.root.parent.name}/{r.name}@{step}"
            seen.add(cid)
            out.append({"id": cid, "run": r.name, "step": step, "path": path})
    return out


def _number(body: dict[str, Any], name: str, kind: type) -> Any:
    """``body[name]`` as an int or float within :data:`LIMITS`, None when absent or empty."""
    v = body.get(name)
    if v is None or v == "":
        return None
    try:
        if isinstance(v, bool):
            raise TypeError
        x = float(v)
    except (TypeError, ValueError):
        raise SampleError(f"{name}: {v!r} is not a number") from None
    if not math.isfinite(x) or (kind is int and not x.is_integer()):
        raise SampleError(f"{name}: {v!r} is not a{'n integer' if kind is int else ' finite number'}")
    lo, hi = LIMITS[name]
    if not lo <= x <= hi:
        raise SampleError(f"{name}: {v!r} is outside [{lo}, {hi}]")
    return int(x) if kind is int else x


def decode_image(data_url: str) -> np.ndarray:
    """A ``data:image/...;base64,`` URL (PNG, JPEG, WebP, ...) -> uint8 (H, W, 3).

    Raises:
        SampleError: not a base64 data URL, too large, or not an image.
    """
    from PIL import Image, UnidentifiedImageError

    head, sep, payload = data_url.partition(",")
    if not sep or not head.startswith("data:image/") or not head.endswith(";base64"):
        raise SampleError("image: expected a data:image/...;base64,... URL")
    if len(payload) > MAX_IMAGE_BYTES * 4 // 3 + 4:
        raise SampleError(f"image: larger than {MAX_IMAGE_BYTES // 2**20} MB")
    try:
        raw = base64.b64decode(payload, validate=True)
        with Image.open(io.BytesIO(raw)) as im:
            im.draft("RGB", (1024, 1024))
            if im.width * im.height > 4096 * 4096:
                raise SampleError(f"image: {im.width}x{im.height} pixels is too large")
            return np.asarray(im.convert("RGB"), dtype=np.uint8).copy()
    except (binascii.Error, UnidentifiedImageError, OSError) as e:
        raise SampleError(f"image: cannot be decoded ({e})") from None


def parse_request(body: Any) -> tuple[list[str], SampleRequest, np.ndarray | None]:
    """Checkpoint ids, the request and the first frame (or None) of a JSON body; :class:`SampleError` if bad."""
    if not isinstance(body, dict):
        raise SampleError("the request body must be a JSON object")
    allowed = {"checkpoints", "prompt", "seed", "steps", "guidance", "num_frames", "image"}
    unknown = sorted(set(body) - allowed)
    if unknown:
        raise SampleError(f"unknown field(s) {unknown}; valid: {sorted(allowed)}")
    ids = body.get("checkpoints")
    if not isinstance(ids, list) or not ids or not all(isinstance(i, str) for i in ids):
        raise SampleError("checkpoints: pick one or more checkpoints (a list of ids)")
    if len(ids) > MAX_CHECKPOINTS:
        raise SampleError(f"checkpoints: at most {MAX_CHECKPOINTS} at once, got {len(ids)}")
    prompt = body.get("prompt")
    if not isinstance(prompt, str) or not prompt.strip():
        raise SampleError("prompt: type a prompt")
    if len(prompt) > MAX_PROMPT_CHARS:
        raise SampleError(f"prompt: longer than {MAX_PROMPT_CHARS} characters")
    image = decode_image(body["image"]) if body.get("image") else None
    seed = _number(body, "seed", int)
    req = SampleRequest(prompt=prompt.strip(), seed=0 if seed is None else seed, steps=_number(body, "steps", int),
                        guidance=_number(body, "guidance", float), num_frames=_number(body, "num_frames", int),
                        image_sha256=None if image is None else
                        hashlib.sha256(f"{image.shape}".encode() + image.tobytes()).hexdigest())
    return list(dict.fromkeys(ids)), req, image


def sample_key(checkpoint: Path, req: SampleRequest) -> str:
    """Cache key: the checkpoint (folder + completion time) and everything in the request."""
    try:
        done = (checkpoint / "COMPLETE").stat().st_mtime_ns
    except OSError:
        done = None
    blob = json.dumps({"checkpoint": str(checkpoint.resolve()), "complete": done, **asdict(req)}, sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()[:32]


class Sampler:
    """Runs sampling jobs: one pipeline at a time, loaded with ``loader`` (default ``skyloom.model.load_pipeline``)."""

    def __init__(self, cache_dir: Path, loader: Callable[..., Any] | None = None, device: str = "cpu") -> None:
        self.root = cache_dir / "samples"
        self._loader = loader
        self.device = device
        self._lock = threading.Lock()  # the job thread is the only user; the lock guards close()
        self._pipe: tuple[str, Any] | None = None

    def video_path(self, key: str) -> Path:
        return self.root / f"{key}.mp4"

    def _pipeline(self, checkpoint: Path) -> Any:
        key = str(checkpoint.resolve())
        if self._pipe is None or self._pipe[0] != key:
            self._pipe = None  # free the previous model before loading the next
            loader = self._loader
            if loader is None:
                from skyloom.model import load_pipeline as loader
            self._pipe = (key, loader(checkpoint, device=self.device))
        return self._pipe[1]

    def run(self, key: str, checkpoint: Path, req: SampleRequest, image: np.ndarray | None) -> None:
        """Sample one video and write ``<key>.mp4`` (+ ``<key>.json`` with what made it)."""
        from skyloom.fsutil import atomic_write_json
        from skyloom.video import write_video

        with self._lock:
            pipe = self._pipeline(checkpoint)
            cond = None if image is None else image[None, None]  # (1, 1, H, W, 3): image-to-video
            video = pipe.generate([req.prompt], [req.seed], cond_frames=cond, steps=req.steps,
                                  guidance=req.guidance, num_frames=req.num_frames)[0]  # (T, H, W, 3)
            self.root.mkdir(parents=True, exist_ok=True)
            out = self.video_path(key)
            tmp = out.with_name(f".{out.name}.tmp.mp4")
            fps = float(getattr(pipe, "fps", 8.0))
            write_video(tmp, video, fps, metadata={"prompt": req.prompt, "seed": req.seed})
            settings = pipe.settings(req.steps, req.guidance) if hasattr(pipe, "settings") else {}
            atomic_write_json(out.with_suffix(".json"), {**asdict(req), "fps": fps, "frames": int(video.shape[0]),
                                                        "settings": {k: v for k, v in settings.items()
                                                                     if k != "checkpoint"}})
            os.replace(tmp, out)

    def close(self) -> None:
        with self._lock:
            self._pipe = None
