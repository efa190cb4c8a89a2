"""Takedown of a licensed source: a journaled, idempotent purge of everything derived from it.

:func:`takedown` writes its intent to ``CORPUS/takedowns.jsonl`` *first* (the source's spellings,
content sha256s and the clip ids it will remove: a ``started`` line, fsynced), then runs the steps,
each idempotent, under the corpus lock:

1. ``rows``: tombstone the clips' manifest rows (captions live in the rows);
2. ``files``: delete clip files, ground truth (``.json`` and ``.npz``), orphan files of the source
   (left by an interrupted ingest) and its staged files under ``.ingest-tmp/``; drop the clips' rows
   from the curation files and re-elect near-duplicate groups that lost their representative
   (:func:`skyloom.datagen.curate.hooks.after_removal`);
3. ``shards``: drop the clips from every WebDataset export the corpus can prove is its own
   (:meth:`skyloom.corpus.Corpus.export_owner`); a file in an export folder that is not a readable
   tar shard, or an export folder another corpus owns, is skipped and reported, never fatal;
4. ``purge``: compact the manifest log so no older revision keeps the rows or their captions;

and finally a ``done`` line with what each step removed. Ingest refuses the source from the moment
the ``started`` line exists. A process killed at any point leaves an unfinished entry;
the next :func:`takedown` (of any source), ``skyloom datagen ingest`` and
``skyloom corpus validate --repair`` complete it (:func:`complete_pending`). Tests kill the process
after each step with ``SKYLOOM_CRASH_AT=takedown:<step>`` (:func:`skyloom.fsutil.crash_point`).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import uuid
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from skyloom.corpus import Corpus, CorpusError, records_from_table
from skyloom.datagen.sources import canonical_url
from skyloom.fsutil import crash_point, read_jsonl

logger = logging.getLogger(__name__)

STEPS = ("logged", "rows", "files", "shards", "purge")
STATE_FILE = "ingest_state.jsonl"  # ingest's per-source log (skyloom.datagen.ingest.STATE_FILE)
STAGING = ".ingest-tmp"


class TakedownError(CorpusError):
    """A takedown request that names no source."""


def _spellings(key: str) -> tuple[bool, set[str]]:
    is_sha = len(key) >= 12 and all(ch in "0123456789abcdef" for ch in key.lower())
    if is_sha or key.startswith("src-"):
        return is_sha, {key}
    return is_sha, {key, canonical_url(key)}


def _plan(c: Corpus, key: str, reason: str, purge: bool) -> dict[str, Any]:
    """The journal's ``started`` line: what the takedown will remove, found before anything is."""
    is_sha, spellings = _spellings(key)

    def hit(url: str, sha: str, written: str = "", parent: str | None = "") -> bool:
        return bool({url, canonical_url(url) if url else "", written} & spellings) or key in (sha, parent) \
            or (is_sha and sha.startswith(key.lower()))

    matched = [r for r in _candidates(c, key, is_sha, spellings)
               if hit(r.source_url, r.source_sha256, r.meta.get("manifest_url", ""), r.parent_id)]
    shas = {r.source_sha256 for r in matched if r.source_sha256}
    urls = {r.source_url for r in matched}
    for line in read_jsonl(c.root / STATE_FILE):  # sources whose rows are gone but files may remain
        if line.get("source_sha256") and hit(line.get("url", ""), line["source_sha256"], line.get("as_written", "")):
            shas.add(line["source_sha256"])
            urls.add(line["url"])
    if is_sha and len(key) == 64:
        shas.add(key.lower())
    written = {r.meta.get("manifest_url", "") for r in matched}
    return {"id": uuid.uuid4().hex, "state": "started", "source": key, "reason": reason, "purge": purge,
            "clips": sorted(r.id for r in matched),
            "source_urls": sorted(urls | ({key} if "://" in key or "/" in key else set())),
            "spellings": sorted(({canonical_url(u) for u in urls} | (spellings - {key})) - {""}
                                | {w for w in written if w and ("://" in w or Path(w).is_absolute())}),
            "source_sha256": sorted(shas)}


def _candidates(c: Corpus, key: str, is_sha: bool, spellings: set[str]) -> list:
    """The licensed clips that may derive from ``key``, found with column operations on streamed batches:
    only they become Python records (the exact test is :func:`_plan`'s). A URL is canonicalised once per
    distinct URL of a batch, the written spelling (``meta.manifest_url``) compared in its JSON-escaped form."""
    escaped = pa.array([json.dumps(s)[1:-1] for s in spellings], pa.string())
    out = []
    for t in c.iter_tables(["source_url", "source_sha256", "parent_id", "meta"], 65_536, source_kind="licensed"):
        urls = [u for u in pc.unique(t.column("source_url")).to_pylist() if u]
        hit_urls = pa.array([u for u in urls if {u, canonical_url(u)} & spellings], pa.string())
        written = pc.struct_field(pc.extract_regex(t.column("meta"), r'"manifest_url": "(?P<u>(?:[^"\\]|\\.)*)"'),
                                  "u")
        sha = t.column("source_sha256")
        mask = pc.or_(pc.is_in(t.column("source_url"), value_set=hit_urls), pc.equal(sha, key))
        mask = pc.or_(mask, pc.fill_null(pc.equal(t.column("parent_id"), key), False))
        mask = pc.or_(mask, pc.fill_null(pc.is_in(written, value_set=escaped), False))
        if is_sha:
            mask = pc.or_(mask, pc.starts_with(sha, key.lower()))
        out += records_from_table(t.filter(pc.fill_null(mask, False)))
    return out


