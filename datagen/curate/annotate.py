"""The annotation job: run annotators over a corpus's clips into ``annotations.parquet``.

``skyloom corpus annotate CORPUS`` (and ingest's ``curate.annotate``) runs :func:`run_annotate`:
every live clip is decoded once (thinned evenly to at most ``max_frames`` frames), passed to each
annotator of :data:`~skyloom.datagen.curate.annotators.ANNOTATORS` named in ``annotators``, and
its values are written as columns of ``annotations.parquet`` beside the manifest (one row per
clip, joined on ``id``; ``<annotator>_version`` says which annotator version and tool made the
values; ``sha256`` is the clip's). The job is resumable: a clip whose row already holds the
current version of an annotator, for the same clip sha256, is not annotated again by it, and rows
are saved every ``chunk`` clips. Small jobs run in-process; from ``ray_min_clips`` clips on (or
``executor: ray``, or a cluster address) it is a Ray Data job, the ``auto`` rule of render and ingest.

Read the annotations with pandas or DuckDB::

    SELECT m.id, a.camera_motion, a.text_area FROM 'CORPUS/manifest.parquet' m
    JOIN 'CORPUS/annotations.parquet' a USING (id)
"""

from __future__ import annotations

import dataclasses
import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pyarrow as pa

from skyloom.corpus import ClipRecord, Corpus
from skyloom.datagen.curate.annotators import ANNOTATORS
from skyloom.datagen.curate.store import ANNOTATIONS, SideTable

DEFAULT_ANNOTATORS = ("camera_motion", "technical", "text")


@dataclass(frozen=True)
class AnnotateConfig:
    """Settings of ``skyloom corpus annotate``.

    Attributes:
        annotators: names in the annotator registry (``camera_motion``, ``text``, ``technical``,
            ``aesthetic``, or a plug-in's).
        options: per annotator, its options (``options.text.frames=5``), checked against its config class.
        max_frames: a clip is decoded with an even stride to at most this many frames.
        executor: ``auto`` (Ray from ``ray_min_clips`` clips to annotate), ``local`` or ``ray``.
        ray_min_clips: the ``auto`` executor's threshold (docs/benchmarks.md: with OCR, ~1.2 CPU-s a
            clip, a local Ray start-up pays for itself from ~30 clips; without OCR raise it to ~500).
        chunk: rows are saved every ``chunk`` clips (what an interrupted run keeps).
    """

    annotators: tuple[str, ...] = DEFAULT_ANNOTATORS
    options: dict[str, Any] = field(default_factory=dict)
    max_frames: int = 48
    executor: Literal["auto", "local", "ray"] = "auto"
    ray_min_clips: int = 32
    chunk: int = 64


@dataclass
class AnnotateResult:
    clips: int
    annotated: int
    failed: int
    seconds: float
    path: Path


def build_annotators(cfg: AnnotateConfig) -> list[Any]:
    """Instantiate the configured annotators (options checked; unknown names and options fail here)."""
    from skyloom.config import ConfigError

    unknown = set(cfg.options) - set(cfg.annotators)
    if unknown:
        raise ConfigError(f"options: {', '.join(sorted(unknown))} not in annotators ({', '.join(cfg.annotators)})")
    return [ANNOTATORS.build(name, options=cfg.options.get(name), where=f"options.{name}") for name in cfg.annotators]


def version_string(a: Any) -> str:
    return f"{a.version}; {a.tool}"


def clip_frames(path: str | Path, num_frames: int, fps: float, max_frames: int) -> tuple[np.ndarray, float]:
    """Decode a clip thinned evenly to at most ``max_frames`` frames: (uint8 (T, H, W, 3), their fps)."""
    from skyloom.video import read_video

    stride = max(1, int(np.ceil(num_frames / max_frames)))
    frames = read_video(path, stride=stride, num_frames=max_frames)
    return frames, fps / stride


def annotate_clip(annotators: list[Any], item: dict[str, Any], max_frames: int) -> dict[str, Any]:
    """Annotate one clip ``{"id", "sha256", "path", "num_frames", "fps", "todo": [names]}`` -> row (or error)."""
    try:
        frames, fps = clip_frames(item["path"], item["num_frames"], item["fps"], max_frames)
        row: dict[str, Any] = {"id": item["id"], "sha256": item["sha256"]}
        for a in annotators:
            if a.name in item["todo"]:
                row.update(a.annotate(frames, fps))
                row[f"{a.name}_version"] = version_string(a)
        return {"row": json.dumps(row)}
    except Exception as e:  # noqa: BLE001 - a broken clip is reported, the others go on
        return {"id": item["id"], "error": f"{type(e).__name__}: {e}"}


class _RayAnnotate:
    """Ray Data actor: builds the annotators once per worker."""

    def __init__(self, cfg_json: str) -> None:
        self.cfg = _cfg_from_json(cfg_json)
        self.annotators = build_annotators(self.cfg)

    def __call__(self, item: dict[str, Any]) -> dict[str, Any]:
        res = annotate_clip(self.annotators, {**item, "todo": json.loads(item["todo"])}, self.cfg.max_frames)
        return {"row": res.get("row", ""), "id": res.get("id", ""), "error": res.get("error", "")}


def _cfg_from_json(text: str) -> AnnotateConfig:
    d = json.loads(text)
    return AnnotateConfig(**{**d, "annotators": tuple(d["annotators"])})


