"""What the dashboard shows, as JSON-ready dicts: training curves and corpora.

Everything here only reads, through the contracts (:class:`skyloom.rundir.RunDir`,
:class:`skyloom.corpus.Corpus`), and copes with half-written inputs: a run with no checkpoint or
a torn ``metrics.jsonl`` line, a corpus with no clips or an unreadable manifest part (reported
as an ``error`` string in the payload instead of failing the page).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from skyloom.dashboards.paths import SafeRoots
from skyloom.rundir import RunDir, find_runs

log = logging.getLogger(__name__)

MAX_LISTED = 200  # quarantine entries / failures listed per corpus / evaluation (newest)
MAX_POINTS = 2000  # per training series; longer ones are thinned evenly (first and last kept)
NON_METRIC_KEYS = frozenset({"step", "time", "kind"})


def discover_runs(dirs: list[Path]) -> list[RunDir]:
    """Every run directory at or below each of ``dirs`` (a run itself or a folder of runs)."""
    seen: set[Path] = set()
    out: list[RunDir] = []
    for d in dirs:
        for r in find_runs(d):
            key = r.root.resolve()
            if key not in seen:
                seen.add(key)
                out.append(r)
    return out


def _thin_indices(n: int, limit: int = MAX_POINTS) -> np.ndarray:
    if n <= limit:
        return np.arange(n)
    return np.unique(np.linspace(0, n - 1, limit).round().astype(int))


def run_series(run: RunDir) -> dict[str, dict[str, list[list[float]]]]:
    """``{kind: {metric: [[step, value], ...]}}`` from ``metrics.jsonl`` (finite numbers only).

    Lines without a numeric ``step`` are skipped; a torn last line is already dropped by
    :func:`skyloom.fsutil.read_jsonl`. Repeated steps (a resumed run) keep the last value.
    Series longer than :data:`MAX_POINTS` are thinned evenly (first and last point kept).
    """
    cols: dict[tuple[str, str], tuple[list, list]] = {}
    for m in run.metrics():
        step = m.get("step")
        if type(step) not in (int, float):  # bool and str are not steps
            continue
        kind = str(m.get("kind", "train"))
        for k, v in m.items():
            if k in NON_METRIC_KEYS or type(v) not in (int, float):
                continue
            c = cols.get((kind, k))
            if c is None:
                c = cols[(kind, k)] = ([], [])
            c[0].append(step)
            c[1].append(v)
    out: dict[str, dict[str, list[list[float]]]] = {}
    for (kind, k), (steps, vals) in cols.items():
        st = np.asarray(steps, dtype=np.float64)
        va = np.asarray(vals, dtype=np.float64)
        ok = np.isfinite(st) & np.isfinite(va)
        order = np.argsort(st[ok], kind="stable")  # stable: among equal steps, file order
        st, va = st[ok][order], va[ok][order]
        last = np.r_[st[1:] != st[:-1], True] if st.size else np.zeros(0, bool)  # last value per step
        st, va = st[last], va[last]
        idx = _thin_indices(st.size)
        out.setdefault(kind, {})[k] = [[int(a), float(b)] for a, b in zip(st[idx], va[idx])]
    return out


def cached_series(run: RunDir, cache: dict[Any, Any] | None) -> dict[str, dict[str, list[list[float]]]]:
    """:func:`run_series`, re-read only when ``metrics.jsonl`` changed (size or mtime)."""
    if cache is None:
        return run_series(run)
    try:
        st = run.metrics_path.stat()
        key = (str(run.metrics_path.resolve()), st.st_mtime_ns, st.st_size)
    except OSError:
        return {}
    series = cache.get(key)
    if series is None:
        for k in [k for k in list(cache) if k[0] == key[0]]:  # list(): a snapshot, other threads may write
            cache.pop(k, None)
        series = cache[key] = run_series(run)
    return {kind: dict(metrics) for kind, metrics in series.items()}  # callers may add series


def training_data(runs: list[RunDir], cache: dict[Any, Any] | None = None) -> dict[str, Any]:
    """Payload of the Training view: one entry per run with its curves and checkpoints.

    Args:
        runs: the runs to show.
        cache: optional dict kept by the caller to avoid re-parsing unchanged metrics files.
    """
    out = []
    for r in runs:
        try:
            ckpts = [s for s, _ in r.checkpoints()]
        except OSError as e:
            log.warning("%s: cannot list checkpoints (%s)", r.root, e)
            ckpts = []
        out.append({"name": r.name, "path": str(r.root), "created_at": r.info.get("created_at", ""),
                    "preset": r.info.get("preset", ""), "corpus": str(r.info.get("corpus", "") or ""),
                    "checkpoints": ckpts, "series": cached_series(r, cache)})
    return {"runs": out}


# -- corpus ---------------------------------------------------------------------------------
def _histogram(values: list[float], bins: int = 12) -> dict[str, list[float]]:
    if not values:
        return {"edges": [], "counts": []}
    arr = np.asarray(values, dtype=np.float64)
    lo, hi = float(arr.min()), float(arr.max())
    if hi <= lo:
        hi = lo + 1.0
    counts, edges = np.histogram(arr, bins=bins, range=(lo, hi))
    return {"edges": [round(float(e), 4) for e in edges], "counts": [int(c) for c in counts]}


def _clip_payload(rec, corpus_root: Path, roots: SafeRoots) -> dict[str, Any]:
    caps = [{"captioner": c.captioner, "kind": c.kind, "text": c.text, "model_id": c.model_id} for c in rec.captions]
    return {
        "id": rec.id, "path": rec.path, "source_kind": rec.source_kind, "license_id": rec.license_id,
        "split": rec.split,
        "duration_s": round(float(rec.duration_s), 3), "fps": float(rec.fps), "width": int(rec.width),
        "height": int(rec.height), "num_frames": int(rec.num_frames), "author": rec.author,
        "attribution": rec.attribution, "source_url": rec.source_url, "source_page": rec.source_page,
        "parent_id": rec.parent_id,
        "shot": [rec.shot_start_s, rec.shot_end_s] if rec.shot_start_s is not None else None,
        "sha256": rec.sha256, "quality": {k: float(v) for k, v in rec.quality.items()},
        "captions": caps, "created_at": rec.created_at,
        "url": roots.url(corpus_root / rec.path),
    }


SUMMARY_COLUMNS = ("duration_s", "width", "height", "captions", "license_id", "source_kind", "split", "quality")
SCAN_BATCH_ROWS = 65_536  # rows per batch read from the manifest (bounds the summary's memory)


def _add_counts(into: dict[str, int], values: pa.Array | pa.ChunkedArray) -> None:
    """Add the value counts of ``values`` to ``into``, new values in order of first appearance
    (Arrow's ``value_counts`` lists them so), as :class:`collections.Counter` would."""
    if not len(values):
        return
    vc = pc.value_counts(values)
    for v, c in zip(vc.field("values").to_pylist(), vc.field("counts").to_pylist()):
        into[str(v)] = into.get(str(v), 0) + int(c)


def _most_common(counts: dict[str, int], limit: int | None = None) -> dict[str, int]:
    """``Counter.most_common(limit)`` as a dict: by count, ties in first-seen order."""
    return dict(sorted(counts.items(), key=lambda kv: -kv[1])[:limit])


def corpus_summary(tables: pa.Table | Iterable[pa.Table] | None) -> dict[str, Any]:
    """Charts of the Corpus view over all clips (durations, resolutions, caption lengths, licenses),
    from a columnar scan of :data:`SUMMARY_COLUMNS`, one table or batches in id order (None: an empty
    corpus). Only two numbers per clip and one per caption are kept across batches."""
    if tables is None:
        tables = []
    elif isinstance(tables, pa.Table):
        tables = [tables]
    n = captioned = 0
    durations, words = [], []
    res: dict[str, int] = {}
    licenses: dict[str, int] = {}
    kinds: dict[str, int] = {}
    splits: dict[str, int] = {}
    qnames: set[str] = set()
    for t in tables:
        if not t.num_rows:
            continue
        n += t.num_rows
        caps = t.column("captions").combine_chunks()
        texts = pc.list_flatten(caps).field("text")
        tokens = pc.utf8_split_whitespace(pc.fill_null(texts, ""))  # str.split(): runs of whitespace, no empty words
        nonempty = pc.not_equal(pc.list_flatten(tokens), "").to_numpy(zero_copy_only=False)
        words.append(np.bincount(pc.list_parent_indices(tokens).to_numpy()[nonempty], minlength=len(texts)))
        durations.append(t.column("duration_s").to_numpy().astype(np.float64))
        captioned += int(pc.sum(pc.greater(pc.fill_null(pc.list_value_length(caps), 0), 0)).as_py() or 0)
        _add_counts(res, pc.binary_join_element_wise(pc.cast(t.column("width"), pa.string()),
                                                     pc.cast(t.column("height"), pa.string()), "x"))
        _add_counts(licenses, t.column("license_id"))
        _add_counts(kinds, t.column("source_kind"))
        _add_counts(splits, t.column("split"))
        qnames.update(str(q) for q in pc.unique(t.column("quality").combine_chunks().keys).to_pylist())
    dur = np.concatenate(durations) if durations else np.zeros(0)
    return {
        "clips": n,
        "hours": round(float(np.sum(dur)) / 3600, 4),
        "captioned": captioned,
        "duration_s": _histogram(dur.tolist()),
        "caption_words": _histogram(np.concatenate(words).astype(np.float64).tolist() if words else []),
        "resolutions": _most_common(res, 20),
        "licenses": _most_common(licenses),
        "source_kinds": _most_common(kinds),
        "splits": _most_common(splits),
        "quality_names": sorted(qnames),
    }


def corpus_annotations(c) -> dict[str, Any]:
    """Each curation annotation's distribution and the clips at both ends (``corpus stats``), or {}
    when the corpus has no curation files yet."""
    from skyloom.datagen.curate.select import annotation_stats
    from skyloom.datagen.curate.store import TABLES

    if not any((c.root / t).exists() for t in TABLES):
        return {}
    try:
        return annotation_stats(c)["annotations"]
    except (OSError, ValueError) as e:  # a curation file being rewritten or broken: the view shows the rest
        log.warning("corpus %s: annotations: %s", c.root, e)
        return {}


def clip_rows(c, roots: SafeRoots, offset: int = 0, limit: int = 5000, ids: pa.ChunkedArray | None = None,
              **filters: str | None) -> tuple[list[dict[str, Any]], int]:
    """One page of clip rows (by id) and how many clips match: ids from a one-column scan, records
    only for the page (:meth:`Corpus.lookup`). ``filters``: ``split`` / ``source_kind`` (None: any)."""
    if ids is None:
        ids = c.scan([], **{k: v for k, v in filters.items() if v}).column("id")
    page = ids.slice(max(0, offset), max(0, limit)).to_pylist()
    recs = c.lookup(page)
    return [_clip_payload(recs[i], c.root, roots) for i in page if i in recs], len(ids)


def corpus_data(root: Path, roots: SafeRoots, max_clips: int = 5000) -> dict[str, Any]:
    """Payload of one corpus: summary over every clip (a columnar scan of :data:`SUMMARY_COLUMNS`)
    and the first ``max_clips`` clip rows (records read for those only)."""
    from skyloom.corpus import Corpus, CorpusError, ManifestError

    out: dict[str, Any] = {"name": root.name, "path": str(root), "clips": [], "truncated": False, "total": 0,
                           "summary": corpus_summary(None), "quarantined": 0, "quarantine": [], "error": None}
    try:
        c = Corpus(root)
        out["name"] = str(c.info.get("name") or root.name)
        ids: list[pa.Array] = []

        def batches() -> Iterator[pa.Table]:  # the summary's batches; their ids kept for the clip rows
            for t in c.iter_tables(SUMMARY_COLUMNS, SCAN_BATCH_ROWS):
                ids.append(t.column("id"))
                yield t

        summary = corpus_summary(batches())
        quarantined = c.quarantined()
        out["quarantined"] = len(quarantined)
        out["quarantine"] = [{k: str(q.get(k, "")) for k in ("stage", "item", "reason", "time")}
                             for q in quarantined[-MAX_LISTED:]]  # the newest
        out["summary"] = summary
        out["clips"], out["total"] = clip_rows(c, roots, 0, max_clips,
                                               ids=pa.chunked_array(ids, pa.string()))
    except (CorpusError, ManifestError, OSError) as e:
        out["error"] = str(e)
        log.warning("corpus %s: %s", root, e)
        return out
    out["annotations"] = corpus_annotations(c)
    out["truncated"] = out["total"] > max_clips
    return out
