"""Pieces every stage's CLI shares: ``--set`` overrides, presets, progress bars, clean errors.

Data (tables, JSON, CSV) goes to stdout with ``print``/:data:`data_console`; logs, progress and errors go
to stderr through :data:`console`.

Stage CLIs (``datagen/cli.py``, ``captioning/cli.py``, ...) define a ``register(app)`` function
that adds their commands to the ``skyloom`` app. They import heavy libraries (torch, ray, av)
inside the command bodies, so that ``skyloom --help`` stays fast.
"""

from __future__ import annotations

import logging
import os
import sys
import time
from collections.abc import Iterable, Iterator, Sized
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any, NoReturn, TypeVar

import typer
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

from skyloom.errors import EXIT_INTERRUPTED, InputNotFoundError, JobFailedError, UserError

T = TypeVar("T")

NOT_A_TERMINAL_WIDTH = 100_000  # "unlimited": data written to a pipe or file is never wrapped


class DataConsole(Console):
    """stdout, for data. On a terminal, rich tables fit the window. Piped or redirected
    (``skyloom leaderboard > lb.txt``, ``| grep``), nothing is wrapped: every row is one line at its full
    width and a table's title is a line of its own rather than wrapped to the table's width."""

    def print(self, *objects: Any, **kw: Any) -> None:  # noqa: D102 - rich's Console.print
        if self.is_terminal:
            super().print(*objects, **kw)
            return
        from rich.table import Table

        width, self.width = self.width, NOT_A_TERMINAL_WIDTH
        try:
            for obj in objects:
                if isinstance(obj, Table) and obj.title:
                    super().print(obj.title, soft_wrap=True, highlight=False)
                    obj.title = None
                super().print(obj, **kw)
        finally:
            self.width = width


console = Console(stderr=True)  # logs, progress, errors
data_console = DataConsole()  # data: tables a user may redirect (`skyloom leaderboard > lb.txt`)

SetOpt = Annotated[list[str] | None, typer.Option(
    "--set", "-s", metavar="KEY=VALUE",
    help="Override a config value, typed and checked: [bold]--set a.b=value[/] (repeatable).")]
RayAddressOpt = Annotated[str | None, typer.Option(
    "--ray-address", envvar="RAY_ADDRESS", metavar="ADDRESS",
    help="Join this Ray cluster (default: a local instance sized for this machine).")]
ExecutorOpt = Annotated[str | None, typer.Option(
    "--executor", metavar="auto|local|ray",
    help="Where the job runs: auto (default: in-process for small jobs, Ray from the size measured in "
         "docs/benchmarks.md or with --ray-address), local (in-process) or ray.")]
EXECUTORS = ("auto", "local", "ray")


def check_executor(executor: str | None) -> str | None:
    """``--executor`` as given (None: the preset's), or a user error listing the valid ones."""
    if executor is not None and executor not in EXECUTORS:
        raise UserError(f"--executor {executor!r} is not one of: {', '.join(EXECUTORS)}")
    return executor


WaitOpt = Annotated[bool, typer.Option(
    "--wait", help="If another job (ingest, render, caption) is writing the corpus, queue behind it "
                   "(default: exit 2 naming that job).")]
MaxFailuresOpt = Annotated[int | None, typer.Option(
    "--max-failures", metavar="INT",
    help="Exit with code 2 when more than INT items fail (default: only when every item fails).")]


def load_config(cls: type[T], group: str, preset: str | None, sets: list[str] | None) -> T:
    """Preset (``configs/<group>/<preset>.yaml`` or a YAML path) + typed ``--set`` overrides."""
    from skyloom import config

    return config.load(cls, preset, sets or [], group=group)


def progress_enabled() -> bool:
    """Progress bars only on an interactive terminal, and never with ``SKYLOOM_NO_PROGRESS=1``."""
    return os.environ.get("SKYLOOM_NO_PROGRESS") != "1" and is_tty()


def progress(transient: bool = False, disable: bool | None = None) -> Progress:
    """A rich progress bar on stderr with count, elapsed and remaining time.

    Quiet when stderr is not a terminal (CI logs, ``2> file``) or ``SKYLOOM_NO_PROGRESS=1``.
    """
    if disable is None:
        disable = not progress_enabled()
    return Progress(SpinnerColumn(), TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
                    TimeElapsedColumn(), TimeRemainingColumn(), console=console, transient=transient,
                    disable=disable)


def track(items: Iterable[T], description: str, total: int | None = None) -> Iterator[T]:
    """Iterate ``items`` with a :func:`progress` bar (count and ETA when the length is known)."""
    with progress() as p:
        task = p.add_task(description,
                          total=total if total is not None else (len(items) if isinstance(items, Sized) else None))
        for it in items:
            yield it
            p.advance(task)


