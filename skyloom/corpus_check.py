"""``skyloom corpus validate``: check that a corpus is exactly what its manifest says.

:func:`check_corpus` verifies every promise of the corpus contract (:mod:`skyloom.corpus`):

* every manifest part has the schema and every live row valid values;
* every live row's clip file exists and its sha256 equals the row's ``sha256``; its ground truth
  file exists when the row names one;
* no orphan: every file under ``clips/`` and ``gt/`` belongs to a live row;
* no live row derives from a taken-down source (by URL or content sha256);
* ``manifest.parquet`` (the snapshot outside tools read) holds exactly the live rows of the log;
* every WebDataset export (``exports.json``): its folder exists, every shard member is a live clip
  with the row's bytes, every shard on disk is listed in ``index.json`` and every listed one exists.

With ``repair``, what can be fixed safely is fixed: orphans are moved to
``CORPUS/quarantine/orphans/`` and quarantined (stage ``validate``), a row whose file is provably
ours (the mp4's embedded provenance names this clip's id or source, and its size matches the row)
is re-hashed, the snapshot is rewritten, and dead clips are dropped from shards. Everything else is
reported and left alone.
"""

from __future__ import annotations

import dataclasses
import hashlib
import logging
import os
import shutil
import tarfile
from dataclasses import dataclass, field
from pathlib import Path

import pyarrow.parquet as pq

from skyloom.corpus import (
    ClipRecord,
    Corpus,
    ManifestError,
    read_wds_index,
    validate_part_schema,
    validate_record,
)
from skyloom.fsutil import sha256_file

logger = logging.getLogger(__name__)

ORPHAN_DIR = "quarantine/orphans"


@dataclass(frozen=True)
class Problem:
    """One broken promise: ``kind`` (a short fixed phrase), the ``item`` it concerns, a sentence."""

    kind: str
    item: str
    detail: str

    def __str__(self) -> str:
        return f"{self.kind}: {self.item}: {self.detail}"


@dataclass
class CheckReport:
    """Problems left (after any repair), what was repaired, and what was checked."""

    problems: list[Problem] = field(default_factory=list)
    repaired: list[str] = field(default_factory=list)
    clips: int = 0
    shards: int = 0

    @property
    def ok(self) -> bool:
        return not self.problems


def provably_ours(corpus: Corpus, rec: ClipRecord) -> bool:
    """True when the clip file's embedded provenance names this row's clip (id or source) and it
    decodes completely to the row's frame size and count: its bytes were written by skyloom for
    this row (a truncated or foreign file is not)."""
    from skyloom.video import iter_frames, probe_video, read_metadata

    path = corpus.abspath(rec)
    try:
        meta = read_metadata(path)
        info = probe_video(path)
        decoded = sum(1 for _ in iter_frames(path))
    except Exception:  # noqa: BLE001 - any decoder error means: not provably ours
        return False
    if (info.width, info.height) != (rec.width, rec.height) or decoded != rec.num_frames:
        return False
    if meta.get("clip_id") == rec.id:
        return True
    return bool(rec.source_sha256) and meta.get("source_sha256") == rec.source_sha256 \
        and meta.get("parent_id") == rec.parent_id and rec.id.startswith(f"lic-{rec.source_sha256[:16]}-")


