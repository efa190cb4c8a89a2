"""What the dashboard shows, as JSON-ready dicts: training curves and corpora.

Everything here only reads, through the contracts (:class:`skyloom.rundir.RunDir`,
:class:`skyloom.corpus.Corpus`), and copes with half-written inputs: a run with no checkpoint or
a torn ``metrics.jsonl`` line, a corpus with no clips or an unreadable manifest part (reported
as an ``error`` string in the payload instead of failing the page).
"""

from __future__ import annotations

import logging
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np

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


def corpus_summary(records: list) -> dict[str, Any]:
    """Charts of the Corpus view, over all clips: durations, resolutions, caption lengths, licenses."""
    cap_words = [len(c.text.split()) for r in records for c in r.captions]
    res = Counter(f"{r.width}x{r.height}" for r in records)
    quality_names = sorted({k for r in records for k in r.quality})
    return {
        "clips": len(records),
        "hours": round(sum(float(r.duration_s) for r in records) / 3600, 4),
        "captioned": sum(1 for r in records if r.captions),
        "duration_s": _histogram([float(r.duration_s) for r in records]),
        "caption_words": _histogram([float(w) for w in cap_words]),
        "resolutions": dict(res.most_common(20)),
        "licenses": dict(Counter(r.license_id for r in records).most_common()),
        "source_kinds": dict(Counter(r.source_kind for r in records).most_common()),
        "splits": dict(Counter(r.split for r in records).most_common()),
        "quality_names": quality_names,
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


def corpus_data(root: Path, roots: SafeRoots, max_clips: int = 5000) -> dict[str, Any]:
    """Payload of one corpus: summary over every clip and up to ``max_clips`` clip rows."""
    from skyloom.corpus import Corpus, CorpusError, ManifestError

    out: dict[str, Any] = {"name": root.name, "path": str(root), "clips": [], "truncated": False,
                           "summary": corpus_summary([]), "quarantined": 0, "quarantine": [], "error": None}
    try:
        c = Corpus(root)
        out["name"] = str(c.info.get("name") or root.name)
        records = c.records()
        quarantined = c.quarantined()
        out["quarantined"] = len(quarantined)
        out["quarantine"] = [{k: str(q.get(k, "")) for k in ("stage", "item", "reason", "time")}
                             for q in quarantined[-MAX_LISTED:]]  # the newest
    except (CorpusError, ManifestError, OSError) as e:
        out["error"] = str(e)
        log.warning("corpus %s: %s", root, e)
        return out
    out["summary"] = corpus_summary(records)
    out["annotations"] = corpus_annotations(c)
    out["truncated"] = len(records) > max_clips
    out["clips"] = [_clip_payload(r, c.root, roots) for r in records[:max_clips]]
    return out
