"""Leaderboards for any video model: export a suite for submitters, score a folder of their videos.

``skyloom eval export --suite S --out DIR`` writes what another system needs to generate the
suite's videos (VBench, EvalCrafter and Physics-IQ take submissions the same way):

- ``items.jsonl`` / ``items.csv``: one line per item: ``item_id, task, prompt, seed, category,
  frames, fps, width, height, cond_frames, cond_path`` (``task``: ``t2v``, ``i2v`` (one given
  frame), ``extension`` (several given frames of a clip) or ``physics`` (continue a simulated
  clip from its first ``cond_frames`` frames));
- ``cond/<item_id>/frame-000.png ...`` (lossless) and ``cond/<item_id>.mp4``: the given frames;
- ``suite.yaml`` (the resolved suite), ``manifest.json`` (suite name, version, content hash,
  protocol) and ``README.md`` for submitters;
- with ``--ground-truth``: ``ground_truth/<item_id>.mp4``, the answers (simulator clips or the
  matched reference clips), to check a submission pipeline end to end. Never hand these out.

``skyloom eval --suite S --videos DIR --name NAME`` scores ``DIR/<item_id>.mp4``. Each file is
checked against its item (:func:`check_folder`): missing, extra, unreadable, wrong frame rate
(more than 1% off the item's ``fps``), too short (fewer frames than the item asks), wrong size.
Every mismatch is reported per item (the command's table, the entry's ``meta.conformed``, or a
``failures`` row) and the mismatch policy (``--mismatch``) is explicit and stored with the entry:

- ``resize`` (default): a video at another frame rate is resampled to the item's ``fps`` by
  nearest timestamp; then frames beyond the item's count are dropped (the first ``frames`` are
  kept), frames of another size are resized to the item's ``width x height`` (OpenCV
  ``INTER_AREA``); a too-short video is not padded: the item fails;
- ``refuse``: any frame-rate, size or frame-count difference fails the item.

The conformed videos are written beside the entry's results (``OUT/<suite>/<eval_id>/videos``;
a file that needs no change is copied byte for byte) and scored by the same code as a
checkpoint's; the entry is stored with ``kind = submission`` and its metadata (``--meta
key=value``: who, model, date, settings, ...).
"""

from __future__ import annotations

import csv
import hashlib
import json
import logging
import shutil
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from skyloom.errors import UserError
from skyloom.eval.harness.items import SuiteItem
from skyloom.eval.harness.suites import Suite
from skyloom.rundir import DEFAULT_EVAL_OUT, EvalDir, locate_store
from skyloom.video import conform_clip

logger = logging.getLogger(__name__)

EXPORT_FORMAT = "skyloom-suite-export"
EXPORT_FORMAT_VERSION = 1
MISMATCH_POLICIES = ("resize", "refuse")
ITEM_COLUMNS = ("item_id", "task", "prompt", "seed", "category", "frames", "fps", "width", "height", "cond_frames",
                "cond_path")
DEFAULT_FPS = 8.0


class SubmissionError(UserError, ValueError):
    """A submission folder or option that cannot be scored at all (named in the message)."""


def suite_items(suite: Suite) -> list[SuiteItem]:
    """Every item of a suite (prompts, then physics probes, rendered), as the runner scores them."""
    from skyloom.eval.harness.scoring import physics_items

    return [*suite.items(), *physics_items(suite)]


def task_of(item: Mapping[str, Any]) -> str:
    """``t2v``, ``i2v``, ``extension`` or ``physics`` (see the module docstring)."""
    if item.get("kind") == "physics":
        return "physics"
    cond = item.get("cond_frames")
    if cond is None:
        return "t2v"
    return "i2v" if len(cond) == 1 else "extension"


def item_spec(suite: Suite, item: Mapping[str, Any]) -> dict[str, Any]:
    """What a video for ``item`` must be: frames, fps, width, height (``None``: not fixed by the suite)."""
    g = suite.generation
    cond = item.get("cond_frames")
    return {"item_id": item["item_id"], "task": task_of(item), "prompt": item["prompt"], "seed": int(item["seed"]),
            "category": item.get("category"),
            "frames": item.get("num_frames") or g.num_frames,
            "fps": item.get("fps") or g.fps or DEFAULT_FPS,
            "width": item.get("width") or g.width, "height": item.get("height") or g.height,
            "cond_frames": 0 if cond is None else len(cond),
            "cond_path": None if cond is None else f"cond/{item['item_id']}"}