def check_corpus(corpus: Corpus | str | os.PathLike, repair: bool = False) -> CheckReport:
    """Check (and with ``repair`` fix what is safe to fix) every promise of the corpus contract."""
    c = corpus if isinstance(corpus, Corpus) else Corpus(corpus)
    rep = CheckReport()
    add = rep.problems.append
    for part in c.part_files():
        try:
            validate_part_schema(pq.read_schema(part), str(part))
        except ManifestError as e:
            add(Problem("bad manifest part", str(part.relative_to(c.root)), str(e)))
        except Exception as e:  # noqa: BLE001 - pyarrow raises many types for a broken file
            add(Problem("bad manifest part", str(part.relative_to(c.root)), f"unreadable ({type(e).__name__}: {e})"))
    if rep.problems:
        return rep  # the log itself is unreadable: nothing below can be trusted
    recs = c.records()
    rep.clips = len(recs)
    live = {r.id: r for r in recs}
    rehash: list[ClipRecord] = []
    for r in recs:
        try:
            validate_record(r, where="manifest")
        except ManifestError as e:
            add(Problem("bad row", r.id, str(e)))
        path = c.abspath(r)
        if not path.is_file():
            add(Problem("missing file", r.id, f"{r.path} does not exist"))
        else:
            digest = sha256_file(path)
            if digest != r.sha256:
                if repair and provably_ours(c, r):
                    rehash.append(dataclasses.replace(r, sha256=digest))
                else:
                    why = " (not provably ours: left alone)" if repair else ""
                    add(Problem("sha256 mismatch", r.id, f"{r.path} has sha256 {digest[:16]}..., "
                                                         f"the row says {r.sha256[:16]}...{why}"))
        if r.gt_path and not (c.root / r.gt_path).is_file():
            add(Problem("missing file", r.id, f"ground truth {r.gt_path} does not exist"))
    if rehash:
        c.update(rehash)
        rep.repaired += [f"re-hashed {r.id} (its embedded provenance names this clip)" for r in rehash]
        recs = c.records()
        live = {r.id: r for r in recs}
    for p in c.orphan_files():
        rel = str(p.relative_to(c.root))
        if repair:
            dest = c.root / ORPHAN_DIR / rel
            dest.parent.mkdir(parents=True, exist_ok=True)
            shutil.move(p, dest)
            c.quarantine("validate", rel, "orphan file", detail=f"{rel} belonged to no live manifest row; "
                                                                f"moved to {dest.relative_to(c.root)}")
            rep.repaired.append(f"moved orphan {rel} to {dest.relative_to(c.root)}")
        else:
            add(Problem("orphan file", rel, "no live manifest row owns it"))
    gone = c.takedown_keys()
    for r in recs:
        hit = {r.source_url, r.source_sha256, r.meta.get("manifest_url", "")} & gone
        if hit:
            add(Problem("taken-down source", r.id, f"derives from {min(hit)}, which was taken down"))
    _check_snapshot(c, live, rep, repair)
    dead: set[str] = set()
    for folder in c.exports():
        dead |= _check_export(c, folder, live, rep)
    if dead and repair:
        done = c.remove_from_exports(dead)
        rep.repaired += [f"removed dead clip(s) from {s}" for s in done["rewritten"]]
        rep.problems = [p for p in rep.problems if p.kind != "dead shard entry"]
    return rep


def _check_snapshot(c: Corpus, live: dict[str, ClipRecord], rep: CheckReport, repair: bool) -> None:
    snap = c.snapshot_path
    problem = ""
    if not snap.is_file():
        problem = "missing"
    else:
        try:
            t = pq.read_table(snap, columns=["id", "rev", "sha256"]).to_pylist()
        except Exception as e:  # noqa: BLE001 - pyarrow raises many types for a broken file; reported as a problem
            t, problem = [], f"unreadable ({type(e).__name__}: {e})"
        if not problem and {(x["id"], x["rev"], x["sha256"]) for x in t} != {(r.id, r.rev, r.sha256)
                                                                            for r in live.values()}:
            problem = "does not hold exactly the live rows of the manifest log"
        if not problem and len(t) != len(live):
            problem = f"{len(t)} rows for {len(live)} live clips"
    if not problem:
        return
    if repair:
        with c._lock():
            c._write_snapshot()
        rep.repaired.append(f"rewrote {snap.name}")
    else:
        rep.problems.append(Problem("stale snapshot", snap.name, problem))


def _check_export(c: Corpus, folder: Path, live: dict[str, ClipRecord], rep: CheckReport) -> set[str]:
    """Check one export folder; returns the dead clip ids found in its shards."""
    add = rep.problems.append
    name = str(folder)
    if not folder.is_dir():
        if folder != c.root / "shards":
            add(Problem("missing export", name, "listed in exports.json but not found: a takedown cannot reach it"))
        return set()
    index = read_wds_index(folder)
    listed = {s for exp in index["exports"].values() for s in exp.get("shards", [])}
    dead: set[str] = set()
    for shard in sorted(folder.glob("*.tar")):
        rep.shards += 1
        where = str(shard)
        if shard.name not in listed:
            add(Problem("stale shard", where, "not listed in index.json (left by an earlier export)"))
        try:
            with tarfile.open(shard) as t:
                for m in t.getmembers():
                    cid, _, ext = m.name.partition(".")
                    if cid not in live:
                        if cid not in dead:
                            add(Problem("dead shard entry", where, f"holds {cid}, which is not a live clip"))
                        dead.add(cid)
                    elif ext == "mp4":
                        member = t.extractfile(m)
                        digest = hashlib.sha256(member.read() if member else b"").hexdigest()
                        if digest != live[cid].sha256:
                            add(Problem("stale shard entry", where, f"{cid}.mp4 differs from the corpus file "
                                                                    "(re-export this split)"))
        except (tarfile.TarError, OSError) as e:
            add(Problem("bad shard", where, f"unreadable ({type(e).__name__}: {str(e).splitlines()[0]})"))
    for s in sorted(listed):
        if not (folder / s).is_file():
            add(Problem("missing shard", str(folder / s), "listed in index.json but not found"))
    return dead