def schema_for(annotators: list[Any], existing: pa.Schema | None = None) -> pa.Schema:
    fields = {"id": pa.string(), "sha256": pa.string()}
    if existing is not None:
        fields.update({f.name: f.type for f in existing})
    for a in annotators:
        fields.update(a.columns)
        fields[f"{a.name}_version"] = pa.string()
    return pa.schema(list(fields.items()))


def pending(recs: list[ClipRecord], annotators: list[Any], rows: dict[str, dict]) -> list[dict[str, Any]]:
    """Clips with an annotator whose current version is not in their row (or whose file changed)."""
    out = []
    for r in recs:
        row = rows.get(r.id) or {}
        fresh = row.get("sha256") == r.sha256
        todo = [a.name for a in annotators if not fresh or row.get(f"{a.name}_version") != version_string(a)]
        if todo:
            out.append({"id": r.id, "sha256": r.sha256, "num_frames": r.num_frames, "fps": r.fps, "todo": todo})
    return out


def run_annotate(corpus: Corpus | str | Path, cfg: AnnotateConfig | None = None, ray_address: str | None = None,
                 on_progress=None, ids: list[str] | None = None) -> AnnotateResult:
    """Annotate the corpus's live clips (or ``ids``) into ``annotations.parquet``; resumable."""
    from skyloom.raytools import use_ray

    cfg = cfg or AnnotateConfig()
    c = corpus if isinstance(corpus, Corpus) else Corpus(corpus)
    t0 = time.perf_counter()
    annotators = build_annotators(cfg)
    table = SideTable(c.root, ANNOTATIONS)
    old = table.read()
    rows = {} if old is None else {r["id"]: r for r in old.to_pylist()}
    recs = [r for r in c.records() if ids is None or r.id in set(ids)]
    todo = pending(recs, annotators, rows)
    paths = {r.id: str(c.abspath(r)) for r in recs}
    for it in todo:
        it["path"] = paths[it["id"]]
    schema = schema_for(annotators, old.schema if old is not None else None)
    if use_ray(cfg.executor, len(todo), cfg.ray_min_clips, ray_address):
        results = _ray_results(todo, cfg, ray_address)
    else:
        results = (annotate_clip(annotators, it, cfg.max_frames) for it in todo)
    batch: list[dict[str, Any]] = []
    failed = done = 0

    def flush() -> None:
        if batch:
            # keep the other annotators' values of a row made from the same file
            merged = [{**(rows.get(r["id"], {}) if rows.get(r["id"], {}).get("sha256") == r["sha256"] else {}), **r}
                      for r in batch]
            table.upsert(pa.Table.from_pylist(merged, schema=schema))
            batch.clear()

    for res in results:
        done += 1
        if res.get("error"):
            failed += 1
            c.quarantine("annotate", res["id"], "annotation failed", detail=res["error"])
        else:
            batch.append(json.loads(res["row"]))
            if len(batch) >= cfg.chunk:
                flush()
        if on_progress is not None:
            on_progress(done, len(todo))
    flush()
    return AnnotateResult(clips=len(recs), annotated=done - failed, failed=failed, seconds=time.perf_counter() - t0,
                          path=table.path)


def _ray_results(todo: list[dict[str, Any]], cfg: AnnotateConfig, ray_address: str | None):
    from skyloom.raytools import init_ray

    ray = init_ray(ray_address)
    cpus = int(ray.cluster_resources().get("CPU", 1))
    items = [{**it, "todo": json.dumps(it["todo"])} for it in todo]
    ds = ray.data.from_items(items, override_num_blocks=max(1, min(len(items), 4 * cpus)))
    ds = ds.map(_RayAnnotate, fn_constructor_kwargs={"cfg_json": json.dumps(dataclasses.asdict(cfg))}, num_cpus=1,
                compute=ray.data.ActorPoolStrategy(size=max(1, min(cpus - 1 or 1, len(items)))))
    yield from ds.iter_rows()


def read_annotations(corpus: Corpus | str | Path):
    """Manifest snapshot joined with ``annotations.parquet`` (and the dedup marks) as a pandas DataFrame,
    one row per live clip; annotation columns are missing (NaN) for clips not annotated yet."""
    import pandas as pd

    c = corpus if isinstance(corpus, Corpus) else Corpus(corpus)
    df = c.to_pandas()
    ann = SideTable(c.root, ANNOTATIONS).read()
    if ann is not None:
        a = ann.to_pandas().drop(columns=["sha256"], errors="ignore")
        df = df.merge(a, on="id", how="left")
    from skyloom.datagen.curate.store import DEDUP

    dd = SideTable(c.root, DEDUP).read()
    df["duplicate"] = False
    if dd is not None:
        dup = dict(zip(dd.column("id").to_pylist(), dd.column("duplicate").to_pylist(), strict=True))
        df["duplicate"] = df["id"].map(lambda i: bool(dup.get(i, False)))
    from skyloom.datagen.curate.store import SEMDEDUP

    sem = SideTable(c.root, SEMDEDUP).read()
    if sem is not None:
        sd = dict(zip(sem.column("id").to_pylist(), sem.column("semantic_duplicate").to_pylist(), strict=True))
        df["semantic_duplicate"] = df["id"].map(lambda i: sd.get(i))
    q = pd.DataFrame([dict(x) for x in df["quality"]], index=df.index) if len(df) else pd.DataFrame(index=df.index)
    for col in q.columns:
        if col not in df.columns:
            df[col] = q[col]
    return df
