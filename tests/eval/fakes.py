"""Small fakes for eval tests: a deterministic pipeline, checkpoints, metrics, an extractor, a corpus.

The fake pipeline draws a ball of the prompt's colour moving right; ``noise`` in the checkpoint's
``fake.json`` adds seeded per-pixel noise (a "worse" checkpoint). ``broken`` makes loading fail,
``fail_words`` makes prompts containing a word fail, ``kill_after`` SIGKILLs the process on that
generate call (a crash mid-evaluation). Every call is logged to ``CKPT/calls.jsonl``.
"""

from __future__ import annotations

import json
import math
import os
import signal
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from skyloom.fsutil import append_jsonl, read_jsonl
from skyloom.registry import NoOptions, Registry

COLOURS = {"red": (220, 40, 40), "green": (40, 200, 60), "blue": (40, 60, 220), "yellow": (230, 220, 40)}
LOADER = "tests.eval.fakes:load_fake_pipeline"


def colour_of(prompt: str) -> tuple[int, int, int]:
    for name, rgb in COLOURS.items():
        if name in prompt:
            return rgb
    return (200, 200, 200)


def ball_video(rgb, seed: int, T: int = 8, H: int = 32, W: int = 32, noise: float = 0.0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    v = np.full((T, H, W, 3), 110, np.float64)
    y = int(rng.integers(4, H - 12))
    for t in range(T):
        x = 2 + int(t * (W - 12) / max(1, T - 1))
        v[t, y:y + 8, x:x + 8] = rgb
    if noise:
        v += rng.normal(0, noise, v.shape)
    return np.clip(v, 0, 255).round().astype(np.uint8)  # (T, H, W, 3)


class FakePipeline:
    fps = 8.0
    num_frames = 8
    height = 32
    width = 32

    def __init__(self, ckpt: str) -> None:
        cfg_path = Path(ckpt) / "fake.json"
        if not cfg_path.exists():
            raise FileNotFoundError(f"{ckpt}: not a fake checkpoint (no fake.json)")
        self.cfg = json.loads(cfg_path.read_text())
        if self.cfg.get("broken"):
            raise RuntimeError(f"{ckpt}: weights are corrupt")
        self.calls = Path(ckpt) / "calls.jsonl"
        self.name = Path(ckpt).name

    def generate(self, prompts: list[str], seeds: list[int], *, cond_frames: np.ndarray | None = None,
                 steps: int | None = None, guidance: float | None = None, num_frames: int | None = None) -> np.ndarray:
        n_before = len(read_jsonl(self.calls))
        if self.cfg.get("kill_after") is not None and n_before >= self.cfg["kill_after"]:
            os.kill(os.getpid(), signal.SIGKILL)
        append_jsonl(self.calls, {"prompts": list(prompts), "seeds": [int(s) for s in seeds], "pid": os.getpid()})
        for p in prompts:
            for w in self.cfg.get("fail_words", []):
                if w in p:
                    raise ValueError(f"cannot draw {w!r}")
        T = int(num_frames or self.num_frames)
        out = np.stack([ball_video(colour_of(p), s, T=T, noise=self.cfg.get("noise", 0.0))
                        for p, s in zip(prompts, seeds)])
        if cond_frames is not None:
            out[:, :cond_frames.shape[1]] = cond_frames
        return out  # (B, T, H, W, 3)


def load_fake_pipeline(ckpt: str, device: str = "cpu") -> FakePipeline:
    return FakePipeline(ckpt)


def make_checkpoint(runs: Path, run: str, step: int, **cfg: Any) -> Path:
    from skyloom.fsutil import atomic_write_json
    from skyloom.rundir import RunDir

    r = RunDir.create(runs / run)
    with r.begin_checkpoint(step) as d:
        atomic_write_json(d / "fake.json", cfg)
    return r.checkpoint_dir(step)


def generated_items(ckpt: Path) -> list[tuple[str, int]]:
    return [(p, s) for c in read_jsonl(ckpt / "calls.jsonl") for p, s in zip(c["prompts"], c["seeds"])]


# -- metrics following the documented contract (update / merge / compute -> result) ------------
class _Result:
    def __init__(self, name, value, n, hib, per_item, details=None):
        self.name, self.value, self.n, self.higher_is_better = name, value, n, hib
        self.metric_version, self.per_item, self.details = "1", per_item, details or {}
        self.extractor, self.weights, self.preprocessing = None, "none", {}


class _PerItem:
    version = "1"
    default_extractor = None
    inputs = ("videos", "item_ids", "prompts")  # declared, as skyloom.eval.metrics.inputs reads them
    config_class = NoOptions

    def __init__(self, config: NoOptions | None = None, *, extractor: Any = None) -> None:
        self.values: dict[str, float] = {}

    def identity(self) -> dict[str, Any]:
        return {"extractor": f"fake-{self.name}", "weights": "none", "preprocessing": {"fake": True}}

    def update(self, videos, item_ids=None, prompts=None) -> None:
        for i, v in enumerate(videos):
            self.values[item_ids[i]] = self.score(np.asarray(v), prompts[i] if prompts else "")

    def merge(self, other):
        self.values.update(other.values)
        return self

    def compute(self) -> _Result:
        vals = list(self.values.values())
        return _Result(self.name, float(np.mean(vals)), len(vals), self.higher_is_better, dict(self.values))


class ColourMatch(_PerItem):
    """1 - distance between the prompt's colour and the video's most saturated colour (higher better)."""

    name, higher_is_better = "colour_match", True

    def score(self, v: np.ndarray, prompt: str) -> float:
        if "nan" in prompt:
            raise ValueError("cannot score this prompt")
        px = v.reshape(-1, 3).astype(float)
        sat = px.max(1) - px.min(1)
        top = px[sat >= np.quantile(sat, 0.9)].mean(0)
        return float(1 - np.linalg.norm(top - colour_of(prompt)) / (255 * math.sqrt(3)))


class Jitter(_PerItem):
    """Mean absolute frame difference / 255 (lower is better)."""

    name, higher_is_better = "jitter", False

    def score(self, v: np.ndarray, prompt: str) -> float:
        return float(np.abs(np.diff(v.astype(float), axis=0)).mean() / 255)


@dataclass(frozen=True)
class MeanDistanceConfig:
    num_frames: int = 8  # frames of each clip compared


class MeanDistance:
    """Set-level: distance between mean real and mean generated features (lower is better)."""

    name, version, higher_is_better, default_extractor = "mean_distance", "1", False, "fake-colour"
    inputs = ("videos", "real_videos")
    config_class = MeanDistanceConfig

    def __init__(self, config: MeanDistanceConfig | None = None, *, extractor: Any = None) -> None:
        self.extractor, self.num_frames = extractor, (config or MeanDistanceConfig()).num_frames
        self.sides: dict[bool, list[np.ndarray]] = {True: [], False: []}

    def identity(self) -> dict[str, Any]:
        return self.extractor.identity()

    def clip(self, video: np.ndarray, real: bool) -> np.ndarray:
        if len(video) < self.num_frames:  # like FVD: a clip shorter than the protocol is an error
            raise ValueError(f"clip has {len(video)} frames, need {self.num_frames}")
        return video[: self.num_frames]

    def update_features(self, f: np.ndarray, real: bool = False) -> None:
        self.sides[real].append(np.asarray(f, np.float64))

    def compute(self) -> _Result:
        r, g = np.concatenate(self.sides[True]), np.concatenate(self.sides[False])
        return _Result(self.name, float(np.linalg.norm(r.mean(0) - g.mean(0))), len(g), False, None,
                       {"n_real": len(r), "n_generated": len(g)})


FAKE_METRICS: Registry[Any] = Registry("metric")
FAKE_METRICS.register("colour_match")(ColourMatch)
FAKE_METRICS.register("jitter")(Jitter)
FAKE_METRICS.register("mean_distance")(MeanDistance)


class CountingColourExtractor:
    """Video features = mean colour of each frame (T*3 dims, first 8 frames); counts encoded clips."""

    name, weights, dim, kind = "fake-colour", "none", 24, "video"
    config_class = NoOptions

    def __init__(self, config: NoOptions | None = None) -> None:
        pass
    preprocessing = {"features": "mean RGB per frame / 255"}
    encoded = 0  # class-wide counter: tests read and reset it

    def identity(self) -> dict[str, Any]:
        return {"extractor": self.name, "weights": self.weights, "preprocessing": dict(self.preprocessing)}

    def encode_videos(self, videos: np.ndarray) -> np.ndarray:
        v = np.asarray(videos, np.float64)[:, :8]
        type(self).encoded += len(v)
        return v.mean(axis=(2, 3)).reshape(len(v), -1) / 255.0  # (N, T*3)


def register_fake_extractor() -> None:
    from skyloom.eval.features.base import EXTRACTORS

    if "fake-colour" not in EXTRACTORS:
        EXTRACTORS.register("fake-colour")(CountingColourExtractor)


def make_reference_corpus(root: Path, n: int = 6) -> Path:
    """A corpus of ``n`` real-looking clips (balls of the four colours, mild noise)."""
    from skyloom.corpus import ClipRecord, Corpus
    from skyloom.fsutil import sha256_file
    from skyloom.video import write_video

    c = Corpus.create(root)
    recs = []
    for i in range(n):
        cid = f"ref-{i:03d}"
        v = ball_video(list(COLOURS.values())[i % 4], seed=100 + i, noise=5.0)
        path = write_video(c.clip_path(cid), v, fps=8)
        recs.append(ClipRecord(id=cid, path=f"clips/{cid}.mp4", source_kind="synthetic", duration_s=1.0, fps=8.0,
                               width=32, height=32, num_frames=8, license_id="CC0-1.0",
                               source_url=f"skyloom://render/test/{i}", author="skyloom", attribution="",
                               sha256=sha256_file(path)))
    c.append(recs)
    return root


FAKE_SUITE = """
format: skyloom-suite
name: fake
version: 1
primary_metric: colour_match
seeds: [0, 1]
generation: {num_frames: 8, batch_size: 3}
prompts:
  - {id: red, text: "a red ball bounces", category: colour}
  - {id: green, text: "a green ball rolls", category: colour}
  - {id: blue, text: "a blue ball falls", category: colour}
metrics:
  - {name: colour_match}
  - {name: jitter}
  - {name: mean_distance, extractor: fake-colour}
reference: {corpus: REFERENCE, num_frames: 8}
"""


def write_suite(path: Path, reference: Path | None = None, extra_prompts: str = "") -> Path:
    text = FAKE_SUITE.replace("REFERENCE", str(reference) if reference else "null")
    if extra_prompts:
        text = text.replace("metrics:\n", extra_prompts + "metrics:\n")
    path.write_text(text)
    return path


MOTION_CAPTIONS = {"bounce": "bounces up and down", "roll": "rolls to the right", "fall": "falls to the floor"}


def motion_video(rgb, motion: str, seed: int, T: int = 16, S: int = 32) -> np.ndarray:
    """A ball of colour ``rgb`` that bounces in place, rolls right along the floor, or falls and stays."""
    rng = np.random.default_rng(seed)
    bg = rng.integers(90, 130)
    v = np.full((T, S, S, 3), bg, np.float64)
    v[:, S - 6:] = bg + 30  # floor
    r = int(rng.integers(3, 5))
    x0, floor = int(rng.integers(r + 1, S // 2)), S - 6 - r
    phase = rng.uniform(0, math.pi)
    yy, xx = np.mgrid[:S, :S]
    for t in range(T):
        if motion == "bounce":
            x, y = x0 + S // 5, floor - abs(math.sin(phase + t * math.pi / 5)) * (S // 2)
        elif motion == "roll":
            x, y = x0 + t * (S - x0 - r) / (T - 1) * 0.9, floor
        else:  # fall: from the top to the floor, then rest
            x, y = x0 + S // 5, min(floor, r + 1 + 0.5 * 1.2 * t * t)
        v[t][(yy - y) ** 2 + (xx - x) ** 2 <= r * r] = rgb
    v += rng.normal(0, 3, v.shape)
    return np.clip(v, 0, 255).round().astype(np.uint8)


def make_motion_corpus(root: Path, per_combo: int = 12, seed: int = 0, split: str = "train") -> Path:
    """A captioned corpus: every (colour, motion) ``per_combo`` times, captions like
    "a red ball bounces up and down"."""
    from skyloom.corpus import Caption, ClipRecord, Corpus
    from skyloom.fsutil import sha256_file
    from skyloom.video import write_video

    c = Corpus.create(root)
    recs = []
    k = 0
    for _ in range(per_combo):
        for colour, rgb in COLOURS.items():
            for motion, phrase in MOTION_CAPTIONS.items():
                cid = f"m{seed}-{k:04d}"
                path = write_video(c.clip_path(cid), motion_video(rgb, motion, seed * 100000 + k), fps=8)
                cap = Caption(captioner="test", kind="short", text=f"a {colour} ball {phrase}")
                recs.append(ClipRecord(id=cid, path=f"clips/{cid}.mp4", source_kind="synthetic", duration_s=2.0,
                                       fps=8.0, width=32, height=32, num_frames=16, license_id="CC0-1.0",
                                       source_url=f"skyloom://render/test/{k}", author="skyloom", attribution="",
                                       sha256=sha256_file(path), captions=(cap,), split=split,
                                       meta={"colour": colour, "motion": motion}))
                k += 1
    c.append(recs)
    return root


# -- a generator that does nothing: trivial continuations of physics probes --------------------
DEGENERATE_LOADER = "tests.eval.fakes:load_degenerate_pipeline"
# What a generator can return from the given frames alone (the rest need the truth: --videos tests them).
COND_ONLY = ("grey", "black", "fade", "first_frozen", "last_frozen", "noise")


class DegeneratePipeline:
    """Continues each probe with one trivial continuation (``CKPT/degenerate.json``: ``{"kind": name}``)
    at its own 32 x 32 frame size, as skyloom's tiny model does: the given frames (resized) then the
    continuation; ``grey`` is what the untrained step-0 model returns."""

    fps = 16.0
    num_frames = 16
    height = 32
    width = 32

    def __init__(self, ckpt: str) -> None:
        self.kind = json.loads((Path(ckpt) / "degenerate.json").read_text())["kind"]
        self.name = Path(ckpt).name

    def generate(self, prompts: list[str], seeds: list[int], *, cond_frames: np.ndarray | None = None,
                 steps: int | None = None, guidance: float | None = None, num_frames: int | None = None) -> np.ndarray:
        import cv2

        from skyloom.eval.harness import continuations

        T = int(num_frames or self.num_frames)
        out = []
        for b, s in enumerate(seeds):
            cond = np.stack([cv2.resize(f, (self.width, self.height), interpolation=cv2.INTER_AREA)
                             for f in cond_frames[b]])  # (k, 32, 32, 3)
            k = len(cond)
            ref = np.concatenate([cond, np.repeat(cond[-1:], T - k, axis=0)])  # only the given frames are known
            out.append(continuations.make(self.kind, ref, k, seed=int(s)))
        return np.stack(out)  # (B, T, 32, 32, 3)


def load_degenerate_pipeline(ckpt: str, device: str = "cpu") -> DegeneratePipeline:
    return DegeneratePipeline(ckpt)


def make_degenerate_checkpoint(runs: Path, kind: str) -> Path:
    from skyloom.fsutil import atomic_write_json
    from skyloom.rundir import RunDir

    r = RunDir.create(runs / kind)
    with r.begin_checkpoint(0) as d:
        atomic_write_json(d / "degenerate.json", {"kind": kind})
    return r.checkpoint_dir(0)
