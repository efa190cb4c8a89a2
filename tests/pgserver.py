"""A throw-away PostgreSQL server for the tests: ``initdb`` + ``pg_ctl`` in a temporary folder.

The server listens on 127.0.0.1 at a free port with ``trust`` authentication (nothing outside this
machine can reach it) and ``fsync=off`` (its data is deleted at the end anyway); each test gets a
database of its own from :meth:`PgServer.new_database`. Its default collation is ICU ``en-US``
(where the binaries support it), not bytewise, so a query that relies on the server's collation to
sort like SQLite does shows up as a failing test.

PostgreSQL refuses to run as root; when the tests run as root (containers, CI), the server runs as
the ``postgres`` user (which Debian's ``postgresql`` package creates), else as ``nobody``, through
``subprocess``'s ``user=``/``group=`` (no sudo, no runuser).

The binaries are looked up on ``PATH``, then in ``/usr/lib/postgresql/<version>/bin`` (where
Debian installs them, off ``PATH``), newest version first; ``$SKYLOOM_TEST_PG_BIN`` names the
folder explicitly.
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

PG_BIN_ENV = "SKYLOOM_TEST_PG_BIN"
SUPERUSER = "skyloom"


def find_bindir() -> Path | None:
    """The folder holding ``initdb`` and ``pg_ctl``, or None when PostgreSQL's server binaries are absent."""
    cands: list[Path] = []
    if os.environ.get(PG_BIN_ENV):
        cands.append(Path(os.environ[PG_BIN_ENV]))
    found = shutil.which("initdb")
    if found:
        cands.append(Path(found).resolve().parent)

    def version(d: str) -> tuple[int, ...]:
        name = Path(d).parent.name
        return tuple(int(x) for x in name.split(".") if x.isdigit())

    cands += [Path(d) for d in sorted(glob.glob("/usr/lib/postgresql/*/bin"), key=version, reverse=True)]
    for d in cands:
        if (d / "initdb").is_file() and (d / "pg_ctl").is_file():
            return d
    return None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class PgServer:
    """One running server (see the module docstring); :meth:`stop` deletes it."""

    def __init__(self, bindir: Path, durable: bool = False) -> None:
        """Args:
            bindir: where ``initdb`` and ``pg_ctl`` are.
            durable: keep ``fsync`` on (with ``synchronous_commit=off``: what SQLite's WAL with
                ``synchronous=NORMAL`` promises), for benchmarks; the tests turn fsync off.
        """
        self.bindir = bindir
        self.root = Path(tempfile.mkdtemp(prefix="skyloom-pg-"))
        self.data = self.root / "data"
        self.log = self.root / "server.log"
        self.port = _free_port()
        self._n = 0
        self._as: dict = {}
        if os.geteuid() == 0:  # postgres will not run as root: hand the folder to an unprivileged user
            try:
                pw = pwd.getpwnam("postgres")
            except KeyError:
                pw = pwd.getpwnam("nobody")
            os.chown(self.root, pw.pw_uid, pw.pw_gid)
            self._as = {"user": pw.pw_uid, "group": pw.pw_gid, "extra_groups": []}
        try:
            self._initdb()
            self._run("pg_ctl", "-D", str(self.data), "-l", str(self.log), "-w", "-t", "60", "start",
                      "-o", f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1 -c max_connections=100 "
                            + ("-c synchronous_commit=off" if durable else "-c fsync=off -c full_page_writes=off"))
        except BaseException:
            self.stop()
            raise

    def _run(self, tool: str, *args: str) -> None:
        r = subprocess.run([str(self.bindir / tool), *args], capture_output=True, text=True, timeout=120,
                           stdin=subprocess.DEVNULL, cwd=self.root, **self._as)
        if r.returncode:
            log = self.log.read_text()[-2000:] if self.log.exists() else ""
            raise RuntimeError(f"{tool} {' '.join(args)} failed ({r.returncode}):\n{r.stdout}\n{r.stderr}\n{log}")

    def _initdb(self) -> None:
        base = ("-D", str(self.data), "-U", SUPERUSER, "--auth=trust", "--no-sync", "-E", "UTF8")
        try:  # a collation that does not sort bytewise (see the module docstring)
            self._run("initdb", *base, "--locale-provider=icu", "--icu-locale=en-US", "--locale=C.UTF-8")
        except RuntimeError:  # built without ICU, or older than 15
            shutil.rmtree(self.data, ignore_errors=True)
            self._run("initdb", *base)

    def url(self, database: str = "postgres") -> str:
        """The SQLAlchemy URL of ``database`` on this server (psycopg 3)."""
        return f"postgresql+psycopg://{SUPERUSER}@127.0.0.1:{self.port}/{database}"

    def new_database(self) -> str:
        """A new empty database; its SQLAlchemy URL."""
        import psycopg

        self._n += 1
        name = f"t{self._n}"
        with psycopg.connect(host="127.0.0.1", port=self.port, user=SUPERUSER, dbname="postgres",
                             autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        return self.url(name)

    def stop(self) -> None:
        if (self.data / "postmaster.pid").exists():
            try:
                self._run("pg_ctl", "-D", str(self.data), "-m", "immediate", "-w", "stop")
            except (RuntimeError, subprocess.TimeoutExpired):
                pass
        for _ in range(3):
            shutil.rmtree(self.root, ignore_errors=True)
            if not self.root.exists():
                break
            time.sleep(0.2)
