"""The corpus contract: the one on-disk format every stage reads and writes.

Layout of a corpus directory (format version :data:`CORPUS_FORMAT_VERSION`)::

    CORPUS/
      corpus.json              format name + version, created, name
      manifest.parquet/        Parquet dataset, one row per clip revision (append-only parts)
        part-<rev>-<uid>.parquet
      clips/<id>.mp4           H.264 yuv420p clips
      gt/<id>.json             per-clip ground truth of synthetic clips (+ optional gt/<id>.npz)
      quarantine.jsonl         every rejected or broken input, with stage and reason
      takedowns.jsonl          every takedown, with what it removed
      shards/                  WebDataset tar export (+ index.json: clip id -> shard)

The manifest is append-only: :meth:`Corpus.append` writes a new part file (atomically, under
an inter-process lock), never rewriting earlier parts. Updates (captions, quality scores,
deletions) write new *revisions* of rows; readers keep the highest ``rev`` per ``id`` and drop
tombstones (``deleted``). :meth:`Corpus.compact` folds the parts into one. Every part carries
the manifest version in its schema metadata and is validated on read: a missing or mistyped
column raises :class:`ManifestError` naming the file and the field.

Example:
    >>> import tempfile
    >>> c = Corpus.create(tempfile.mkdtemp())
    >>> c.append([ClipRecord(id="demo-0", path="clips/demo-0.mp4", source_kind="synthetic",
    ...     duration_s=1.0, fps=8.0, width=32, height=32, num_frames=8, license_id="CC0-1.0",
    ...     source_url="skyloom://render/demo/0", author="skyloom", attribution="",
    ...     sha256="0" * 64)])
    1
    >>> [r.id for r in c.records()]
    ['demo-0']
"""

from __future__ import annotations

import dataclasses
import datetime as _dt
import hashlib
import io
import json
import os
import re
import tarfile
import time
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import pyarrow as pa
import pyarrow.parquet as pq

from skyloom.errors import UserError
from skyloom.fsutil import append_jsonl, atomic_path, atomic_write_json, file_lock, read_jsonl

CORPUS_FORMAT = "skyloom-corpus"
CORPUS_FORMAT_VERSION = 1
MANIFEST_DIR = "manifest.parquet"
SOURCE_KINDS = ("synthetic", "licensed")
SPLITS = ("train", "val", "test")
ID_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,127}$")


class ManifestError(UserError, ValueError):
    """A manifest part or row that does not follow the corpus contract."""


class CorpusError(UserError, ValueError):
    """A corpus directory that is missing, of an unknown format, or misused."""


def now_iso() -> str:
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")


@dataclass(frozen=True)
class Caption:
    """One caption of a clip, with who wrote it and how."""

    captioner: str
    kind: str  # "short" | "dense" | "vlm" | ...
    text: str
    model_id: str = ""
    weights_hash: str = ""
    template_version: str = ""
    seconds: float = 0.0
    created_at: str = ""


@dataclass(frozen=True)
class ClipRecord:
    """One manifest row: a clip with its provenance, license, captions and scores."""

    id: str
    path: str  # relative to the corpus root
    source_kind: str  # synthetic | licensed
    duration_s: float
    fps: float
    width: int
    height: int
    num_frames: int
    license_id: str
    source_url: str
    author: str
    attribution: str
    sha256: str  # of the clip file
    source_sha256: str = ""  # of the source file (licensed) or of the scene spec (synthetic)
    source_page: str = ""
    parent_id: str | None = None
    shot_start_s: float | None = None
    shot_end_s: float | None = None
    captions: tuple[Caption, ...] = ()
    split: str = "train"
    quality: dict[str, float] = field(default_factory=dict)
    gt_path: str | None = None
    meta: dict[str, Any] = field(default_factory=dict)  # free-form (preset, renderer, seed, ...)
    created_at: str = ""
    rev: int = 0
    deleted: bool = False

    def caption(self, kind: str | None = None, captioner: str | None = None) -> str | None:
        """Text of the newest caption matching ``kind``/``captioner`` (None if none)."""
        for c in reversed(self.captions):
            if (kind is None or c.kind == kind) and (captioner is None or c.captioner == captioner):
                return c.text
        return None

    def to_row(self) -> dict[str, Any]:
        row = dataclasses.asdict(self)
        row["captions"] = [dataclasses.asdict(c) for c in self.captions]
        row["quality"] = [(k, float(v)) for k, v in sorted(self.quality.items())]
        row["meta"] = json.dumps(self.meta, sort_keys=True, default=str)
        return row

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> ClipRecord:
        r = dict(row)
        r["captions"] = tuple(Caption(**c) for c in (r.get("captions") or []))
        q = r.get("quality") or []
        r["quality"] = dict(q) if not isinstance(q, dict) else q
        m = r.get("meta") or "{}"
        r["meta"] = json.loads(m) if isinstance(m, str) else dict(m)
        names = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in r.items() if k in names})


