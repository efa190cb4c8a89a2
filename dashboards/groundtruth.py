"""One corpus clip in detail: the simulator's ground truth drawn over it, or its provenance and license.

For a synthetic clip, :func:`clip_detail` reads ``gt/<id>.json`` (format ``skyloom-gt`` v1) and
returns what the page draws over the video frame by frame: per object its box (from the
segmentation), its projected centre (the trajectory) and visibility; the collision events for
the timeline; the facts a caption may state (:func:`skyloom.captioning.facts.scene_facts`) and,
for every caption of the clip, what :func:`skyloom.captioning.verify_caption` finds right,
missing and wrong. :func:`segmentation_atlas` turns ``gt/<id>.npz`` into one PNG of coloured
masks (frames laid out in a grid) that the page overlays on the current frame.

For every clip, the provenance: license (with its name), author, attribution, source URL and
page, source hash, parent clip and shot range; a licensed clip shows this instead of ground truth.
"""

from __future__ import annotations

import io
import json
import logging
import math
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np

from skyloom.dashboards.paths import SafeRoots

log = logging.getLogger(__name__)

# Overlay colours per segmentation id (1, 2, ...): distinct from each other and from typical object colours.
SEG_PALETTE = [(255, 0, 255), (0, 255, 255), (255, 255, 0), (0, 255, 0), (255, 128, 0), (128, 0, 255),
               (0, 128, 255), (255, 0, 128), (128, 255, 0), (255, 255, 255)]
SEG_ALPHA = 150
MAX_ATLAS_SIDE = 16384  # pixels; browsers decode larger images unreliably


class ClipNotFound(KeyError):
    """No such clip (or ground truth) in the corpus."""


def _inside(root: Path, rel: str | None) -> Path | None:
    """``root / rel`` if it stays inside ``root`` and exists, else None."""
    if not rel:
        return None
    p = (root / rel).resolve()
    return p if p.is_relative_to(root.resolve()) and p.is_file() else None


def seg_colour(seg_id: int) -> tuple[int, int, int]:
    return SEG_PALETTE[(seg_id - 1) % len(SEG_PALETTE)]


def provenance(rec: Any) -> dict[str, Any]:
    """Where a clip comes from and under which terms."""
    try:
        from skyloom.datagen.licenses import KNOWN_LICENSES
    except ImportError:  # datagen not installed: the id alone
        KNOWN_LICENSES = {}
    return {"license_id": rec.license_id, "license_name": KNOWN_LICENSES.get(rec.license_id, ""),
            "author": rec.author, "attribution": rec.attribution, "source_url": rec.source_url,
            "source_page": rec.source_page, "source_sha256": rec.source_sha256, "sha256": rec.sha256,
            "parent_id": rec.parent_id,
            "shot": [rec.shot_start_s, rec.shot_end_s] if rec.shot_start_s is not None else None,
            "source_kind": rec.source_kind, "created_at": rec.created_at,
            "meta": {k: v for k, v in (rec.meta or {}).items() if isinstance(v, (str, int, float, bool)) or v is None}}


def _rgb255(rgb: Any) -> list[int]:
    """An object colour as 0..255 integers (gt stores 0..1 floats)."""
    vals = [float(x) for x in (rgb or [0.5, 0.5, 0.5])][:3]
    scale = 255.0 if max(vals) <= 1.0 else 1.0
    return [min(255, max(0, round(v * scale))) for v in vals]


def gt_overlay(gt: dict[str, Any]) -> dict[str, Any]:
    """Per-frame boxes, centres and visibility per object, and the events, from a gt dict."""
    objects = gt.get("objects") or []
    names = [o["name"] for o in objects]
    boxes: dict[str, list] = {n: [] for n in names}
    centres: dict[str, list] = {n: [] for n in names}
    for fr in gt.get("frames") or []:
        by = {o["name"]: o for o in fr.get("objects", [])}
        for n in names:
            o = by.get(n) or {}
            boxes[n].append(o.get("bbox") if o.get("visible", True) else None)
            c = o.get("center_px")
            centres[n].append([float(c[0]), float(c[1])] if c and all(math.isfinite(float(x)) for x in c) else None)
    return {
        "width": int(gt.get("width") or 0), "height": int(gt.get("height") or 0), "fps": float(gt.get("fps") or 0),
        "num_frames": int(gt.get("num_frames") or len(gt.get("frames") or [])),
        "camera": (gt.get("camera") or {}).get("motion", ""), "renderer": gt.get("renderer", ""),
        "objects": [{"name": o["name"], "seg_id": int(o.get("seg_id", i + 1)), "shape": o.get("shape", ""),
                     "colour": o.get("colour", ""), "size": o.get("size_name", ""), "material": o.get("material", ""),
                     "rgb": _rgb255(o.get("rgb")),
                     "seg_colour": list(seg_colour(int(o.get("seg_id", i + 1)))),
                     "motion_summary": list(o.get("motion_summary") or []), "num_bounces": o.get("num_bounces", 0),
                     "collides_with": list(o.get("collides_with") or [])} for i, o in enumerate(objects)],
        "boxes": boxes, "centres": centres,
        "events": [{k: e.get(k) for k in ("frame", "t", "kind", "a", "b", "speed")} for e in gt.get("events") or []],
    }


