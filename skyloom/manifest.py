"""The manifest: the clip record, its Parquet schema and the arrow helpers that read revisions.

A manifest holds *revisions* of clip rows: each write adds rows with a higher ``rev``; the current
state of a clip is its highest revision, and a ``deleted`` revision is a tombstone. Everything here
works on pyarrow tables (columns), never on Python objects for the whole corpus:
:func:`latest_revisions` keeps the highest revision per id, :func:`records_from_table` turns one
bounded batch into :class:`ClipRecord` objects. :class:`skyloom.corpus.Corpus` is the reader/writer.
"""

from __future__ import annotations

import dataclasses
import json
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from skyloom.errors import UserError

CORPUS_FORMAT_VERSION = 3
SOURCE_KINDS = ("synthetic", "licensed")
SPLITS = ("train", "val", "test")
ID_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,127}$")


class ManifestError(UserError, ValueError):
    """A manifest part or row that does not follow the corpus contract."""


class CorpusError(UserError, ValueError):
    """A corpus directory that is missing, of an unknown format, or misused."""


class CorpusBusyError(CorpusError):
    """Another job is writing the corpus (see :meth:`Corpus.writer`)."""


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
        raise ManifestError(f"{pre}clip {rec.id!r}: field 'source_kind' is {rec.source_kind!r}; "
                            f"valid: {', '.join(SOURCE_KINDS)}")
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


def latest_revisions(table: pa.Table) -> pa.Table:
    """The highest revision of each id in ``table`` (which holds ``id`` and ``rev``), sorted by id.

    Columnar: one sort and one comparison of neighbouring ids, no Python row objects."""
    if table.num_rows <= 1:
        return table
    t = table.sort_by([("id", "ascending"), ("rev", "descending")])
    ids = t.column("id").combine_chunks()
    first = pc.not_equal(ids.slice(1), ids.slice(0, len(ids) - 1))
    return t.filter(pa.concat_arrays([pa.array([True]), first]))


def filter_table(table: pa.Table, *, split: str | None = None, source_kind: str | None = None,
                 ids: Iterable[str] | None = None, include_deleted: bool = False) -> pa.Table:
    """Rows of ``table`` matching every filter given (``deleted`` rows dropped unless asked)."""
    mask = None

    def both(m, new):
        return new if m is None else pc.and_(m, new)

    if not include_deleted and "deleted" in table.column_names:
        mask = both(mask, pc.invert(table.column("deleted")))
    if split is not None:
        mask = both(mask, pc.equal(table.column("split"), split))
    if source_kind is not None:
        mask = both(mask, pc.equal(table.column("source_kind"), source_kind))
    if ids is not None:
        mask = both(mask, pc.is_in(table.column("id"), value_set=pa.array(list(ids), pa.string())))
    return table if mask is None else table.filter(mask)


_TYPE_DEFAULTS = {str: "", "str": "", float: 0.0, "float": 0.0, int: 0, "int": 0, bool: False, "bool": False}


def records_from_table(table: pa.Table) -> list[ClipRecord]:
    """Clip records of one (bounded) table; fields whose column was not read get an empty value."""
    missing = {}
    for f in dataclasses.fields(ClipRecord):
        if f.name in table.column_names or f.default is not dataclasses.MISSING \
                or f.default_factory is not dataclasses.MISSING:
            continue
        missing[f.name] = _TYPE_DEFAULTS.get(f.type, None)
    return [ClipRecord.from_row({**missing, **row}) for row in table.to_pylist()]