@contextmanager
def stage_timer(name: str) -> Iterator[dict[str, Any]]:
    """Print a stage header, then ✓ and the wall time on success, ✗ on failure or interruption.

    The reason of a failure is printed once, by the command line's error handler (``skyloom.cli``).
    """
    info: dict[str, Any] = {"name": name}
    console.rule(f"[bold cyan]{name}")
    t0 = time.perf_counter()

    def done(mark: str) -> None:
        info["seconds"] = time.perf_counter() - t0
        console.print(f"{mark} {name} [dim]({info['seconds']:.1f} s)[/]")

    try:
        yield info
    except KeyboardInterrupt:
        done("[yellow]✗[/] interrupted:")
        raise
    except typer.Exit as e:  # a nested command (the demo's stages) already reported its failure
        marks = {0: "[green]✓[/]", EXIT_INTERRUPTED: "[yellow]✗[/] interrupted:"}
        done(marks.get(e.exit_code, "[bold red]✗[/] failed:"))
        raise
    except BaseException:  # noqa: BLE001 - every failure gets its ✗ line, then is re-raised
        done("[bold red]✗[/] failed:")
        raise
    done("[green]✓[/]")


def setup_logging(verbose: bool = False) -> None:
    """skyloom's own INFO lines on stderr; other libraries' only from WARNING up, unless ``-v`` (DEBUG for all).

    A third-party INFO line (PyOpenGL's "No OpenGL_accelerate module loaded" on every render) is noise
    to a user who did not ask for it.
    """
    from rich.logging import RichHandler

    logging.basicConfig(level=logging.DEBUG if verbose else logging.WARNING, format="%(message)s",
                        handlers=[RichHandler(console=console, show_path=False, rich_tracebacks=False)], force=True)
    logging.getLogger("skyloom").setLevel(logging.DEBUG if verbose else logging.INFO)
    logging.getLogger("__main__").setLevel(logging.DEBUG if verbose else logging.INFO)
    for noisy in ("urllib3", "httpx", "httpcore", "PIL", "matplotlib", "filelock", "ray", "torch"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


def fail(message: str) -> NoReturn:
    """Stop the command with a user error: one red line on stderr and exit code 2 (see skyloom.errors)."""
    raise UserError(message)


def check_failures(job: str, failed: int, total: int, max_failures: int | None, reasons: list[str]) -> None:
    """Fail the command (exit 2, reasons listed) when ``failed`` exceeds the job's allowance.

    The allowance is ``max_failures`` when given, else ``total - 1`` (a job fails only when every
    item failed), so ``skyloom ... && next-step`` stops on a job that produced nothing.
    """
    allowed = max_failures if max_failures is not None else max(total - 1, 0)
    if failed > allowed and failed > 0:
        shown = "; ".join(reasons[:3]) + (f"; ... ({len(reasons) - 3} more)" if len(reasons) > 3 else "")
        limit = f"--max-failures {max_failures}" if max_failures is not None else "every item failed"
        raise JobFailedError(f"{job}: {failed} of {total} failed ({limit}): {shown}")


def existing_path(p: str | Path, what: str) -> Path:
    """``p`` as a Path, or a user error naming ``what`` when it does not exist."""
    path = Path(p)
    if not path.exists():
        raise InputNotFoundError(f"{what} {path} does not exist")
    return path


def check_positive(values: dict[str, float | int | None], allow_zero: bool = False) -> None:
    """A user error naming the first value below 1 (``allow_zero``: below 0); None means "not given".

    Counts, steps, frames and sizes are checked before any work starts: ``train --steps -5`` is a mistake,
    not a run that ends with "last loss nan".
    """
    for name, v in values.items():
        if v is None or isinstance(v, bool):
            continue
        if v < 0 or (v == 0 and not allow_zero):
            raise UserError(f"{name} is {v}: it must be {'0 or more' if allow_zero else 'positive'}")


def check_out_apart(out: str | Path, inputs: dict[str, str | Path | None], flag: str = "--out") -> None:
    """A user error when the output ``out`` is one of ``inputs`` or lies inside one (a run written into its
    corpus, scores written into the folder of videos being scored). Paths are compared resolved."""
    o = Path(out).expanduser().resolve()
    for what, p in inputs.items():
        if p is None:
            continue
        i = Path(p).expanduser().resolve()
        if o == i:
            raise UserError(f"{flag} {out} is the {what} {p} itself: write the output somewhere else")
        if i.is_dir() and o.is_relative_to(i):
            raise UserError(f"{flag} {out} is inside the {what} {p}: write the output somewhere else")


def is_tty() -> bool:
    """Whether stderr (where logs and progress go) is an interactive terminal."""
    return sys.stderr.isatty()