def caption_facts(gt: dict[str, Any], captions: list[Any]) -> tuple[dict[str, Any] | None, list[dict[str, Any]]]:
    """The scene's facts (for display) and each caption's check against them; (None, []) if unavailable."""
    try:
        from skyloom.captioning import verify_caption
        from skyloom.captioning.facts import scene_facts
    except ImportError as e:
        log.info("captioning not installed (%s): no caption facts", e)
        return None, []
    try:
        facts = scene_facts(gt)
    except ValueError as e:  # GroundTruthError: not a gt dict this version understands
        return {"error": str(e)}, []
    shown = asdict(facts)
    checks = []
    for c in captions:
        try:
            rep = verify_caption(c.text, facts).to_dict()
        except ValueError as e:
            rep = {"error": str(e)}
        checks.append({"captioner": c.captioner, "kind": c.kind, "text": c.text,
                       **{k: rep.get(k) for k in ("precision", "recall", "missing", "wrong", "hallucinated",
                                                  "n_caption_facts", "n_gt_facts", "error")}})
    return shown, checks


def _open(corpus_root: Path, clip_id: str) -> tuple[Any, Any]:
    from skyloom.corpus import Corpus

    c = Corpus(corpus_root)
    try:
        return c, c.get(clip_id)
    except KeyError:
        raise ClipNotFound(f"clip {clip_id!r} is not in corpus {c.info.get('name') or corpus_root.name}") from None


def _gt_paths(c: Any, rec: Any) -> tuple[Path | None, Path | None]:
    js = _inside(c.root, rec.gt_path) if rec.gt_path else None
    npz = None
    if js is not None:
        try:
            arrays = json.loads(js.read_text()).get("arrays")
        except (OSError, ValueError):
            arrays = None
        npz = _inside(c.root, arrays) or _inside(c.root, str(Path(rec.gt_path).with_suffix(".npz")))
    return js, npz


def clip_detail(corpus_root: Path, clip_id: str, roots: SafeRoots) -> dict[str, Any]:
    """Payload of the clip inspector (see the module docstring).

    Raises:
        ClipNotFound: no clip ``clip_id`` in the corpus.
    """
    c, rec = _open(corpus_root, clip_id)
    out: dict[str, Any] = {"id": rec.id, "source_kind": rec.source_kind, "url": roots.url(c.root / rec.path),
                           "fps": float(rec.fps),
                           "width": int(rec.width), "height": int(rec.height), "num_frames": int(rec.num_frames),
                           "duration_s": float(rec.duration_s), "provenance": provenance(rec),
                           "captions": [{"captioner": k.captioner, "kind": k.kind, "text": k.text}
                                        for k in rec.captions],
                           "gt": None, "facts": None, "caption_checks": [], "segmentation": None, "gt_error": None}
    js, npz = _gt_paths(c, rec)
    if js is None:
        if rec.source_kind == "synthetic":
            out["gt_error"] = "no ground truth file recorded for this clip"
        return out
    try:
        gt = json.loads(js.read_text())
    except (OSError, ValueError) as e:
        out["gt_error"] = f"ground truth unreadable: {type(e).__name__}"
        return out
    out["gt"] = gt_overlay(gt)
    out["facts"], out["caption_checks"] = caption_facts(gt, list(rec.captions))
    if npz is not None:
        T, H, W = out["gt"]["num_frames"], out["gt"]["height"], out["gt"]["width"]
        cols, rows = atlas_grid(T, H, W)
        out["segmentation"] = {"cols": cols, "rows": rows, "width": W, "height": H, "frames": T}
    return out


def atlas_grid(T: int, H: int, W: int) -> tuple[int, int]:
    """Columns and rows of the segmentation atlas: near-square, each side under :data:`MAX_ATLAS_SIDE`."""
    cols = max(1, min(T, math.ceil(math.sqrt(T * H / max(W, 1))), MAX_ATLAS_SIDE // max(W, 1)))
    return cols, math.ceil(T / cols)


def segmentation_atlas(corpus_root: Path, clip_id: str) -> bytes:
    """PNG of the clip's segmentation: frame ``k`` at column ``k % cols``, row ``k // cols``, RGBA.

    Background is transparent; object ``seg_id`` is :func:`seg_colour` at alpha :data:`SEG_ALPHA`.

    Raises:
        ClipNotFound: no clip, or no segmentation for it.
    """
    from PIL import Image

    c, rec = _open(corpus_root, clip_id)
    _, npz = _gt_paths(c, rec)
    if npz is None:
        raise ClipNotFound(f"clip {clip_id!r} has no segmentation")
    with np.load(npz, allow_pickle=False) as z:
        if "segmentation" not in z:
            raise ClipNotFound(f"clip {clip_id!r} has no segmentation")
        seg = np.asarray(z["segmentation"])  # (T, H, W)
    T, H, W = seg.shape
    lut = np.zeros((256, 4), np.uint8)
    for k in range(1, 256):
        lut[k] = (*seg_colour(k), SEG_ALPHA)
    cols, rows = atlas_grid(T, H, W)
    atlas = np.zeros((rows * H, cols * W, 4), np.uint8)
    for t in range(T):
        r, q = divmod(t, cols)
        atlas[r * H:(r + 1) * H, q * W:(q + 1) * W] = lut[seg[t].astype(np.uint8)]
    buf = io.BytesIO()
    Image.fromarray(atlas, "RGBA").save(buf, format="PNG", optimize=False)
    return buf.getvalue()
