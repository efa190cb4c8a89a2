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
