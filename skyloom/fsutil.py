"""Small filesystem helpers: atomic writes, file locks, hashing, and the timestamps files carry."""

from __future__ import annotations

import contextlib
import datetime as _dt
import fcntl
import hashlib
import json
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any


def current_umask() -> int:
    """The process's umask (read by setting and restoring it; there is no read-only call)."""
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike, suffix: str | None = None) -> Iterator[Path]:
    """Yield a temporary path in the same directory; rename it onto ``path`` on success.

    Readers see either the old file or the complete new one, never a partial write. The file
    gets the mode a plain ``open(path, "w")`` would give (``0o666 & ~umask``, e.g. 0644), not the
    0600 of the temporary file, so teammates can read a shared corpus or run folder.
    """
    dest = Path(path)
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{dest.name}.", suffix=suffix or dest.suffix or ".tmp", dir=dest.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        if tmp_path.is_file():
            os.chmod(tmp_path, 0o666 & ~current_umask())
        os.replace(tmp_path, dest)
    except BaseException:  # noqa: BLE001 - any failure, Ctrl-C included: no partial file is left, then re-raised
        tmp_path.unlink(missing_ok=True)
        raise


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> Path:
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
    return Path(path)


def atomic_write_text(path: str | os.PathLike, text: str) -> Path:
    return atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_json(path: str | os.PathLike, obj: Any, indent: int | None = 2) -> Path:
    return atomic_write_text(path, json.dumps(obj, indent=indent, sort_keys=False, default=_json_default) + "\n")


def _json_default(o: Any) -> Any:
    import numpy as np

    if isinstance(o, np.integer):
        return int(o)
    if isinstance(o, np.floating):
        return float(o)
    if isinstance(o, np.ndarray):
        return o.tolist()
    if isinstance(o, Path):
        return str(o)
    raise TypeError(f"not JSON serialisable: {type(o).__name__}")


def append_jsonl(path: str | os.PathLike, obj: dict[str, Any]) -> None:
    """Append one JSON line under an exclusive lock (safe for concurrent writers)."""
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    line = json.dumps(obj, default=_json_default) + "\n"
    with open(p, "a", encoding="utf-8") as f:
        fcntl.flock(f.fileno(), fcntl.LOCK_EX)
        try:
            f.write(line)
            f.flush()
            os.fsync(f.fileno())
        finally:
            fcntl.flock(f.fileno(), fcntl.LOCK_UN)


def read_jsonl(path: str | os.PathLike) -> list[dict[str, Any]]:
    """Read a JSON-lines file; a torn last line (crash mid-write) is ignored."""
    p = Path(path)
    if not p.exists():
        return []
    out = []
    for line in p.read_text(encoding="utf-8").splitlines():
        line = line.strip()
        if not line:
            continue
        try:
            out.append(json.loads(line))
        except json.JSONDecodeError:
            continue
    return out


_HELD: dict[tuple[str, int], list[Any]] = {}  # (real lock path, thread id) -> [open file, depth]


@contextlib.contextmanager
def file_lock(path: str | os.PathLike) -> Iterator[None]:
    """Exclusive inter-process lock on ``path`` (created if missing).

    Re-entrant within one thread: a function holding the lock may call another that takes it
    (a takedown holds the corpus lock across ``delete``, ``compact`` and the shard rewrite).
    Other threads and processes wait (``flock`` on separate open files excludes both).
    """
    import threading

    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    key = (os.path.realpath(p), threading.get_ident())
    held = _HELD.get(key)
    if held is not None:
        held[1] += 1
        try:
            yield
        finally:
            held[1] -= 1
        return
    with open(p, "a+") as f:
        fcntl.flock(f.fileno(), fcntl.LOCK_EX)
        _HELD[key] = [f, 1]
        try:
            yield
        finally:
            del _HELD[key]
            fcntl.flock(f.fileno(), fcntl.LOCK_UN)


@contextlib.contextmanager
def holder_lock(path: str | os.PathLike, holder: dict[str, Any], wait: bool = False,
                poll_s: float = 0.2) -> Iterator[None]:
    """Exclusive lock on ``path`` that says who holds it: ``holder`` (job, pid, time) is written
    into the lock file while held. Without ``wait``, a lock held elsewhere raises
    :class:`LockBusy` carrying the holder's record at once; with it, waits until free.
    The kernel drops an ``flock`` when its process dies (SIGKILL included): no stale lock."""
    import time

    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    with open(p, "a+") as f:
        while True:
            try:
                fcntl.flock(f.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if not wait:
                    try:
                        info = json.loads(p.read_text() or "{}")
                    except (OSError, json.JSONDecodeError):
                        info = {}
                    raise LockBusy(p, info) from None
                time.sleep(poll_s)
        try:
            f.seek(0)
            f.truncate()
            f.write(json.dumps(holder, default=_json_default))
            f.flush()
            yield
        finally:
            f.seek(0)
            f.truncate()
            f.flush()
            fcntl.flock(f.fileno(), fcntl.LOCK_UN)


class LockBusy(Exception):
    """A :func:`holder_lock` held by another process; ``holder`` is what that process wrote."""

    def __init__(self, path: Path, holder: dict[str, Any]) -> None:
        super().__init__(f"{path} is held by {holder or 'another process'}")
        self.path, self.holder = path, holder


CRASH_ENV = "SKYLOOM_CRASH_AT"


def crash_point(name: str) -> None:
    """Test hook: SIGKILL this process at the step named ``name`` when ``$SKYLOOM_CRASH_AT`` names it.

    Crash-safety tests set the variable to each step of a journaled operation in turn and check
    that a rerun completes it; unset (always, outside tests) this is one dictionary lookup.
    """
    if os.environ.get(CRASH_ENV) == name:
        import signal

        os.kill(os.getpid(), signal.SIGKILL)


def sha256_file(path: str | os.PathLike, chunk: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while True:
            b = f.read(chunk)
            if not b:
                break
            h.update(b)
    return h.hexdigest()


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def now_iso() -> str:
    """Now in UTC as ISO 8601 with microseconds, e.g. ``2026-11-30T04:12:05.123456+00:00``.

    The one timestamp format skyloom writes (corpus, captions, quarantine and takedown logs, run
    directories, the results store): fixed width, so timestamps sort as text in time order.
    """
    return _dt.datetime.now(_dt.UTC).isoformat(timespec="microseconds")


def file_stamp() -> str:
    """Now in UTC for file names, e.g. ``20261130T041205-123456`` (sorts in time order, unique per microsecond)."""
    return _dt.datetime.now(_dt.UTC).strftime("%Y%m%dT%H%M%S-%f")
