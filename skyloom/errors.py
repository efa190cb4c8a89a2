"""The errors skyloom shows to users, and the exit-code contract of the ``skyloom`` command.

Every stage's error for a mistake in what the user gave (a path, a config value, a name, a file
that is not what it claims to be) derives from :class:`UserError`; the command line maps that one
class to exit code 2 in one place (``skyloom.cli``). Anything else that escapes a command is a bug
in skyloom: exit code 1 and a line that says so.

Exit codes of ``skyloom`` (documented in README.md):

==== ===========================================================================================
 0   success
 1   internal error (a bug in skyloom; rerun with ``-v`` for the traceback and report it)
 2   user error: bad command line, missing or malformed input, unknown name, failed job
130  interrupted (Ctrl-C / SIGINT); rerun the same command to resume
==== ===========================================================================================
"""

from __future__ import annotations

EXIT_OK = 0
EXIT_INTERNAL = 1
EXIT_USER = 2
EXIT_INTERRUPTED = 130


class UserError(Exception):
    """A mistake in what the user gave: the message names the input and says what to do.

    Stage errors derive from it (usually together with ``ValueError``), e.g.
    ``class CorpusError(UserError, ValueError)``, so ``except ValueError`` in library code keeps
    working while the command line needs to know one class only.
    """

    exit_code = EXIT_USER


class InputNotFoundError(UserError, FileNotFoundError):
    """A file or folder named on the command line (or in a config) that does not exist."""

    def __init__(self, message: str) -> None:
        # OSError's own (errno, strerror) form is not used: str(e) is the message.
        super().__init__(message)

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ""


class JobFailedError(UserError):
    """A job that ran but failed (an evaluation, or more item failures than its allowance).

    Its message lists the reasons; the exit code is 2 like every other user-facing failure, so
    ``skyloom ... && next-step`` stops.
    """


def bug_report_hint() -> str:
    """Where to report an unexpected exception (the package's issue tracker when it declares one)."""
    try:
        from importlib.metadata import PackageNotFoundError, metadata

        for entry in metadata("skyloom").get_all("Project-URL") or []:
            label, _, url = entry.partition(",")
            if label.strip().lower() in ("issues", "bug tracker", "bugs"):
                return url.strip()
    except (ImportError, PackageNotFoundError):  # not installed: the generic hint below
        pass
    return "the skyloom issue tracker"


class StorageError(UserError, OSError):
    """A file skyloom must write cannot be written: a full disk or quota, a read-only or
    permission-denied folder, a name too long for the filesystem. The message names the path."""

    def __init__(self, message: str) -> None:
        super().__init__(message)

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ""


STORAGE_ERRNOS = {"ENOSPC": "no space left on the device", "EDQUOT": "disk quota exceeded",
                  "EROFS": "read-only filesystem", "EACCES": "permission denied", "EPERM": "operation not permitted",
                  "ENAMETOOLONG": "file name too long for the filesystem"}


def storage_error(e: BaseException) -> StorageError | None:
    """A :class:`StorageError` for an ``OSError`` that is the user's storage, not a bug (else None)."""
    import errno

    if isinstance(e, StorageError):
        return e
    if not isinstance(e, OSError) or e.errno is None:
        return None
    name = errno.errorcode.get(e.errno, "")
    if name not in STORAGE_ERRNOS:
        return None
    where = e.filename if e.filename is not None else "a file"
    return StorageError(f"cannot write {where}: {STORAGE_ERRNOS[name]} ({name}); free space or fix the folder's "
                        "permissions, then rerun (the job resumes)")
