"""Near-duplicate dedup: group clips whose fingerprints match, keep one representative per group.

``skyloom corpus dedup CORPUS`` (and ingest with ``dedup: true``) runs :func:`run_dedup`:

1. fingerprint every live clip (:mod:`skyloom.datagen.curate.fingerprint`), reusing the cached
   fingerprints of ``fingerprints.parquet`` whose clip sha256 and settings are unchanged (so a rerun
   or an interrupted run resumes); in-process for small corpora, as a Ray Data job from
   ``ray_min_clips`` clips on (the ``auto`` executor rule of render and ingest);
2. candidate pairs: each clip's ``candidates`` nearest neighbours by the fingerprint's descriptor
   (its canonical hash bits frame after frame: frame-aligned Hamming similarity), plain and
   mirrored (:func:`skyloom.datagen.curate.index.knn`: FAISS or NumPy);
3. verification: a candidate pair whose :func:`sequence_distance` is at most ``threshold`` bits
   is a duplicate pair; groups are the connected components of duplicate pairs;
4. per group, the representative (:data:`RULE`): the most pixels, then the most frames, then the
   licensed clip before a synthetic one, then the smallest id. Nothing is deleted: every member is
   written to ``dedup.parquet`` (group, kept clip, similarity to it, rule, version) and its manifest
   row gets ``meta["dedup"]`` with the same fields, ``duplicate: true`` for all but the representative.

After a takedown :func:`reelect` drops the removed clips from their groups and elects a new
representative among the members left (a group of one is dissolved).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pyarrow as pa

from skyloom.corpus import ClipRecord, Corpus
from skyloom.datagen.curate.fingerprint import (
    FINGERPRINT_VERSION,
    Fingerprint,
    FingerprintConfig,
    fingerprint_file,
    sequence_distance,
)
from skyloom.datagen.curate.store import DEDUP, FINGERPRINTS, SideTable

logger = logging.getLogger(__name__)

DEDUP_VERSION = "near-dup/1"
RULE = "most pixels, then most frames, then licensed before synthetic, then smallest id"


@dataclass(frozen=True)
class DedupConfig:
    """Settings of ``skyloom corpus dedup`` (and ingest's ``dedup``).

    Attributes:
        fingerprint: how clips are fingerprinted.
        threshold: largest :func:`sequence_distance` (hash bits, of 64) of a duplicate pair; the
            benchmark (docs/benchmarks.md) puts variants below 12.1 and distinct clips of one
            scene above 19.1.
        candidates: nearest neighbours per clip checked in full (the candidate search).
        executor: ``auto`` (Ray from ``ray_min_clips`` clips to fingerprint), ``local`` or ``ray``.
        ray_min_clips: the ``auto`` executor's threshold (~60 ms a clip to decode and fingerprint: a
            local Ray start-up pays for itself from ~600 clips, docs/benchmarks.md).
        chunk: fingerprints are saved every ``chunk`` clips (what an interrupted run keeps).
    """

    fingerprint: FingerprintConfig = field(default_factory=FingerprintConfig)
    threshold: float = 15.5
    candidates: int = 16
    executor: Literal["auto", "local", "ray"] = "auto"
    ray_min_clips: int = 512
    chunk: int = 256


@dataclass
class DedupResult:
    clips: int
    fingerprinted: int
    groups: int
    duplicates: int
    pairs_checked: int
    seconds: float
    members: dict[str, dict[str, Any]]  # id -> mark (group members only)


def settings_key(cfg: FingerprintConfig) -> str:
    """Hash of the fingerprint version and settings: cached fingerprints with another key are stale."""
    text = json.dumps({"version": FINGERPRINT_VERSION, **dataclasses.asdict(cfg)}, sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def _fp_row(cid: str, sha: str, key: str, fp: Fingerprint) -> dict[str, Any]:
    return {"id": cid, "sha256": sha, "settings": key, "version": FINGERPRINT_VERSION,
            "hashes": fp.hashes.tolist(), "mirrored": fp.mirrored.tolist(),
            "windows": fp.windows.ravel().tolist(), "num_windows": int(fp.windows.shape[0]),
            "crop": list(fp.crop)}


FP_SCHEMA = pa.schema([("id", pa.string()), ("sha256", pa.string()), ("settings", pa.string()),
                       ("version", pa.string()), ("hashes", pa.list_(pa.uint64())), ("mirrored", pa.list_(pa.uint64())),
                       ("windows", pa.list_(pa.uint64())), ("num_windows", pa.int32()), ("crop", pa.list_(pa.int32()))])


def _fp_from_row(row: dict[str, Any]) -> Fingerprint:
    w = np.asarray(row["windows"], np.uint64)
    return Fingerprint(np.asarray(row["hashes"], np.uint64), np.asarray(row["mirrored"], np.uint64),
                       w.reshape(int(row["num_windows"]), -1), tuple(row["crop"]))


def _fingerprint_one(item: dict[str, Any], cfg_json: str) -> dict[str, Any]:
    """One clip (a Ray task's body too): ``{"id", "sha256", "path"}`` -> fingerprint row or error."""
    cfg = FingerprintConfig(**{k: tuple(v) if isinstance(v, list) else v for k, v in json.loads(cfg_json).items()})
    try:
        fp = fingerprint_file(item["path"], cfg)
    except Exception as e:  # noqa: BLE001 - one unreadable clip is reported, the rest go on
        return {"id": item["id"], "error": f"{type(e).__name__}: {e}"}
    return {"row": json.dumps(_fp_row(item["id"], item["sha256"], settings_key(cfg), fp))}


def fingerprints(corpus: Corpus, recs: list[ClipRecord], cfg: DedupConfig, ray_address: str | None = None,
                 on_progress=None) -> tuple[dict[str, Fingerprint], int]:
    """Fingerprints of ``recs`` (cached ones reused, new ones saved every ``cfg.chunk`` clips);
    returns (id -> fingerprint, how many were computed now)."""
    from skyloom.raytools import use_ray

    table = SideTable(corpus.root, FINGERPRINTS)
    key = settings_key(cfg.fingerprint)
    cached = {cid: r for cid, r in table.rows().items() if r["settings"] == key}
    out = {r.id: _fp_from_row(cached[r.id]) for r in recs if r.id in cached and cached[r.id]["sha256"] == r.sha256}
    todo = [{"id": r.id, "sha256": r.sha256, "path": str(corpus.abspath(r))} for r in recs if r.id not in out]
    cfg_json = json.dumps(dataclasses.asdict(cfg.fingerprint))
    if use_ray(cfg.executor, len(todo), cfg.ray_min_clips, ray_address):
        results = _ray_map(todo, _fingerprint_one, {"cfg_json": cfg_json}, ray_address)
    else:
        results = (_fingerprint_one(it, cfg_json) for it in todo)
    pending: list[dict[str, Any]] = []

    def flush() -> None:
        if pending:
            table.upsert(pa.Table.from_pylist(pending, schema=FP_SCHEMA))
            pending.clear()

    done = 0
    for res in results:
        done += 1
        if "error" in res:
            corpus.quarantine("dedup", res["id"], "unreadable clip", detail=res["error"])
        else:
            row = json.loads(res["row"])
            out[row["id"]] = _fp_from_row(row)
            pending.append(row)
            if len(pending) >= cfg.chunk:
                flush()
        if on_progress is not None:
            on_progress(done, len(todo))
    flush()
    return out, len(todo)


def _ray_map(items: list[dict[str, Any]], fn, kwargs: dict[str, Any], ray_address: str | None):
    """Run ``fn(item, **kwargs)`` over ``items`` as a Ray Data job (one task per block), yielding results."""
    from skyloom.raytools import init_ray

    ray = init_ray(ray_address)
    cpus = int(ray.cluster_resources().get("CPU", 1))
    ds = ray.data.from_items(items, override_num_blocks=max(1, min(len(items), 4 * cpus)))
    ds = ds.map(fn, fn_kwargs=kwargs, num_cpus=1,
                compute=ray.data.TaskPoolStrategy(size=max(1, min(cpus - 1 or 1, len(items)))))
    yield from ds.iter_rows()


class _Groups:
    """Union-find over clip ids."""

    def __init__(self) -> None:
        self.parent: dict[str, str] = {}

    def find(self, x: str) -> str:
        self.parent.setdefault(x, x)
        while self.parent[x] != x:
            self.parent[x] = self.parent[self.parent[x]]
            x = self.parent[x]
        return x

    def union(self, a: str, b: str) -> None:
        ra, rb = self.find(a), self.find(b)
        if ra != rb:
            self.parent[max(ra, rb)] = min(ra, rb)

    def groups(self) -> list[list[str]]:
        by: dict[str, list[str]] = {}
        for x in self.parent:
            by.setdefault(self.find(x), []).append(x)
        return [sorted(m) for m in by.values() if len(m) > 1]


def duplicate_pairs(fps: dict[str, Fingerprint], cfg: DedupConfig) -> tuple[list[tuple[str, str, float]], int]:
    """Candidate search then verification: ``([(a, b, distance) ...], pairs checked)`` with a < b."""
    from skyloom.datagen.curate.index import knn

    ids = sorted(fps)
    if len(ids) < 2:
        return [], 0
    base = np.stack([fps[i].descriptor() for i in ids])  # (N, 64 K), unit rows
    mirror = np.stack([fps[i].descriptor(mirrored=True) for i in ids])
    k = min(len(ids), cfg.candidates + 1)
    cand: set[tuple[int, int]] = set()
    for q in (base, mirror):
        _, nn = knn(q, base, k)
        for i, row in enumerate(nn):
            cand.update((min(i, int(j)), max(i, int(j))) for j in row if int(j) != i and int(j) >= 0)
    pairs = []
    for i, j in sorted(cand):
        d = sequence_distance(fps[ids[i]], fps[ids[j]])
        if d <= cfg.threshold:
            pairs.append((ids[i], ids[j], d))
    return pairs, len(cand)


def representative(members: list[ClipRecord]) -> ClipRecord:
    """The clip a group keeps (:data:`RULE`)."""
    return min(members, key=lambda r: (-(r.width * r.height), -r.num_frames, r.source_kind != "licensed", r.id))


def group_id(members: list[str]) -> str:
    return "dup-" + hashlib.sha256("\n".join(sorted(members)).encode()).hexdigest()[:12]


def similarity(distance: float) -> float:
    """Fraction of matching hash bits, 1 - distance / 64."""
    return round(1.0 - float(distance) / 64.0, 4)


def _marks(groups: list[list[str]], recs: dict[str, ClipRecord], fps: dict[str, Fingerprint]) -> dict[str, dict]:
    marks: dict[str, dict[str, Any]] = {}
    for members in groups:
        live = [recs[m] for m in members if m in recs]
        if len(live) < 2:
            continue
        rep = representative(live)
        gid = group_id([r.id for r in live])
        for r in live:
            d = 0.0 if r.id == rep.id else sequence_distance(fps[r.id], fps[rep.id])
            marks[r.id] = {"group": gid, "kept": rep.id, "duplicate": r.id != rep.id, "similarity": similarity(d),
                           "distance": round(float(d), 4), "rule": RULE, "version": DEDUP_VERSION,
                           "sha256": r.sha256, "size": len(live)}
    return marks


DEDUP_SCHEMA = pa.schema([("id", pa.string()), ("sha256", pa.string()), ("group", pa.string()),
                          ("kept", pa.string()), ("duplicate", pa.bool_()), ("similarity", pa.float64()),
                          ("distance", pa.float64()), ("size", pa.int32()), ("rule", pa.string()),
                          ("version", pa.string())])


def write_marks(corpus: Corpus, marks: dict[str, dict[str, Any]]) -> int:
    """Write ``dedup.parquet`` (replacing it) and the manifest's ``meta["dedup"]`` where it changed
    (added, changed or, for clips no longer in a group, removed); returns manifest rows updated."""
    SideTable(corpus.root, DEDUP).upsert(
        pa.Table.from_pylist([{"id": cid, **m} for cid, m in sorted(marks.items())], schema=DEDUP_SCHEMA),
        replace_all=True)
    changed = []
    for r in corpus.records():
        want = {k: v for k, v in marks[r.id].items() if k != "sha256"} if r.id in marks else None
        if r.meta.get("dedup") != want:
            meta = {k: v for k, v in r.meta.items() if k != "dedup"}
            changed.append(dataclasses.replace(r, meta={**meta, "dedup": want} if want else meta))
    return corpus.update(changed) if changed else 0


def run_dedup(corpus: Corpus | str | Path, cfg: DedupConfig | None = None, ray_address: str | None = None,
              on_progress=None) -> DedupResult:
    """Find near-duplicate groups in the corpus and mark them (never deletes); resumable."""
    from skyloom.fsutil import atomic_write_json, file_stamp, now_iso

    cfg = cfg or DedupConfig()
    c = corpus if isinstance(corpus, Corpus) else Corpus(corpus)
    t0 = time.perf_counter()
    recs = {r.id: r for r in c.records()}
    fps, computed = fingerprints(c, list(recs.values()), cfg, ray_address, on_progress)
    pairs, checked = duplicate_pairs(fps, cfg)
    uf = _Groups()
    for a, b, _ in pairs:
        uf.union(a, b)
    groups = uf.groups()
    marks = _marks(groups, recs, fps)
    write_marks(c, marks)
    res = DedupResult(clips=len(recs), fingerprinted=computed, groups=len({m["group"] for m in marks.values()}),
                      duplicates=sum(m["duplicate"] for m in marks.values()), pairs_checked=checked,
                      seconds=time.perf_counter() - t0, members=marks)
    atomic_write_json(c.root / "reports" / f"dedup-{file_stamp()}.json", {
        "format": "skyloom-dedup-report", "version": 1, "created_at": now_iso(), "config": dataclasses.asdict(cfg),
        "clips": res.clips, "fingerprinted": computed, "pairs_checked": checked, "groups": res.groups,
        "duplicates": res.duplicates, "seconds": round(res.seconds, 3)})
    return res


def reelect(corpus: Corpus, removed: list[str]) -> dict[str, str]:
    """After ``removed`` clips left the corpus: drop them from their groups and re-elect each affected
    group's representative among the members left (a group left with one clip is dissolved).
    Returns group id -> new kept clip id for groups whose representative changed."""
    table = SideTable(corpus.root, DEDUP)
    rows = table.rows()
    gone = set(removed)
    hit = {r["group"] for cid, r in rows.items() if cid in gone}
    if not hit:
        return {}
    recs = {r.id: r for r in corpus.records()}
    fps = {cid: _fp_from_row(r) for cid, r in SideTable(corpus.root, FINGERPRINTS).rows().items()}
    marks = {cid: {k: v for k, v in r.items() if k != "id"} for cid, r in rows.items()
             if r["group"] not in hit and cid in recs}
    changed = {}
    for g in sorted(hit):
        members = [cid for cid, r in rows.items() if r["group"] == g and cid not in gone and cid in recs]
        old_kept = next(r["kept"] for r in rows.values() if r["group"] == g)
        if all(m in fps for m in members):
            new = _marks([members], recs, fps)
        else:  # no cached fingerprint: keep the old similarity figures
            new = {}
        marks.update(new)
        kept = next((m["kept"] for m in new.values()), None)
        if kept != old_kept:
            changed[g] = kept or ""
    write_marks(corpus, marks)
    return changed