CAPTION_TYPE = pa.struct([
    ("captioner", pa.string()), ("kind", pa.string()), ("text", pa.string()), ("model_id", pa.string()),
    ("weights_hash", pa.string()), ("template_version", pa.string()), ("seconds", pa.float64()),
    ("created_at", pa.string()),
])

MANIFEST_SCHEMA = pa.schema([
    pa.field("id", pa.string(), nullable=False),
    pa.field("path", pa.string(), nullable=False),
    pa.field("source_kind", pa.string(), nullable=False),
    pa.field("duration_s", pa.float64()),
    pa.field("fps", pa.float64()),
    pa.field("width", pa.int32()),
    pa.field("height", pa.int32()),
    pa.field("num_frames", pa.int32()),
    pa.field("license_id", pa.string()),
    pa.field("source_url", pa.string()),
    pa.field("author", pa.string()),
    pa.field("attribution", pa.string()),
    pa.field("sha256", pa.string()),
    pa.field("source_sha256", pa.string()),
    pa.field("source_page", pa.string()),
    pa.field("parent_id", pa.string()),
    pa.field("shot_start_s", pa.float64()),
    pa.field("shot_end_s", pa.float64()),
    pa.field("captions", pa.list_(CAPTION_TYPE)),
    pa.field("split", pa.string()),
    pa.field("quality", pa.map_(pa.string(), pa.float64())),
    pa.field("gt_path", pa.string()),
    pa.field("meta", pa.string()),
    pa.field("created_at", pa.string()),
    pa.field("rev", pa.int64(), nullable=False),
    pa.field("deleted", pa.bool_(), nullable=False),
], metadata={"skyloom.manifest_version": str(CORPUS_FORMAT_VERSION)})

REQUIRED_NONEMPTY = ("id", "path", "source_kind", "license_id", "sha256")


def validate_record(rec: ClipRecord, where: str = "") -> None:
    """Check one record's values; raise ManifestError naming the field."""
    pre = f"{where}: " if where else ""
    for name in REQUIRED_NONEMPTY:
        if not getattr(rec, name):
            raise ManifestError(f"{pre}clip {rec.id!r}: field {name!r} is empty")
    if not ID_PATTERN.match(rec.id):
        raise ManifestError(f"{pre}field 'id': {rec.id!r} must match {ID_PATTERN.pattern} (letters, digits, - and _)")
    if rec.source_kind not in SOURCE_KINDS:
        raise ManifestError(f"{pre}clip {rec.id!r}: field 'source_kind' is {rec.source_kind!r}; valid: {', '.join(SOURCE_KINDS)}")
    if rec.split not in SPLITS:
        raise ManifestError(f"{pre}clip {rec.id!r}: field 'split' is {rec.split!r}; valid: {', '.join(SPLITS)}")
    for name in ("width", "height", "num_frames"):
        if int(getattr(rec, name)) <= 0:
            raise ManifestError(f"{pre}clip {rec.id!r}: field {name!r} must be > 0, got {getattr(rec, name)}")
    if not (rec.fps > 0):
        raise ManifestError(f"{pre}clip {rec.id!r}: field 'fps' must be > 0, got {rec.fps}")
    if Path(rec.path).is_absolute() or ".." in Path(rec.path).parts:
        raise ManifestError(f"{pre}clip {rec.id!r}: field 'path' must be relative inside the corpus, got {rec.path!r}")


