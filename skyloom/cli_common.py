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
from collections.abc import Iterable, Iterator
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

console = Console(stderr=True)  # logs, progress, errors
data_console = Console()  # data: tables a user may redirect (`skyloom leaderboard > lb.txt`)

SetOpt = Annotated[list[str] | None, typer.Option(
    "--set", "-s", metavar="KEY=VALUE",
    help="Override a config value, typed and checked: [bold]--set a.b=value[/] (repeatable).")]
RayAddressOpt = Annotated[str | None, typer.Option(
    "--ray-address", envvar="RAY_ADDRESS", metavar="ADDRESS",
    help="Join this Ray cluster (default: a local instance sized for this machine).")]
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
                          total=total if total is not None else (len(items) if hasattr(items, "__len__") else None))
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
    from rich.logging import RichHandler

    logging.basicConfig(level=logging.DEBUG if verbose else logging.INFO, format="%(message)s",
                        handlers=[RichHandler(console=console, show_path=False, rich_tracebacks=False)], force=True)
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


def is_tty() -> bool:
    """Whether stderr (where logs and progress go) is an interactive terminal."""
    return sys.stderr.isatty()
