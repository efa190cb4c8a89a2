"""``skyloom corpus validate``: check that a corpus is exactly what its manifest says.

:func:`check_corpus` verifies every promise of the corpus contract (:mod:`skyloom.corpus`):

* every manifest part has the schema and every live row valid values;
* every live row's clip file exists and its sha256 equals the row's ``sha256``; its ground truth
  files exist when the row names them (``gt/<id>.json`` and the ``gt/<id>.npz`` arrays it names);
* no orphan: every file under ``clips/`` and ``gt/`` belongs to a live row;
* no live row derives from a taken-down source (by URL or content sha256), and no takedown is
  unfinished (``takedowns.jsonl`` has a ``started`` line without ``done``);
* ``manifest.parquet`` (the snapshot outside tools read) holds exactly the live rows of the log;
* every WebDataset export (``exports.json``): its folder exists and is provably this corpus's
  (:meth:`Corpus.export_owner`), every live clip of each split it exports is in its shards, every
  shard member is a live clip (never a taken-down one) with the row's bytes, every shard on disk is
  listed in ``index.json`` and every listed one exists.

With ``repair``, what can be fixed safely is fixed: orphans are moved to
``CORPUS/quarantine/orphans/`` and quarantined (stage ``validate``), a row whose file provably holds
its content (:func:`provably_ours`: it decodes to the frames whose hash was recorded at ingest or
render) is re-hashed, an interrupted takedown is completed, the snapshot is rewritten, and dead or
taken-down clips are dropped from shards. Everything else is reported and left alone.
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
from typing import NamedTuple

import pyarrow.compute as pc
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


class LiveClip(NamedTuple):
    """What the export and curation checks need of one live clip (not the whole record)."""

    sha256: str
    split: str
    rev: int


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


def provably_ours(corpus: Corpus, rec: ClipRecord) -> tuple[bool, str]:
    """Whether the clip file provably holds this row's content, and why not.

    Proof is the content hash recorded when the clip was made (``meta["frames_sha256"]``, the
    sha256 of its decoded frames, written at ingest and render): a file that decodes to exactly
    those frames is the row's clip even if its bytes changed (re-muxed, re-tagged). Nothing weaker
    counts: H.264 decodes flipped bytes to plausible frames, and two clips of one source carry
    the same provenance tags, so "it decodes to the row's frame count" or "its tags name this
    source" would bless corruption or a swap.
    """
    from skyloom.video import VideoError, frames_sha256

    want = rec.meta.get("frames_sha256")
    if not want:
        return False, "the row records no frames_sha256 (made before skyloom recorded one)"
    try:
        got = frames_sha256(corpus.abspath(rec))
    except VideoError as e:
        return False, f"it does not decode ({e})"
    if got != want:
        return False, "its decoded frames differ from the ones recorded at ingest/render"
    return True, ""


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
    pending = c.takedowns(pending=True)
    if pending and repair:  # first: its files are the takedown's to delete, not orphans to keep
        from skyloom.datagen.takedown import complete_pending

        for entry in complete_pending(c):
            rep.repaired.append(f"completed the interrupted takedown of {entry['source']}")
    else:
        for entry in pending:
            add(Problem("unfinished takedown", entry["source"], "a takedown was interrupted; rerun it or "
                                                                 "`skyloom corpus validate --repair` to complete it"))
    gone = c.takedown_keys()
    live: dict[str, LiveClip] = {}  # what the export and curation checks need of every clip: ~200 bytes a clip
    rehash: list[ClipRecord] = []
    for batch in c.iter_records(1024):  # one batch of records at a time, whatever the corpus's size
        for r in batch:
            live[r.id] = LiveClip(r.sha256, r.split, r.rev)
            _check_row(c, r, rep, repair, rehash)
            hit = {r.source_url, r.source_sha256, r.meta.get("manifest_url", "")} & gone
            if hit:
                add(Problem("taken-down source", r.id, f"derives from {min(hit)}, which was taken down"))
    rep.clips = len(live)
    if rehash:
        c.update(rehash)
        rep.repaired += [f"re-hashed {r.id} (it decodes to the frames recorded for this clip)" for r in rehash]
        for r in c.lookup(r.id for r in rehash).values():
            live[r.id] = LiveClip(r.sha256, r.split, r.rev)
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
    from skyloom.datagen.curate.hooks import check_curation  # annotations, embeddings, dedup groups

    extra, fixed = check_curation(c, live, repair)
    rep.problems += [Problem(*p) for p in extra]
    rep.repaired += fixed
    _check_snapshot(c, live, rep, repair)
    dead: set[str] = set()
    for folder in c.exports():
        dead |= _check_export(c, folder, live, rep)
    if dead and repair:
        done = c.remove_from_exports(dead)
        rep.repaired += [f"removed dead clip(s) from {s}" for s in done["rewritten"]]
        rep.problems = [p for p in rep.problems if p.kind not in ("dead shard entry", "taken-down clip in export")]
    return rep


def _check_row(c: Corpus, r: ClipRecord, rep: CheckReport, repair: bool, rehash: list[ClipRecord]) -> None:
    """One live row: valid values, its clip file with the row's sha256, its ground-truth files."""
    add = rep.problems.append
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
            ours, why_not = provably_ours(c, r) if repair else (False, "")
            if ours:
                rehash.append(dataclasses.replace(r, sha256=digest))
            else:
                why = f" (not re-hashed: {why_not}; left alone)" if repair else ""
                add(Problem("sha256 mismatch", r.id, f"{r.path} has sha256 {digest[:16]}..., "
                                                     f"the row says {r.sha256[:16]}...{why}"))
    if r.gt_path and not (c.root / r.gt_path).is_file():
        add(Problem("missing file", r.id, f"ground truth {r.gt_path} does not exist"))
    elif r.gt_path:
        arrays = _gt_arrays(c, r)
        if arrays and not (c.root / arrays).is_file():
            add(Problem("missing file", r.id, f"ground-truth arrays {arrays} (named by {r.gt_path}) do not exist"))


