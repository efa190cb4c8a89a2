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
:data:`SOURCE_KINDS` (URL scheme -> fetch function, see :mod:`skyloom.datagen.fetch`); other
packages add entries under the ``skyloom.manifest_formats`` and ``skyloom.source_kinds`` entry points.
Entries are functions; each declares ``config_class`` (``@with_config(NoOptions)``: they take no
options of their own, the ingest job's ``fetch`` section configures fetching).
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import math
import os
import re
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlparse, urlunparse

from skyloom.errors import UserError
from skyloom.registry import NoOptions, Registry, with_config

MANIFEST_FORMATS: Registry[Callable[[Path], list[dict[str, Any]]]] = Registry("source manifest format",
                                                                             group="skyloom.manifest_formats")
SOURCE_KINDS: Registry[Callable[..., Any]] = Registry("source kind", group="skyloom.source_kinds")
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
        line: 1-based line of the row in a CSV/JSONL manifest (the Parquet row number + 1).
        as_written: the ``url`` cell as written in the manifest (before resolving a relative path).
        error: why the row is malformed (``file:line:column: what``); empty for a good row.
            Malformed rows are quarantined by the ingest job, which goes on with the others.
    """

    url: str
    license: str = ""
    author: str = ""
    attribution: str = ""
    source_page: str = ""
    title: str = ""
    row: int = 0
    extra: dict[str, Any] = field(default_factory=dict)
    line: int = 0
    as_written: str = ""
    error: str = ""

    @property
    def kind(self) -> str:
        """The source kind (URL scheme): ``http``, ``https`` or ``file``."""
        return url_kind(self.url)

    def fingerprint(self) -> str:
        """Hash of the provenance fields: a rerun re-examines a source whose row changed."""
        d = {k: getattr(self, k) for k in _KNOWN}
        return hashlib.sha256(json.dumps(d, sort_keys=True).encode()).hexdigest()[:16]

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def url_kind(url: str) -> str:
    """``http``, ``https``, ``file`` (plain paths and drive letters too) or another scheme."""
    scheme = url.split(":", 1)[0].lower() if ":" in url else ""
    if not re.fullmatch(r"[a-z][a-z0-9+.-]*", scheme or "-"):
        scheme = ""
    return "file" if scheme in ("", "file") or len(scheme) == 1 else scheme  # "c:" drive letters


def url_problem(url: str) -> str:
    """Why ``url`` cannot be a source (empty string if it can): control characters, whitespace in
    a URL, an unparseable authority (bad IPv6 literal, bad port), no host."""
    bad = next((ch for ch in url if ord(ch) < 32 or ord(ch) == 127), None)
    if bad is not None:
        return f"control character {bad!r} in the url"
    kind = url_kind(url)
    if kind == "file":
        return ""
    if any(ch.isspace() for ch in url):
        return "whitespace in the url"
    try:
        u = urlparse(url)
        port = u.port  # raises ValueError on "80:81", "99999", "x"
        host = u.hostname
    except ValueError as e:
        return f"unparseable url ({e})"
    if kind in ("http", "https"):
        if not host:
            return "no host in the url"
        if port == 0:
            return "port 0 in the url"
    return ""


def canonical_url(url: str) -> str:
    """One spelling per source: a local file as its real absolute path; an http(s) URL with the
    scheme and host lower-cased, the default port and the fragment dropped, percent-escapes
    normalised (RFC 3986 section 6.2.2). Takedowns compare these."""
    if url_kind(url) == "file":
        path = unquote(urlparse(url).path) if url.lower().startswith("file://") else url
        try:
            return str(Path(os.path.expanduser(path)).resolve())
        except (OSError, ValueError):
            return url
    try:
        u = urlparse(url)
        scheme, host, port = u.scheme.lower(), (u.hostname or "").lower(), u.port
    except ValueError:
        return url
    if ":" in host:
        host = f"[{host}]"
    netloc = host if port in (None, {"http": 80, "https": 443}.get(scheme)) else f"{host}:{port}"
    if u.username or u.password:
        netloc = f"{u.username or ''}{':' + u.password if u.password else ''}@{netloc}"
    return urlunparse((scheme, netloc, _normal_escapes(u.path) or "/", u.params, _normal_escapes(u.query), ""))


_UNRESERVED = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~")


def _normal_escapes(text: str) -> str:
    """Percent-encoding normalised as RFC 3986 section 6.2.2 says: an escaped unreserved character
    is decoded (``%74`` -> ``t``), other escapes get upper-case hex (``%2f`` -> ``%2F``)."""
    def fix(m: re.Match) -> str:
        ch = chr(int(m.group(1), 16))
        return ch if ch in _UNRESERVED else f"%{m.group(1).upper()}"

    return re.sub(r"%([0-9A-Fa-f]{2})", fix, text)


def _clean(v: Any) -> str:
    if v is None:
        return ""
    if isinstance(v, float) and math.isnan(v):  # NaN from pandas/parquet
        return ""
    return str(v).strip()


# A manifest reader returns (line, raw row or None, error) per row: a malformed row keeps its line
# and reason instead of stopping the job.
RawRow = tuple[int, dict[str, Any] | None, str]


def _bad_bytes(text: str) -> tuple[int, str] | None:
    """(0-based column, byte) of the first undecodable byte (a surrogate escape) in ``text``."""
    for col, ch in enumerate(text):
        if 0xDC80 <= ord(ch) <= 0xDCFF:
            return col, f"0x{ord(ch) - 0xDC00:02x}"
    return None


@MANIFEST_FORMATS.register("csv")
@with_config(NoOptions)  # a reader takes the manifest path only
def _read_csv(path: Path) -> list[RawRow]:
    text = path.read_bytes().decode("utf-8", errors="surrogateescape").removeprefix("\ufeff")
    lines = text.splitlines()
    reader = csv.reader(io.StringIO(text, newline=""))
    try:
        header = next(reader)
    except StopIteration:
        return []
    except csv.Error as e:
        raise SourceError(f"{path}:1:1: unreadable CSV header ({e})") from None
    if (bad := _bad_bytes(",".join(header))) is not None:
        raise SourceError(f"{path}:1:{bad[0] + 1}: invalid UTF-8 byte {bad[1]} in the header (save the file as UTF-8)")
    names = [h.strip() for h in header]
    out: list[RawRow] = []
    start = reader.line_num + 1
    while True:
        try:
            cells = next(reader)
        except StopIteration:
            break
        except csv.Error as e:
            out.append((start, None, f"{path}:{start}:1: unreadable CSV row ({e})"))
            start = reader.line_num + 1
            continue
        first, start = start, reader.line_num + 1
        if not any(c.strip() for c in cells):
            continue  # blank line
        err = ""
        for k in range(first, reader.line_num + 1):
            if k - 1 < len(lines) and (bad := _bad_bytes(lines[k - 1])) is not None:
                err = f"{path}:{k}:{bad[0] + 1}: invalid UTF-8 byte {bad[1]} (save the manifest as UTF-8)"
                break
        if not err and len(cells) > len(names):
            err = f"{path}:{first}:{len(','.join(cells[:len(names)])) + 1}: {len(cells)} cells for {len(names)} columns"
        out.append((first, None if err else dict(zip(names, cells)), err))
    return out


@MANIFEST_FORMATS.register("jsonl")
@with_config(NoOptions)  # a reader takes the manifest path only
def _read_jsonl(path: Path) -> list[RawRow]:
    rows: list[RawRow] = []
    text = path.read_bytes().decode("utf-8", errors="surrogateescape")
    for n, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        if (bad := _bad_bytes(line)) is not None:
            rows.append((n, None, f"{path}:{n}:{bad[0] + 1}: invalid UTF-8 byte {bad[1]}"))
            continue
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as e:
            rows.append((n, None, f"{path}:{n}:{e.colno}: not valid JSON ({e.msg})"))
            continue
        if not isinstance(obj, dict):
            rows.append((n, None, f"{path}:{n}:1: expected a JSON object, got {type(obj).__name__}"))
            continue
        rows.append((n, obj, ""))
    return rows


MANIFEST_FORMATS.register("json")(_read_jsonl)


@MANIFEST_FORMATS.register("parquet")
@with_config(NoOptions)  # a reader takes the manifest path only
def _read_parquet(path: Path) -> list[RawRow]:
    import pyarrow.parquet as pq

    try:
        return [(i + 1, r, "") for i, r in enumerate(pq.read_table(path).to_pylist())]
    except Exception as e:  # noqa: BLE001 - pyarrow raises many types; re-raised with the file named
        raise SourceError(f"{path}: unreadable Parquet file ({type(e).__name__}: {e})") from None


def read_sources(path: str | os.PathLike) -> list[Source]:
    """Read a source manifest (CSV, JSONL or Parquet, chosen by suffix).

    A malformed row (undecodable bytes, bad JSON, an empty or unparseable url) comes back as a
    :class:`Source` whose ``error`` names the file, line and column; the ingest job quarantines it
    and goes on.

    Raises:
        SourceError: missing file, unknown format, unreadable file or header, or no ``url``/``path``
            column (the message names the file, line and column).
    """
    p = Path(path)
    if not p.exists():
        raise SourceError(f"source manifest {p} does not exist")
    fmt = p.suffix.lower().lstrip(".")
    if fmt not in MANIFEST_FORMATS:
        raise SourceError(f"source manifest {p}: unknown format {fmt!r}; valid: {', '.join(MANIFEST_FORMATS.names())}")
    rows = MANIFEST_FORMATS.get(fmt)(p)
    out: list[Source] = []
    for i, (line, raw, err) in enumerate(rows):
        where = f"{p}:{line}"
        if raw is None:
            out.append(Source(url=where, row=i, line=line, error=err))
            continue
        row = {_ALIASES.get(str(k).strip().lower(), str(k).strip().lower()): v for k, v in raw.items()}
        if "url" not in row:
            if fmt == "csv":
                raise SourceError(f"{p}:1:1: no 'url' (or 'path') column; columns: {', '.join(map(str, raw))}")
            out.append(Source(url=where, row=i, line=line, error=f"{where}:1: no 'url' (or 'path') field"))
            continue
        written = _clean(row["url"])
        col = 1 + list(row).index("url")
        problem = "empty 'url'" if not written else url_problem(written)
        if problem:
            out.append(Source(url=written or where, row=i, line=line, as_written=written,
                              error=f"{where}:{col}: {problem}" + (f" ({written!r})" if written else "")))
            continue
        url = written
        if url_kind(url) == "file" and not url.lower().startswith("file://"):
            local = Path(os.path.expanduser(url))
            url = str(local if local.is_absolute() else (p.parent / local).resolve())
        extra = {k: v for k, v in row.items() if k not in _KNOWN and v not in (None, "")}
        out.append(Source(url=url, license=_clean(row.get("license")), author=_clean(row.get("author")),
                          attribution=_clean(row.get("attribution")), source_page=_clean(row.get("source_page")),
                          title=_clean(row.get("title")), row=i, extra=json.loads(json.dumps(extra, default=str)),
                          line=line, as_written=written))
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
