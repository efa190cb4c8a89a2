"""Source manifests: the list of clips to ingest, with their license and credits.

A manifest is a CSV, JSON-lines or Parquet table, one row per source video::

    url,license,author,attribution,source_page,title
    https://example.org/a.mp4,CC-BY-4.0,Jane Doe,"Jane Doe, CC BY 4.0",https://example.org/a,Sunset
    /data/footage/b.mp4,CC0-1.0,,,,

Columns: ``url`` (alias ``path``; an http(s) URL, a ``file://`` URL or a local path, relative
paths resolve against the manifest's folder), ``license`` (alias ``license_id``; SPDX-style id),
``author``, ``attribution``, ``source_page``, ``title``. Any other column is kept in the
source's ``extra`` and lands in each clip's ``meta``.

Two registries make this pluggable: :data:`MANIFEST_FORMATS` (file suffix -> reader) and
:data:`SOURCE_KINDS` (URL scheme -> fetch function, see :mod:`skyloom.datagen.fetch`).
"""

from __future__ import annotations

import csv
import hashlib
import json
import math
import os
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from skyloom.errors import UserError
from skyloom.registry import Registry

MANIFEST_FORMATS: Registry[Callable[[Path], list[dict[str, Any]]]] = Registry("source manifest format")
SOURCE_KINDS: Registry[Callable[..., Any]] = Registry("source kind")
SOURCE_KINDS.register_lazy("http", "skyloom.datagen.fetch:fetch_http")
SOURCE_KINDS.register_lazy("https", "skyloom.datagen.fetch:fetch_http")
SOURCE_KINDS.register_lazy("file", "skyloom.datagen.fetch:fetch_file")

_ALIASES = {"path": "url", "license_id": "license", "page": "source_page", "source_url": "url"}
_KNOWN = ("url", "license", "author", "attribution", "source_page", "title")


class SourceError(UserError, ValueError):
    """A source manifest that cannot be read or lacks a required column."""


class SourceRejected(Exception):
    """One source rejected by a stage; ``reason`` is a short fixed phrase for the report."""

    def __init__(self, reason: str, detail: str = "") -> None:
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason
        self.detail = detail


@dataclass(frozen=True)
class Source:
    """One row of a source manifest.

    Attributes:
        url: http(s) URL, ``file://`` URL or absolute local path (relative paths are resolved
            against the manifest folder on read).
        license: license id as written in the manifest (the gate normalises it).
        row: 0-based row number in the manifest (for messages).
        extra: other columns, kept as provenance in clip ``meta``.
    """

    url: str
    license: str = ""
    author: str = ""
    attribution: str = ""
    source_page: str = ""
    title: str = ""
    row: int = 0
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def kind(self) -> str:
        """The source kind (URL scheme): ``http``, ``https`` or ``file``."""
        scheme = urlparse(self.url).scheme.lower()
        return "file" if scheme in ("", "file") or len(scheme) == 1 else scheme  # "c:" drive letters

    def fingerprint(self) -> str:
        """Hash of the provenance fields: a rerun re-examines a source whose row changed."""
        d = {k: getattr(self, k) for k in _KNOWN}
        return hashlib.sha256(json.dumps(d, sort_keys=True).encode()).hexdigest()[:16]

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _clean(v: Any) -> str:
    if v is None:
        return ""
    if isinstance(v, float) and math.isnan(v):  # NaN from pandas/parquet
        return ""
    return str(v).strip()


@MANIFEST_FORMATS.register("csv")
def _read_csv(path: Path) -> list[dict[str, Any]]:
    with open(path, newline="", encoding="utf-8-sig") as f:
        return [dict(r) for r in csv.DictReader(f)]


@MANIFEST_FORMATS.register("jsonl")
def _read_jsonl(path: Path) -> list[dict[str, Any]]:
    rows = []
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as e:
            raise SourceError(f"{path}:{n}: not valid JSON ({e.msg})") from None
        if not isinstance(obj, dict):
            raise SourceError(f"{path}:{n}: expected a JSON object per line, got {type(obj).__name__}")
        rows.append(obj)
    return rows


MANIFEST_FORMATS.register("json")(_read_jsonl)


@MANIFEST_FORMATS.register("parquet")
def _read_parquet(path: Path) -> list[dict[str, Any]]:
    import pyarrow.parquet as pq

    try:
        return pq.read_table(path).to_pylist()
    except Exception as e:  # noqa: BLE001 - pyarrow raises many types; re-raised with the file named
        raise SourceError(f"{path}: unreadable Parquet file ({type(e).__name__}: {e})") from None


def read_sources(path: str | os.PathLike) -> list[Source]:
    """Read a source manifest (CSV, JSONL or Parquet, chosen by suffix).

    Raises:
        SourceError: missing file, unknown format, or no ``url``/``path`` column.
    """
    p = Path(path)
    if not p.exists():
        raise SourceError(f"source manifest {p} does not exist")
    fmt = p.suffix.lower().lstrip(".")
    if fmt not in MANIFEST_FORMATS:
        raise SourceError(f"source manifest {p}: unknown format {fmt!r}; valid: {', '.join(MANIFEST_FORMATS.names())}")
    rows = MANIFEST_FORMATS.get(fmt)(p)
    out: list[Source] = []
    for i, raw in enumerate(rows):
        row = {_ALIASES.get(str(k).strip().lower(), str(k).strip().lower()): v for k, v in raw.items()}
        if "url" not in row:
            raise SourceError(f"source manifest {p}: row {i} has no 'url' (or 'path') column; "
                              f"columns: {', '.join(map(str, raw))}")
        url = _clean(row["url"])
        if not url:
            raise SourceError(f"source manifest {p}: row {i} has an empty 'url'")
        if Source(url=url).kind == "file" and not url.startswith("file://"):
            local = Path(os.path.expanduser(url))
            url = str(local if local.is_absolute() else (p.parent / local).resolve())
        extra = {k: v for k, v in row.items() if k not in _KNOWN and v not in (None, "")}
        out.append(Source(url=url, license=_clean(row.get("license")), author=_clean(row.get("author")),
                          attribution=_clean(row.get("attribution")), source_page=_clean(row.get("source_page")),
                          title=_clean(row.get("title")), row=i, extra=json.loads(json.dumps(extra, default=str))))
    return out


def write_sources_csv(path: str | os.PathLike, sources: list[dict[str, Any]]) -> Path:
    """Write a CSV manifest from dicts with the manifest columns (missing ones left empty)."""
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    with open(p, "w", newline="", encoding="utf-8") as f:
        w = csv.DictWriter(f, fieldnames=list(_KNOWN))
        w.writeheader()
        for s in sources:
            w.writerow({k: s.get(k, "") for k in _KNOWN})
    return p
