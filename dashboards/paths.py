"""Read-only file access confined to the configured run and corpus directories.

The dashboard serves videos (and a few image types) by *root index + relative path*:
``/files/<root>/<relpath>``. :class:`SafeRoots` maps such a pair to a file only if

* the relative path is relative (no drive, no leading ``/``) and has no ``..`` part,
* the fully resolved path (symlinks followed) is still inside the resolved root, so a
  symlink that points outside a configured directory is refused, and
* the file has a media suffix (never ``results.sqlite``, configs or other data files).

Anything else raises :class:`PathRefused`, which the app turns into 403 (404 when the file
simply does not exist).
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

log = logging.getLogger(__name__)

MEDIA_SUFFIXES = frozenset({".mp4", ".webm", ".gif", ".png", ".jpg", ".jpeg"})
MEDIA_TYPES = {".mp4": "video/mp4", ".webm": "video/webm", ".gif": "image/gif", ".png": "image/png",
               ".jpg": "image/jpeg", ".jpeg": "image/jpeg"}


class PathRefused(PermissionError):
    """A requested path that is outside the configured directories or not a servable file."""


@dataclass(frozen=True)
class Root:
    """One configured directory: ``kind`` is ``run`` or ``corpus``."""

    kind: str
    path: Path  # resolved


class SafeRoots:
    """The configured directories and the only way the app turns a request into a file path."""

    def __init__(self, roots: list[tuple[str, str | os.PathLike]]) -> None:
        self.roots: list[Root] = []
        for kind, p in roots:
            rp = Path(p).expanduser().resolve()
            if not any(r.path == rp and r.kind == kind for r in self.roots):
                self.roots.append(Root(kind, rp))

    def resolve(self, root_index: int, relpath: str) -> Path:
        """The file ``relpath`` under root ``root_index``, or :class:`PathRefused` / FileNotFoundError."""
        if not 0 <= root_index < len(self.roots):
            raise PathRefused(f"root {root_index} is not configured")
        if not relpath or "\x00" in relpath or "\\" in relpath:
            raise PathRefused(f"path {relpath!r} is not allowed")
        pure = PurePosixPath(relpath)
        if pure.is_absolute() or any(part in ("..", "") for part in relpath.split("/")):
            raise PathRefused(f"path {relpath!r} must be relative and may not contain '..'")
        if pure.suffix.lower() not in MEDIA_SUFFIXES:
            raise PathRefused(f"path {relpath!r}: only media files ({', '.join(sorted(MEDIA_SUFFIXES))}) are served")
        root = self.roots[root_index].path
        full = (root / pure).resolve()
        if not full.is_relative_to(root):
            raise PathRefused(f"path {relpath!r} leaves its directory (symlink to {full})")
        if not full.is_file():
            raise FileNotFoundError(relpath)
        return full

    def locate(self, path: str | os.PathLike, prefer: Path | None = None) -> tuple[int, str] | None:
        """``(root_index, relpath)`` of an on-disk file if it lies inside a configured root.

        Args:
            path: absolute, or relative to ``prefer`` (e.g. the run directory of an evaluation).
            prefer: directory that relative paths are taken from first.
        """
        p = Path(path)
        if p.is_absolute():
            candidates = [p]
        else:
            candidates = ([prefer / p] if prefer is not None else []) + [r.path / p for r in self.roots]
        for cand in candidates:
            try:
                full = cand.resolve()
            except OSError:
                continue
            if not full.is_file():
                continue
            for i, r in enumerate(self.roots):
                if full.is_relative_to(r.path):
                    return i, full.relative_to(r.path).as_posix()
        return None

    def url(self, path: str | os.PathLike, prefer: Path | None = None) -> str | None:
        """``/files/<root>/<relpath>`` for a servable file inside a configured root, else None."""
        loc = self.locate(path, prefer)
        if loc is None or PurePosixPath(loc[1]).suffix.lower() not in MEDIA_SUFFIXES:
            return None
        from urllib.parse import quote

        return f"files/{loc[0]}/{quote(loc[1])}"
