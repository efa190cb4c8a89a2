"""The errors skyloom shows to users, and the exit-code contract of the ``skyloom`` command.

Every stage's error for a mistake in what the user gave (a path, a config value, a name, a file
that is not what it claims to be) derives from :class:`UserError`; the command line maps that one
class to exit code 2 in one place (``skyloom.cli``), together with the ``OSError`` of a path that
cannot be written (:func:`user_error_from_os`: permission, a file in the way, a full disk). Anything
else that escapes a command is a bug in skyloom: exit code 1 and a line that says so.

Library code raises a typed error for bad input: a config field's value :class:`skyloom.config.ConfigError`,
any other value, option or file content :class:`InvalidInputError`, an output path :class:`OutputError`,
a device :class:`DeviceError`, a missing optional backend :class:`MissingExtraError` (through
:func:`require_extra`), and each stage its own (``CorpusError``, ``VideoError``, ``StoreError``, ...).
Each derives from ``ValueError`` (or the built-in error callers catch) as well, so ``except ValueError``
keeps working. A bare ``ValueError`` is left only for a broken internal invariant (a bug).

Exit codes of ``skyloom`` (documented in README.md):

==== ===========================================================================================
 0   success
 1   internal error (a bug in skyloom; rerun with ``-v`` for the traceback and report it)
 2   user error: bad command line, missing or malformed input, unknown name, failed job
130  interrupted (Ctrl-C / SIGINT); rerun the same command to resume
141  stdout's reader closed the pipe (``skyloom leaderboard | head``); nothing is printed
==== ===========================================================================================
"""

from __future__ import annotations

import errno
from types import ModuleType

EXIT_OK = 0
EXIT_INTERNAL = 1
EXIT_USER = 2
EXIT_INTERRUPTED = 130
EXIT_BROKEN_PIPE = 141  # 128 + SIGPIPE: stdout's reader went away (`skyloom ... | head`)


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


class InvalidInputError(UserError, ValueError):
    """A value the user gave that skyloom cannot use: an option or setting out of range or not one of the
    valid choices, a file whose contents are not what it claims, or too little data to compute with.

    A config field's value raises :class:`skyloom.config.ConfigError` instead; stage errors
    (``CorpusError``, ``VideoError``, ``StoreError``, ...) cover their own inputs.
    """


class OutputError(UserError, OSError):
    """An output path skyloom cannot write (a file where a folder is needed, no permission, a full
    or read-only disk); the message names the path and the option that gave it."""

    def __init__(self, message: str) -> None:
        super().__init__(message)

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ""


class DeviceError(UserError, RuntimeError):
    """A ``--device`` this machine does not have (``cuda`` without a GPU, ``cuda:3`` on a 2-GPU host)."""


class JobFailedError(UserError):
    """A job that ran but failed (an evaluation, or more item failures than its allowance).

    Its message lists the reasons; the exit code is 2 like every other user-facing failure, so
    ``skyloom ... && next-step`` stops.
    """


class MissingExtraError(UserError, ImportError):
    """An optional backend used without its extra installed (``pip install 'skyloom[render]'``)."""


# What each optional extra of pyproject.toml installs, keyed by the module skyloom imports lazily.
EXTRAS = {
    "mujoco": "render",
    "ray": "ray",
    "fastapi": "dashboard",
    "uvicorn": "dashboard",
    "unrealcv": "unreal",
    "transformers": "vlm",
    "diffusers": "diffusers",
}


def require_extra(module: str, extra: str | None = None, what: str = "") -> ModuleType:
    """Import an optional backend's ``module``, or raise a one-line :class:`MissingExtraError` naming the extra.

    Args:
        module: the import name (``"mujoco"``, ``"ray"``, ``"fastapi"``, ...).
        extra: the pyproject extra that installs it (default: :data:`EXTRAS`' entry for the top-level name).
        what: the feature that needs it, for the message (``"datagen render"``).

    Returns:
        The imported module.
    """
    import importlib

    top = module.split(".")[0]
    extra = extra or EXTRAS.get(top, "all")
    try:
        return importlib.import_module(module)
    except ImportError as e:
        if (e.name or "").split(".")[0] != top:  # the backend is there but one of its own imports broke
            raise
        need = f"{what} needs" if what else "this needs"
        raise MissingExtraError(f"{need} the optional package {top!r}, which is not installed: "
                                f"pip install 'skyloom[{extra}]'") from None


# OSError numbers that mean "the path the user gave cannot be used", not "skyloom is broken": one table for
# both mappers below. ``storage`` marks the ones that are the machine's storage (a full, read-only or forbidden
# disk: :class:`StorageError`, the job resumes once it is fixed) rather than the shape of the path the user typed.
_OS_ERRNOS: dict[int, tuple[str, bool]] = {
    errno.EACCES: ("permission denied", True), errno.EPERM: ("operation not permitted", True),
    errno.EROFS: ("read-only file system", True), errno.ENOSPC: ("no space left on device", True),
    errno.EDQUOT: ("disk quota exceeded", True), errno.ENAMETOOLONG: ("name too long", True),
    errno.EISDIR: ("is a folder, a file path is needed", False),
    errno.ENOTDIR: ("a file is in the way where a folder is needed", False),
    errno.EEXIST: ("a file is in the way where a folder is needed", False)}


def user_error_from_os(e: OSError, what: str = "") -> UserError | None:
    """The :class:`OutputError` an ``OSError`` about a path stands for, or None when it is not about one.

    A folder that cannot be created because a file is in the way, a permission, a full or read-only
    disk: the user's path or machine, not a bug. ``what`` names the option (``"--out"``).
    """
    if isinstance(e, UserError) or e.errno not in _OS_ERRNOS:
        return None
    path = e.filename2 if e.errno == errno.EISDIR and e.filename2 else e.filename
    if path is None:
        return None
    label = f"{what} {path}" if what else str(path)
    return OutputError(f"{label}: {_OS_ERRNOS[e.errno][0]}")


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


def storage_error(e: BaseException) -> StorageError | None:
    """A :class:`StorageError` for an ``OSError`` that is the user's storage, not a bug (else None)."""
    if isinstance(e, StorageError):
        return e
    if not isinstance(e, OSError) or e.errno not in _OS_ERRNOS or not _OS_ERRNOS[e.errno][1]:
        return None
    name = errno.errorcode.get(e.errno, "")
    where = e.filename if e.filename is not None else "a file"
    return StorageError(f"cannot write {where}: {_OS_ERRNOS[e.errno][0]} ({name}); free space or fix the folder's "
                        "permissions, then rerun (the job resumes)")


def os_user_error(e: BaseException) -> UserError | None:
    """The user error an ``OSError`` that escaped a command stands for (storage first, then a path's shape), or
    None when it is a bug."""
    if not isinstance(e, OSError) or isinstance(e, UserError) and not isinstance(e, StorageError):
        return None
    return storage_error(e) or user_error_from_os(e)