def _check_snapshot(c: Corpus, live: dict[str, LiveClip], rep: CheckReport, repair: bool) -> None:
    """``manifest.parquet`` must hold exactly the live rows wherever it is kept current (a corpus of up to
    :data:`~skyloom.corpus.SNAPSHOT_EAGER_ROWS` clips, or one just compacted); a larger corpus's snapshot is
    the last compaction's, which must still be readable with one row per id. Compared as columns."""
    snap = c.snapshot_path
    problem = ""
    if not snap.is_file():
        problem = "missing"
    else:
        try:
            t = pq.read_table(snap, columns=["id", "rev", "sha256"])
        except Exception as e:  # noqa: BLE001 - pyarrow raises many types for a broken file; reported as a problem
            t, problem = None, f"unreadable ({type(e).__name__}: {e})"
        if t is not None and len(pc.unique(t.column("id"))) != t.num_rows:
            problem = "holds an id twice"
        elif t is not None and (c.snapshot_kept_current() or c.compacted()):
            cur = c.scan(["rev", "sha256"])
            if not t.sort_by("id").equals(cur):
                problem = ("does not hold exactly the live rows of the manifest log" if t.num_rows == cur.num_rows
                           else f"{t.num_rows} rows for {cur.num_rows} live clips")
    if not problem:
        return
    if repair:
        c.refresh_snapshot()
        rep.repaired.append(f"rewrote {snap.name}")
    else:
        rep.problems.append(Problem("stale snapshot", snap.name, problem))


def _gt_arrays(c: Corpus, r: ClipRecord) -> str:
    """The arrays file (``gt/<id>.npz``) a ground-truth JSON names, or ``""``."""
    import json

    try:
        gt = json.loads((c.root / (r.gt_path or "")).read_text())  # no gt_path: the root, an OSError below
    except (OSError, ValueError):
        return ""
    arrays = gt.get("arrays") if isinstance(gt, dict) else None
    return arrays if isinstance(arrays, str) and arrays else ""


def _check_export(c: Corpus, folder: Path, live: dict[str, LiveClip], rep: CheckReport) -> set[str]:
    """Check one export folder; returns the dead clip ids found in its shards.

    Every live clip of each split the folder exports (``all`` = every split) must be in its
    shards, and no clip that is not live (dead or taken down) may be."""
    add = rep.problems.append
    name = str(folder)
    if not folder.is_dir():
        if folder != c.root / "shards":
            add(Problem("missing export", name, "listed in exports.json but not found: a takedown cannot reach it"))
        return set()
    owned, why = c.export_owner(folder)
    if not owned:
        add(Problem("foreign export", name, f"listed in exports.json but not provably this corpus's ({why}): "
                                            "a takedown leaves it alone; re-export or remove it"))
        return set()
    index = read_wds_index(folder)
    listed = {s for exp in index["exports"].values() for s in exp.get("shards", [])}
    shard_of: dict[str, set[str]] = {}
    dead: set[str] = set()
    taken_ids, taken_prefixes = c.taken_down_clips()
    for shard in sorted(folder.glob("*.tar")):
        rep.shards += 1
        where = str(shard)
        try:
            t = tarfile.open(shard)
        except (tarfile.TarError, OSError, EOFError) as e:
            if shard.name in listed:
                add(Problem("bad shard", where, f"unreadable ({type(e).__name__}: {str(e).splitlines()[0]})"))
            else:
                add(Problem("foreign file", where, "not a tar shard and not listed in index.json: not written by "
                                                   "skyloom; takedowns leave it alone (move it out of the export)"))
            continue
        if shard.name not in listed:
            add(Problem("stale shard", where, "not listed in index.json (left by an earlier export)"))
        try:
            with t:
                for m in t.getmembers():
                    cid, _, ext = m.name.partition(".")
                    shard_of.setdefault(cid, set()).add(shard.name)
                    if cid not in live:
                        if cid in taken_ids or (taken_prefixes and cid.startswith(taken_prefixes)):
                            if cid not in dead:
                                add(Problem("taken-down clip in export", where, f"holds {cid}, which was taken down"))
                        elif cid not in dead:
                            add(Problem("dead shard entry", where, f"holds {cid}, which is not a live clip"))
                        dead.add(cid)
                    elif ext == "mp4":
                        member = t.extractfile(m)
                        digest = hashlib.sha256(member.read() if member else b"").hexdigest()
                        if digest != live[cid].sha256:
                            add(Problem("stale shard entry", where, f"{cid}.mp4 differs from the corpus file "
                                                                    "(re-export this split)"))
        except (tarfile.TarError, OSError, EOFError) as e:
            add(Problem("bad shard", where, f"unreadable ({type(e).__name__}: {str(e).splitlines()[0]})"))
    for s in sorted(listed):
        if not (folder / s).is_file():
            add(Problem("missing shard", str(folder / s), "listed in index.json but not found"))
    for prefix, exp in sorted(index["exports"].items()):
        shards = set(exp.get("shards", []))
        want = [cid for cid, r in sorted(live.items()) if prefix == "all" or r.split == prefix]
        missing = [cid for cid in want if not shard_of.get(cid, set()) & shards]
        if missing:
            add(Problem("clip missing from export", name,
                        f"{len(missing)} live clip(s) of split {prefix!r} are in no shard of this export "
                        f"(e.g. {', '.join(missing[:3])}); re-export it (skyloom corpus export-wds)"))
    return dead