def validate_part_schema(schema: pa.Schema, where: str) -> None:
    """Check a part file's schema against :data:`MANIFEST_SCHEMA`; name the bad field."""
    version = (schema.metadata or {}).get(b"skyloom.manifest_version")
    if version is None:
        raise ManifestError(f"{where}: not a skyloom manifest part (no 'skyloom.manifest_version' in schema metadata)")
    if int(version) > CORPUS_FORMAT_VERSION:
        raise ManifestError(f"{where}: manifest version {int(version)} is newer than this skyloom "
                            f"(supports <= {CORPUS_FORMAT_VERSION}); upgrade skyloom")
    for f in MANIFEST_SCHEMA:
        if f.name not in schema.names:
            raise ManifestError(f"{where}: missing field {f.name!r} (type {f.type})")
        got = schema.field(f.name).type
        if not got.equals(f.type):
            raise ManifestError(f"{where}: field {f.name!r} has type {got}, expected {f.type}")


def assign_split(clip_id: str, val_fraction: float = 0.05, test_fraction: float = 0.0, salt: str = "") -> str:
    """Deterministic split from a hash of the id (stable across reruns and machines)."""
    h = int.from_bytes(hashlib.sha256(f"{salt}{clip_id}".encode()).digest()[:8], "big") / 2**64
    if h < test_fraction:
        return "test"
    if h < test_fraction + val_fraction:
        return "val"
    return "train"


