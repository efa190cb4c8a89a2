"""Pieces every stage's CLI shares: ``--set`` overrides, presets, progress bars, clean errors.

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
from typing import Annotated, Any, TypeVar

import typer
from rich.console import Console
from rich.progress import (BarColumn, MofNCompleteColumn, Progress, SpinnerColumn, TextColumn,
                           TimeElapsedColumn, TimeRemainingColumn)

T = TypeVar("T")

console = Console(stderr=True)

SetOpt = Annotated[list[str] | None, typer.Option(
    "--set", "-s", help="Override a config value, typed and checked: [bold]--set a.b=value[/] (repeatable).")]
RayAddressOpt = Annotated[str | None, typer.Option(
    "--ray-address", envvar="RAY_ADDRESS", help="Join this Ray cluster (default: a local instance sized for this machine).")]


def load_config(cls: type[T], group: str, preset: str | None, sets: list[str] | None) -> T:
    """Preset (``configs/<group>/<preset>.yaml`` or a YAML path) + typed ``--set`` overrides."""
    from skyloom import config

    return config.load(cls, preset, sets or [], group=group)


def progress(transient: bool = False, disable: bool | None = None) -> Progress:
    """A rich progress bar with count, elapsed and remaining time (quiet when not a TTY in CI)."""
    if disable is None:
        disable = os.environ.get("SKYLOOM_NO_PROGRESS") == "1"
    return Progress(SpinnerColumn(), TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
                    TimeElapsedColumn(), TimeRemainingColumn(), console=console, transient=transient,
                    disable=disable)


def track(items: Iterable[T], description: str, total: int | None = None) -> Iterator[T]:
    with progress() as p:
        task = p.add_task(description, total=total if total is not None else (len(items) if hasattr(items, "__len__") else None))
        for it in items:
            yield it
            p.advance(task)


@contextmanager
def stage_timer(name: str) -> Iterator[dict[str, Any]]:
    """Print a stage header and its wall time when done."""
    info: dict[str, Any] = {"name": name}
    console.rule(f"[bold cyan]{name}")
    t0 = time.perf_counter()
    try:
        yield info
    finally:
        info["seconds"] = time.perf_counter() - t0
        console.print(f"[green]✓[/] {name} [dim]({info['seconds']:.1f} s)[/]")


def setup_logging(verbose: bool = False) -> None:
    from rich.logging import RichHandler

    logging.basicConfig(level=logging.DEBUG if verbose else logging.INFO, format="%(message)s",
                        handlers=[RichHandler(console=console, show_path=False, rich_tracebacks=False)], force=True)
    for noisy in ("urllib3", "httpx", "httpcore", "PIL", "matplotlib", "filelock", "ray", "torch"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


def fail(message: str, code: int = 2) -> None:
    console.print(f"[bold red]error:[/] {message}")
    raise typer.Exit(code)


def existing_path(p: str | Path, what: str) -> Path:
    path = Path(p)
    if not path.exists():
        fail(f"{what} {path} does not exist")
    return path


def is_tty() -> bool:
    return sys.stderr.isatty()