def export_suite(suite: Suite, out: str | Path, *, ground_truth: bool = False,
                 items: Sequence[Mapping[str, Any]] | None = None) -> dict[str, Any]:
    """Write the submitter's kit of ``suite`` to ``out`` (see the module docstring); the manifest.

    Args:
        ground_truth: also write ``ground_truth/<item_id>.mp4`` for items that have one.
        items: the suite's items if already built (default: :func:`suite_items`).

    Raises:
        SubmissionError: ``ground_truth`` asked for a suite without any ground truth.
    """
    import cv2

    from skyloom.config import save_resolved
    from skyloom.fsutil import atomic_write_json, atomic_write_text
    from skyloom.video import write_video

    out = Path(out)
    items = items if items is not None else suite_items(suite)
    specs = [item_spec(suite, it) for it in items]
    out.mkdir(parents=True, exist_ok=True)
    for it, sp in zip(items, specs):
        cond = it.get("cond_frames")
        if cond is None:
            continue
        d = out / "cond" / it["item_id"]
        d.mkdir(parents=True, exist_ok=True)
        for i, f in enumerate(np.asarray(cond)):  # (k, H, W, 3)
            cv2.imwrite(str(d / f"frame-{i:03d}.png"), cv2.cvtColor(np.ascontiguousarray(f), cv2.COLOR_RGB2BGR))
        write_video(out / "cond" / f"{it['item_id']}.mp4", np.asarray(cond), fps=sp["fps"])
    n_gt = 0
    if ground_truth:
        from skyloom.eval.harness.calibration import ground_truth_clips

        gts = ground_truth_clips(suite, items)
        if not gts:
            raise SubmissionError(f"suite {suite.name!r} has no ground truth to export (no physics scenes, and no "
                                  "reference corpus: --set suite.reference.corpus=PATH)")
        for it, sp in zip(items, specs):
            if it["item_id"] in gts:
                write_video(out / "ground_truth" / f"{it['item_id']}.mp4", gts[it["item_id"]], fps=sp["fps"])
                n_gt += 1
    with open(out / "items.jsonl", "w") as f:
        for sp in specs:
            f.write(json.dumps(sp, sort_keys=True) + "\n")
    with open(out / "items.csv", "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(ITEM_COLUMNS))
        w.writeheader()
        w.writerows(specs)
    save_resolved(suite, out / "suite.yaml")
    manifest = {"format": EXPORT_FORMAT, "format_version": EXPORT_FORMAT_VERSION, "suite": suite.name,
                "version": suite.version, "suite_version": suite.version_tag, "content_hash": suite.content_hash(),
                "items": len(specs), "tasks": sorted({s["task"] for s in specs}), "ground_truth": n_gt,
                "video": {"container": "mp4", "name": "<item_id>.mp4", "colour": "RGB, 8 bit"},
                "mismatch_policies": {"resize": RESIZE_PROTOCOL, "refuse": REFUSE_PROTOCOL}}
    atomic_write_json(out / "manifest.json", manifest)
    atomic_write_text(out / "README.md", _readme(suite, specs, manifest))
    return manifest


RESIZE_PROTOCOL = ("a video at another frame rate is resampled to the item's fps by nearest timestamp; then frames "
                   "beyond the item's count are dropped (the first `frames` are kept); other sizes are resized "
                   "to width x height with OpenCV INTER_AREA; a video with fewer frames than asked fails its item")
REFUSE_PROTOCOL = "any difference in frame rate, frame count or size fails the item"
FPS_TOLERANCE = 0.01  # relative: 23.976 vs 24 fps is the same rate, 24 vs 8 is not


def _readme(suite: Suite, specs: list[dict[str, Any]], manifest: dict[str, Any]) -> str:
    tasks = ", ".join(f"{t} ({sum(s['task'] == t for s in specs)})" for t in manifest["tasks"])
    return f"""# Submitting videos for the skyloom suite `{suite.name}`

Suite version `{manifest['suite_version']}` (content hash `{manifest['content_hash']}`): scores are only
ranked against entries made for exactly this version.

## What to generate

One video per line of `items.jsonl` (or `items.csv`), {len(specs)} in all; tasks: {tasks}.

- `prompt` and `seed`: generate from this prompt with this seed (record how your sampler uses it).
- `frames`, `fps`, `width`, `height`: the video's length, frame rate and size.
- `t2v`: text to video. `i2v` / `extension`: the video starts with the given frame(s) in
  `cond/<item_id>/` (PNG, lossless; `cond/<item_id>.mp4` for convenience). `physics`: continue
  the simulated clip whose first `cond_frames` frames are given; the video holds all `frames`
  frames (the given ones first) and only the frames after them are scored.

## What to hand in

A folder of `<item_id>.mp4` files (H.264 or anything FFmpeg decodes), then:

    skyloom eval --suite {suite.name} --videos YOUR_FOLDER --name YOUR_MODEL \\
        --meta who=YOU --meta model=MODEL_ID --meta date=YYYY-MM-DD --meta settings="steps=50 cfg=6"

Missing, extra, unreadable, too-short or wrong-size videos are listed by item. Mismatch policy
(`--mismatch`, recorded with the entry):

- `resize` (default): {RESIZE_PROTOCOL}.
- `refuse`: {REFUSE_PROTOCOL}.
"""


# -- checking a folder -------------------------------------------------------------------------
@dataclass
class FolderCheck:
    """What :func:`check_folder` found: per item the problems, the files to score, extra files."""

    videos: dict[str, Path] = field(default_factory=dict)  # item id -> submitted file (readable)
    problems: dict[str, list[str]] = field(default_factory=dict)  # item id -> what is wrong (item fails)
    notes: dict[str, list[str]] = field(default_factory=dict)  # item id -> what the policy changed
    extra: list[str] = field(default_factory=list)  # files that match no item

    def rows(self) -> list[dict[str, str]]:
        """One row per problem, note or extra file: ``item_id``, ``status`` (failed/conformed/extra), ``what``."""
        out = [{"item_id": i, "status": "failed", "what": w} for i, ws in sorted(self.problems.items()) for w in ws]
        out += [{"item_id": i, "status": "conformed", "what": w} for i, ws in sorted(self.notes.items()) for w in ws]
        out += [{"item_id": f, "status": "extra", "what": "matches no item of the suite; ignored"} for f in self.extra]
        return out


def conform(frames: np.ndarray, spec: dict[str, Any], policy: str) -> tuple[np.ndarray | None, list[str], list[str]]:
    """Apply the mismatch policy to one decoded video: (frames or None, problems, notes)."""
    T, H, W = frames.shape[:3]
    want_t, want_w, want_h = spec["frames"], spec["width"], spec["height"]
    problems, notes = [], []
    if want_t is not None and T < want_t:
        problems.append(f"too short: {T} frame(s), the item needs {want_t}")
    elif want_t is not None and T > want_t:
        if policy == "refuse":
            problems.append(f"wrong frame count: {T}, expected {want_t} (--mismatch refuse)")
        else:
            notes.append(f"trimmed from {T} to the first {want_t} frames")
            frames = conform_clip(frames, num_frames=want_t)
    if want_w is not None and want_h is not None and (W, H) != (want_w, want_h):
        if policy == "refuse":
            problems.append(f"wrong size: {W}x{H}, expected {want_w}x{want_h} (--mismatch refuse)")
        else:
            notes.append(f"resized from {W}x{H} to {want_w}x{want_h} (INTER_AREA)")
            frames = conform_clip(frames, height=want_h, width=want_w)
    return (None if problems else frames), problems, notes


def check_folder(folder: str | Path, specs: dict[str, dict[str, Any]], policy: str = "resize",
                 conformed: dict[str, np.ndarray] | None = None) -> FolderCheck:
    """Check ``folder/<item_id>.mp4`` against each item's spec under ``policy``.

    Args:
        specs: item id -> :func:`item_spec`.
        conformed: filled with item id -> the frames to score when the policy changed them.

    Raises:
        SubmissionError: the folder does not exist, or ``policy`` is unknown.
    """
    from skyloom.video import VideoError, probe_video, read_video

    folder = Path(folder)
    if policy not in MISMATCH_POLICIES:
        raise SubmissionError(f"--mismatch {policy!r} is not one of: {', '.join(MISMATCH_POLICIES)}")
    if not folder.is_dir():
        raise SubmissionError(f"submission folder {folder} does not exist or is not a folder")
    res = FolderCheck()
    files = {p.stem: p for p in sorted(folder.iterdir()) if p.is_file() and p.suffix.lower() == ".mp4"}
    res.extra = sorted(p.name for stem, p in files.items() if stem not in specs)
    res.extra += sorted(p.name for p in folder.iterdir() if p.is_file() and p.suffix.lower() != ".mp4"
                        and not p.name.startswith("."))
    for iid, spec in specs.items():
        path = files.get(iid)
        if path is None:
            res.problems[iid] = [f"missing: no {iid}.mp4"]
            continue
        want_fps, fps_note = spec.get("fps"), []
        try:
            got_fps = probe_video(path).fps
            if want_fps and got_fps and abs(got_fps - want_fps) > FPS_TOLERANCE * want_fps:
                if policy == "refuse":
                    res.problems[iid] = [f"wrong frame rate: {got_fps:g} fps, expected {want_fps:g} "
                                         "(--mismatch refuse)"]
                    continue
                frames = read_video(path, fps=want_fps)  # (T, H, W, 3) at the item's rate
                fps_note = [f"resampled from {got_fps:g} to {want_fps:g} fps (nearest timestamp)"]
            else:
                frames = read_video(path)  # (T, H, W, 3)
                if want_fps and not got_fps:
                    fps_note = [f"frame rate unknown; taken as the item's {want_fps:g} fps"]
        except VideoError as e:
            res.problems[iid] = [f"unreadable: {e}"]
            continue
        out, problems, notes = conform(frames, spec, policy)
        notes = fps_note + notes  # a resampled video is written out like a trimmed or resized one
        if problems:
            res.problems[iid] = problems
            continue
        res.videos[iid] = path
        if notes:
            res.notes[iid] = notes
            if conformed is not None and out is not None:
                conformed[iid] = out
    return res


def folder_fingerprint(folder: Path) -> list[tuple[str, int, int]]:
    """(name, size, mtime) of every file: a changed submission is a new evaluation."""
    return [(p.name, p.stat().st_size, p.stat().st_mtime_ns) for p in sorted(folder.iterdir()) if p.is_file()]


def entry_base_and_db(cfg: Any) -> tuple[Path, str]:
    """Where entries not tied to a run go: (``--out`` or ./skyloom-eval, the store by
    :func:`skyloom.rundir.locate_store`: ``--db``, ``$SKYLOOM_RESULTS_DB``, else that folder's results.sqlite)."""
    base = Path(cfg.out or DEFAULT_EVAL_OUT)
    return base, locate_store(cfg.db, out=base)[0]


def parse_meta(pairs: list[str] | tuple[str, ...]) -> dict[str, str]:
    """``["who=Ada", "model=x"]`` -> dict; a pair without ``=`` or an empty key is an error naming it."""
    out = {}
    for p in pairs:
        k, sep, v = p.partition("=")
        if not sep or not k.strip():
            raise SubmissionError(f"--meta {p!r}: expected key=value (e.g. --meta who=ada --meta model=my-model)")
        out[k.strip()] = v
    return out


def run_submission(cfg: Any, videos: str | Path, name: str, meta: dict[str, str] | None = None,
                   mismatch: str = "resize", *, metrics: Any = None, suite: Suite | None = None,
                   store: Any = None, items: Sequence[Mapping[str, Any]] | None = None) -> tuple[Any, FolderCheck]:
    """Score a folder of ``<item_id>.mp4`` as a ``submission`` entry of ``cfg.suite``.

    Args:
        cfg: :class:`skyloom.eval.harness.runner.EvalConfig` (suite, db, out, bootstrap settings).
        videos: the submission folder.
        name: the entry's name on the boards (the latest submission of a name is the one ranked).
        meta: free-form metadata (who, model, date, settings, ...), stored with the entry.
        mismatch: ``resize`` or ``refuse`` (module docstring).

    Returns:
        (:class:`skyloom.eval.harness.runner.EvalResult`, the :class:`FolderCheck`).

    Raises:
        SubmissionError: no such folder, unknown policy, empty name, or no usable video at all.
    """
    from skyloom.config import to_dict
    from skyloom.eval.features.cache import FeatureCache
    from skyloom.eval.harness.runner import (
        EvalResult,
        _Ctx,
        _safe,
        finish_eval,
        git_hash,
        make_scorer,
    )
    from skyloom.eval.harness.suites import load_suite, suite_to_dict
    from skyloom.eval.results.store import ResultsStore, public_config
    from skyloom.video import write_video

    t0 = time.perf_counter()
    if not name or not name.strip():
        raise SubmissionError("--name must be a non-empty name for the submission")
    folder = Path(videos).expanduser().resolve()
    if not folder.is_dir():
        raise SubmissionError(f"submission folder {videos} does not exist or is not a folder")
    if mismatch not in MISMATCH_POLICIES:
        raise SubmissionError(f"--mismatch {mismatch!r} is not one of: {', '.join(MISMATCH_POLICIES)}")
    if metrics is None:
        from skyloom.eval.metrics import METRICS as metrics
    suite = suite or load_suite(cfg.suite, cfg.suite_overrides, metric_names=metrics.names())
    items = items if items is not None else suite_items(suite)
    specs = {it["item_id"]: item_spec(suite, it) for it in items}
    conformed: dict[str, np.ndarray] = {}
    check = check_folder(folder, specs, mismatch, conformed)
    if not check.videos:
        raise SubmissionError(f"submission folder {folder}: none of the suite's {len(specs)} items has a usable "
                              f"video ({len(check.problems)} problem(s), e.g. "
                              f"{next(iter(check.problems.values()))[0] if check.problems else 'none'})")
    ident = {"name": name, "folder": str(folder), "files": folder_fingerprint(folder), "suite": suite.content_hash(),
             "mismatch": mismatch}
    h = hashlib.sha256(json.dumps(ident, sort_keys=True).encode()).hexdigest()[:10]
    eval_id = f"{suite.name}-v{suite.version}-sub-{_safe(name)}-{h}"
    base, db = entry_base_and_db(cfg)
    ctx = _Ctx(eval_id, f"submission:{name}", name, None, None, EvalDir(base, suite.name, eval_id))
    store = store or ResultsStore(db)
    record = {"suite": {**suite_to_dict(suite), "primary_metric": suite.primary}, "eval": public_config(to_dict(cfg))}
    from skyloom.eval.harness.probes import draw_record

    draw = draw_record(items)
    if draw is not None:
        record["physics_probes"] = draw
    protocol = RESIZE_PROTOCOL if mismatch == "resize" else REFUSE_PROTOCOL
    entry_meta = {**(meta or {}), "submitted_from": str(folder), "mismatch": mismatch, "mismatch_protocol": protocol,
                  "scored_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                  "conformed": {i: n for i, n in sorted(check.notes.items())}, "extra_files": check.extra}
    store.begin_eval(eval_id, suite=suite.name, suite_version=suite.version_tag, checkpoint=ctx.checkpoint,
                     checkpoint_name=name, git_hash=git_hash(), config=record, status="running",
                     kind="submission", meta=entry_meta)
    store.clear_failures(eval_id)
    for iid, problems in check.problems.items():
        store.add_failure(eval_id, iid, "submission", "; ".join(problems))
    ctx.video_dir.mkdir(parents=True, exist_ok=True)
    for iid, src in check.videos.items():
        dst = ctx.video_path(iid)
        if dst.exists():
            continue
        if iid in conformed:
            write_video(dst, conformed[iid], fps=specs[iid]["fps"],
                        metadata={"item_id": iid, "submission": name, "source": src.name, "policy": mismatch})
        else:
            shutil.copy2(src, dst)
    scorer = make_scorer(suite, cfg, metrics, FeatureCache(cfg.cache_dir, enabled=cfg.use_cache))
    result = EvalResult(suite=suite.name, db=store.url)
    result.evals.append(finish_eval(store, scorer, suite, cfg, ctx, items, t0))
    result.seconds = time.perf_counter() - t0
    result.cache_stats = dict(scorer.stats)
    return result, check