class Corpus:
    """Reader/writer for one corpus directory. All stages go through this class."""

    def __init__(self, root: str | os.PathLike) -> None:
        self.root = Path(root)
        info = self.root / "corpus.json"
        if not info.exists():
            raise CorpusError(f"{self.root}: not a skyloom corpus (no corpus.json); create one with `skyloom datagen render --out DIR` or `skyloom datagen ingest SOURCES --out DIR`")
        try:
            meta = json.loads(info.read_text())
        except json.JSONDecodeError as e:
            raise CorpusError(f"{info}: not valid JSON ({e})") from None
        if meta.get("format") != CORPUS_FORMAT:
            raise CorpusError(f"{info}: field 'format' is {meta.get('format')!r}, expected {CORPUS_FORMAT!r}")
        if int(meta.get("version", 0)) > CORPUS_FORMAT_VERSION:
            raise CorpusError(f"{info}: corpus version {meta.get('version')} is newer than supported {CORPUS_FORMAT_VERSION}")
        self.info = meta

    # -- creation -------------------------------------------------------------------------
    @classmethod
    def create(cls, root: str | os.PathLike, name: str | None = None, exist_ok: bool = True) -> Corpus:
        """Create (or open, if ``exist_ok``) a corpus directory."""
        r = Path(root)
        if (r / "corpus.json").exists():
            if not exist_ok:
                raise CorpusError(f"{r}: corpus already exists")
            return cls(r)
        if r.exists() and r.is_file():
            raise CorpusError(f"{r}: is a file, expected a directory")
        for sub in (MANIFEST_DIR, "clips", "gt"):
            (r / sub).mkdir(parents=True, exist_ok=True)
        atomic_write_json(r / "corpus.json", {
            "format": CORPUS_FORMAT, "version": CORPUS_FORMAT_VERSION, "name": name or r.name, "created_at": now_iso(),
        })
        return cls(r)

    @classmethod
    def open(cls, root: str | os.PathLike, create: bool = False) -> Corpus:
        return cls.create(root) if create else cls(root)

    # -- paths ----------------------------------------------------------------------------
    @property
    def manifest_dir(self) -> Path:
        return self.root / MANIFEST_DIR

    def clip_path(self, clip_id: str) -> Path:
        """Where the clip file of ``clip_id`` lives (``clips/<id>.mp4``)."""
        return self.root / "clips" / f"{clip_id}.mp4"

    def gt_path(self, clip_id: str, suffix: str = ".json") -> Path:
        return self.root / "gt" / f"{clip_id}{suffix}"

    def abspath(self, rec: ClipRecord) -> Path:
        return self.root / rec.path

    def _lock(self):
        return file_lock(self.root / ".lock")

    # -- reading --------------------------------------------------------------------------
    def part_files(self) -> list[Path]:
        if not self.manifest_dir.exists():
            return []
        return sorted(p for p in self.manifest_dir.glob("*.parquet") if not p.name.startswith("."))

    def _read_table(self) -> pa.Table:
        tables = []
        for part in self.part_files():
            try:
                schema = pq.read_schema(part)
            except Exception as e:
                raise ManifestError(f"{part}: unreadable Parquet file ({type(e).__name__}: {e})") from None
            validate_part_schema(schema, str(part))
            t = pq.read_table(part)
            tables.append(t.select(MANIFEST_SCHEMA.names).cast(MANIFEST_SCHEMA))
        if not tables:
            return MANIFEST_SCHEMA.empty_table()
        return pa.concat_tables(tables)

    def _latest_rows(self) -> dict[str, dict[str, Any]]:
        latest: dict[str, dict[str, Any]] = {}
        for row in self._read_table().to_pylist():
            cur = latest.get(row["id"])
            if cur is None or row["rev"] >= cur["rev"]:
                latest[row["id"]] = row
        return latest

    def records(self, include_deleted: bool = False, split: str | None = None,
                source_kind: str | None = None) -> list[ClipRecord]:
        """Current clip records (latest revision per id), ordered by id."""
        out = []
        for cid in sorted(rows := self._latest_rows()):
            row = rows[cid]
            if row["deleted"] and not include_deleted:
                continue
            rec = ClipRecord.from_row(row)
            if split is not None and rec.split != split:
                continue
            if source_kind is not None and rec.source_kind != source_kind:
                continue
            out.append(rec)
        return out

    def ids(self, include_deleted: bool = False) -> set[str]:
        return {r.id for r in self.records(include_deleted=include_deleted)}

    def get(self, clip_id: str) -> ClipRecord:
        row = self._latest_rows().get(clip_id)
        if row is None or row["deleted"]:
            raise KeyError(f"clip {clip_id!r} is not in corpus {self.root}")
        return ClipRecord.from_row(row)

    def __len__(self) -> int:
        return len(self.records())

    def to_pandas(self):
        """Current records as a DataFrame (captions as lists of dicts, quality as dicts)."""
        import pandas as pd

        rows = []
        for r in self.records():
            d = dataclasses.asdict(r)
            d["captions"] = [dataclasses.asdict(c) for c in r.captions]
            rows.append(d)
        cols = [f.name for f in dataclasses.fields(ClipRecord)]
        return pd.DataFrame(rows, columns=cols)

    def read_clip(self, clip_id: str, **kwargs):
        """Decode a clip to uint8 ``(T, H, W, 3)`` (kwargs as :func:`skyloom.video.read_video`)."""
        from skyloom.video import read_video

        return read_video(self.abspath(self.get(clip_id)), **kwargs)

    def read_ground_truth(self, clip_id: str) -> dict[str, Any]:
        p = self.gt_path(clip_id)
        if not p.exists():
            raise KeyError(f"clip {clip_id!r} has no ground truth ({p})")
        return json.loads(p.read_text())

    # -- writing --------------------------------------------------------------------------
    def _write_part(self, records: Sequence[ClipRecord]) -> Path:
        rows = [r.to_row() for r in records]
        table = pa.Table.from_pylist(rows, schema=MANIFEST_SCHEMA)
        rev = records[0].rev if records else time.time_ns()
        dest = self.manifest_dir / f"part-{rev:020d}-{uuid.uuid4().hex[:8]}.parquet"
        with atomic_path(dest, suffix=".parquet") as tmp:
            pq.write_table(table, tmp, compression="zstd")
        return dest

    def _next_rev(self) -> int:
        # Strictly increasing under the lock, even if the clock steps back.
        rev = time.time_ns()
        last = getattr(self, "_last_rev", 0)
        rev = max(rev, last + 1)
        self._last_rev = rev
        return rev

    def append(self, records: Iterable[ClipRecord], validate_files: bool = False) -> int:
        """Append new clips as one new part file; ids already present are skipped.

        Returns the number of rows written. Concurrent appenders (threads, processes, Ray
        tasks on one host) serialise on a lock file, so nothing is lost or duplicated.
        """
        recs = list(records)
        if not recs:
            return 0
        seen: set[str] = set()
        for r in recs:
            validate_record(r)
            if r.id in seen:
                raise ManifestError(f"duplicate clip id {r.id!r} in one append")
            seen.add(r.id)
            if validate_files and not (self.root / r.path).exists():
                raise ManifestError(f"clip {r.id!r}: field 'path' points to missing file {r.path}")
        with self._lock():
            existing = self.ids()
            rev = self._next_rev()
            now = now_iso()
            fresh = [dataclasses.replace(r, rev=rev, deleted=False, created_at=r.created_at or now)
                     for r in recs if r.id not in existing]
            if fresh:
                self._write_part(fresh)
            return len(fresh)

    def update(self, records: Iterable[ClipRecord]) -> int:
        """Write new revisions of existing clips (e.g. new split or metadata)."""
        recs = list(records)
        for r in recs:
            validate_record(r)
        with self._lock():
            existing = self.ids()
            missing = [r.id for r in recs if r.id not in existing]
            if missing:
                raise KeyError(f"cannot update clips not in corpus: {missing[:5]}")
            rev = self._next_rev()
            if recs:
                self._write_part([dataclasses.replace(r, rev=rev) for r in recs])
            return len(recs)

    def add_captions(self, captions: dict[str, Sequence[Caption]]) -> int:
        """Add captions to clips; a caption with the same (captioner, kind) is replaced."""
        return self._modify(captions, _merge_captions)

    def set_quality(self, scores: dict[str, dict[str, float]]) -> int:
        """Merge quality scores (name -> value) into clips."""
        return self._modify(scores, lambda rec, q: dataclasses.replace(rec, quality={**rec.quality, **q}))

    def _modify(self, changes: dict[str, Any], fn) -> int:
        if not changes:
            return 0
        with self._lock():
            rows = self._latest_rows()
            out = []
            for cid, change in changes.items():
                row = rows.get(cid)
                if row is None or row["deleted"]:
                    raise KeyError(f"clip {cid!r} is not in corpus {self.root}")
                out.append(fn(ClipRecord.from_row(row), change))
            rev = self._next_rev()
            self._write_part([dataclasses.replace(r, rev=rev) for r in out])
            return len(out)

    def delete(self, clip_ids: Iterable[str], reason: str, remove_files: bool = True) -> list[str]:
        """Tombstone clips (and remove their files); returns the ids removed."""
        ids = list(dict.fromkeys(clip_ids))
        with self._lock():
            rows = self._latest_rows()
            gone = [ClipRecord.from_row(rows[i]) for i in ids if i in rows and not rows[i]["deleted"]]
            if not gone:
                return []
            rev = self._next_rev()
            self._write_part([dataclasses.replace(r, rev=rev, deleted=True, meta={**r.meta, "deleted_reason": reason})
                              for r in gone])
            if remove_files:
                for r in gone:
                    (self.root / r.path).unlink(missing_ok=True)
                    if r.gt_path:
                        (self.root / r.gt_path).unlink(missing_ok=True)
                    for extra in self.gt_path(r.id, ".npz"), self.gt_path(r.id):
                        extra.unlink(missing_ok=True)
            self._remove_from_shards({r.id for r in gone})
            return [r.id for r in gone]

    def compact(self) -> Path | None:
        """Fold all parts into one (latest live rows only); atomic, safe beside readers."""
        with self._lock():
            old = self.part_files()
            if len(old) <= 1 and not any(r.deleted for r in self.records(include_deleted=True)):
                return old[0] if old else None
            live = self.records()
            rev = self._next_rev()
            new = self._write_part([dataclasses.replace(r, rev=rev) for r in live]) if live else None
            for p in old:
                p.unlink(missing_ok=True)
            return new

    def write_ground_truth(self, clip_id: str, gt: dict[str, Any]) -> str:
        """Write ``gt/<id>.json`` atomically; returns its corpus-relative path."""
        p = self.gt_path(clip_id)
        atomic_write_json(p, gt, indent=None)
        return str(p.relative_to(self.root))

    # -- quarantine / takedown log ----------------------------------------------------------
    def quarantine(self, stage: str, item: str, reason: str, **extra: Any) -> None:
        """Record a rejected or broken input with its reason (``quarantine.jsonl``)."""
        append_jsonl(self.root / "quarantine.jsonl",
                     {"stage": stage, "item": item, "reason": reason, "time": now_iso(), **extra})

    def quarantined(self, stage: str | None = None) -> list[dict[str, Any]]:
        rows = read_jsonl(self.root / "quarantine.jsonl")
        return [r for r in rows if stage is None or r.get("stage") == stage]

    def log_takedown(self, entry: dict[str, Any]) -> None:
        append_jsonl(self.root / "takedowns.jsonl", {"time": now_iso(), **entry})

    def takedowns(self) -> list[dict[str, Any]]:
        return read_jsonl(self.root / "takedowns.jsonl")

    # -- WebDataset export ------------------------------------------------------------------
    def export_webdataset(self, out_dir: str | os.PathLike | None = None, shard_size: int = 1000,
                          split: str | None = None) -> list[Path]:
        """Write WebDataset tar shards: per clip ``<id>.mp4``, ``<id>.json`` (row), ``<id>.txt``.

        Shards land in ``CORPUS/shards`` by default with ``index.json`` (clip id -> shard),
        which takedowns use to rewrite the shards that held a removed clip.
        """
        if shard_size < 1:
            raise ValueError(f"shard_size must be >= 1, got {shard_size}")
        out = Path(out_dir) if out_dir else self.root / "shards"
        out.mkdir(parents=True, exist_ok=True)
        recs = self.records(split=split)
        shards: list[Path] = []
        index: dict[str, str] = {}
        prefix = split or "all"
        for s in range(0, len(recs), shard_size):
            chunk = recs[s:s + shard_size]
            dest = out / f"{prefix}-{s // shard_size:06d}.tar"
            _write_shard(self, dest, chunk)
            shards.append(dest)
            index.update({r.id: dest.name for r in chunk})
        atomic_write_json(out / "index.json", {"format": "webdataset", "corpus_version": CORPUS_FORMAT_VERSION,
                                               "created_at": now_iso(), "clips": index})
        return shards

    def _remove_from_shards(self, ids: set[str]) -> list[str]:
        index_path = self.root / "shards" / "index.json"
        if not index_path.exists() or not ids:
            return []
        index = json.loads(index_path.read_text())
        clips: dict[str, str] = index.get("clips", {})
        touched = sorted({clips[i] for i in ids if i in clips})
        for name in touched:
            shard = index_path.parent / name
            if not shard.exists():
                continue
            with atomic_path(shard, suffix=".tar") as tmp:
                with tarfile.open(shard) as src, tarfile.open(tmp, "w") as dst:
                    for m in src.getmembers():
                        if m.name.split(".", 1)[0] in ids:
                            continue
                        dst.addfile(m, src.extractfile(m))
        for i in ids:
            clips.pop(i, None)
        index["clips"] = clips
        atomic_write_json(index_path, index)
        return touched