def _orphans(c: Corpus, entry: dict[str, Any], prefixes: tuple[str, ...]) -> list[str]:
    """Delete files under ``clips/`` and ``gt/`` of the source that no live row owns."""
    from skyloom.video import VideoError, read_metadata

    keys = set(entry["source_urls"]) | set(entry["spellings"]) | set(entry["source_sha256"])
    out = []
    for p in c.orphan_files():
        cid = p.name.split(".", 1)[0]
        mine = bool(prefixes) and cid.startswith(prefixes) or cid in entry["clips"]
        if not mine and p.suffix == ".mp4":
            try:
                meta = read_metadata(p)
            except (VideoError, OSError, ValueError):
                meta = {}
            url = str(meta.get("source_url", ""))
            mine = bool({url, canonical_url(url) if url else "", str(meta.get("source_sha256", ""))} & keys - {""})
        if mine:
            p.unlink(missing_ok=True)
            out.append(str(p.relative_to(c.root)))
    return out


def _staged(c: Corpus, entry: dict[str, Any], prefixes: tuple[str, ...]) -> None:
    """Remove the source's staged files of every ingest run (``.ingest-tmp/<run>/stage-<url hash>/``)."""
    base = c.root / STAGING
    if not base.is_dir():
        return
    hashes = {hashlib.sha256(u.encode()).hexdigest()[:16] for u in [*entry["source_urls"], entry["source"]]}
    for d in [*base.glob("stage-*"), *base.glob("*/stage-*")]:
        if d.name.removeprefix("stage-") in hashes or any(f.name.startswith(prefixes) for f in d.glob("*.mp4")):
            shutil.rmtree(d, ignore_errors=True)


def _log_holds(c: Corpus, ids: set[str], prefixes: tuple[str, ...]) -> bool:
    """Whether any manifest file still holds a revision of one of the clips (asked of the id index)."""
    return c.log_holds(ids, prefixes)


def _complete(c: Corpus, entry: dict[str, Any]) -> dict[str, Any]:
    """Run every step of a journaled takedown (each idempotent) and log it ``done``."""
    ids = set(entry["clips"])
    prefixes = tuple(f"lic-{s[:16]}-" for s in entry["source_sha256"])
    with c._lock():
        c.delete(sorted(ids), reason=f"takedown: {entry['reason']}", remove_files=False, rewrite_shards=False)
        crash_point("takedown:rows")
        for cid in sorted(ids):
            c.clip_path(cid).unlink(missing_ok=True)
            for suffix in (".json", ".npz"):
                c.gt_path(cid, suffix).unlink(missing_ok=True)
        orphans = _orphans(c, entry, prefixes)
        _staged(c, entry, prefixes)
        from skyloom.datagen.curate.hooks import after_removal  # dedup groups re-elected, curation rows dropped

        curation = after_removal(c, sorted(ids))
        crash_point("takedown:files")
        shards = c._remove_from_shards(ids, prefixes)
        crash_point("takedown:shards")
        purged = False
        if entry.get("purge", True) and _log_holds(c, ids, prefixes):
            c.compact()
            purged = True
        crash_point("takedown:purge")
        done = {"id": entry["id"], "state": "done", "orphans": orphans, "shards_rewritten": shards["rewritten"],
                "unreachable_exports": shards["missing_exports"], "foreign_exports": shards["foreign_exports"],
                "skipped_files": shards["skipped"], "purged": purged, "curation": curation}
        c.log_takedown(done)
    for what, items in (("export folder(s) not found", shards["missing_exports"]),
                        ("export folder(s) not provably this corpus's, left alone", shards["foreign_exports"]),
                        ("file(s) in export folders that are not tar shards, left alone", shards["skipped"])):
        if items:
            logger.warning("takedown %s: %s: %s", entry["source"], what, "; ".join(items))
    return {**entry, **done}


def complete_pending(c: Corpus) -> list[dict[str, Any]]:
    """Finish every takedown whose journal has no ``done`` line (a crash interrupted it)."""
    out = []
    with c._lock():
        for entry in c.takedowns(pending=True):
            logger.warning("completing the interrupted takedown of %s (%s)", entry["source"], entry["id"])
            out.append(_complete(c, entry))
    return out


def takedown(corpus: Corpus | str | os.PathLike, source: str, reason: str = "takedown request",
             purge: bool = True) -> dict[str, Any]:
    """Remove everything derived from ``source`` and log it; later ingests refuse the source.

    ``source`` is a source URL or local path as written in the manifest (relative paths too) or
    resolved (percent-encoding is decoded: ``%74`` names ``t``), a source sha256 (or a prefix of
    >= 12 characters) or a ``parent_id``. See the module docstring for the steps and the journal.

    Returns:
        the takedown entry: source, reason, clip ids, orphans removed, shards rewritten, export
        folders not found or not provably this corpus's, files skipped, source URLs, spellings
        and sha256s matched.
    """
    c = corpus if isinstance(corpus, Corpus) else Corpus(corpus)
    key = (source or "").strip()
    if not key:
        raise TakedownError("takedown: --source is empty; give a source URL, a local path or a sha256")
    with c._lock():
        same = None
        for entry in complete_pending(c):
            if entry["source"] == key:
                same = entry
        if same is not None:  # this very takedown was interrupted: now completed
            return same
        entry = _plan(c, key, reason, purge)
        c.log_takedown(entry)
        crash_point("takedown:logged")
        return _complete(c, entry)