def _merge_captions(rec: ClipRecord, new: Sequence[Caption]) -> ClipRecord:
    keys = {(c.captioner, c.kind) for c in new}
    kept = [c for c in rec.captions if (c.captioner, c.kind) not in keys]
    stamped = [c if c.created_at else dataclasses.replace(c, created_at=now_iso()) for c in new]
    return dataclasses.replace(rec, captions=tuple(kept + stamped))


def _write_shard(corpus: Corpus, dest: Path, recs: Sequence[ClipRecord]) -> None:
    with atomic_path(dest, suffix=".tar") as tmp, tarfile.open(tmp, "w") as tar:
        for r in recs:
            row = r.to_row()
            row["quality"] = dict(r.quality)
            row["meta"] = r.meta
            text = (r.caption("dense") or r.caption() or "").encode()
            members = [(f"{r.id}.mp4", (corpus.root / r.path).read_bytes()),
                       (f"{r.id}.json", json.dumps(row, default=str).encode()),
                       (f"{r.id}.txt", text)]
            for name, data in members:
                info = tarfile.TarInfo(name)
                info.size = len(data)
                info.mtime = 0  # reproducible shards
                tar.addfile(info, io.BytesIO(data))


def is_corpus(path: str | os.PathLike) -> bool:
    return (Path(path) / "corpus.json").exists()


SourceKind = Literal["synthetic", "licensed"]
