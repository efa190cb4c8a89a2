"""The ``skyloom`` command line: one subcommand per stage.

Stage packages add their commands through ``<package>.cli.register(app)``; this file only wires
them together, adds the corpus tools and maps what a command raises to the exit-code contract of
:mod:`skyloom.errors` (0 ok, 1 bug, 2 user error, 130 interrupted), with one clear line on stderr
instead of a traceback (``skyloom -v`` shows it).
"""

from __future__ import annotations

import importlib
import os
import sys
import traceback
from typing import Annotated, Any

import typer
from typer.core import TyperGroup

from skyloom.cli_common import console, setup_logging
from skyloom.errors import (
    EXIT_BROKEN_PIPE,
    EXIT_INTERNAL,
    EXIT_INTERRUPTED,
    EXIT_OK,
    EXIT_USER,
    UserError,
    bug_report_hint,
    os_user_error,
)

HELP = """[bold]skyloom[/]: data and evaluation for text-to-video diffusion models.

The pipeline, one subcommand per arrow:

  [cyan]datagen render[/] / [cyan]datagen ingest[/]  ->  CORPUS  -> [cyan]caption[/] -> CORPUS
  CORPUS -> [cyan]train[/] -> RUN -> [cyan]sample[/] / [cyan]eval[/] -> results -> [cyan]leaderboard[/], \
[cyan]compare[/], [cyan]dashboard[/], [cyan]report[/]

[cyan]demo[/] runs it all end to end on small defaults. Every command takes [bold]--help[/].
"""


def _one_line(e: BaseException | str) -> str:
    """The message on one line, safe from rich markup (``[1, 7]`` or ``[bold]`` in a path stay text)."""
    from rich.markup import escape

    return escape(" ".join(str(e).split()))


def _report(e: BaseException, verbose: bool) -> int:
    """Print one line for an exception that escaped a command; return the exit code (skyloom.errors)."""
    if verbose:
        traceback.print_exc(file=sys.stderr)
    if isinstance(e, KeyboardInterrupt):
        console.print("[yellow]interrupted — rerun the same command to resume[/]")
        return EXIT_INTERRUPTED
    if isinstance(e, BrokenPipeError):  # `skyloom ... | head`: the reader has gone, which is no error
        return _broken_pipe()
    # a full disk, a read-only or forbidden folder; a file in the way where a folder must go, a folder given as a file
    e = os_user_error(e) or e
    if isinstance(e, UserError):
        console.print(f"[bold red]error:[/] {_one_line(e)}", highlight=False, soft_wrap=True)
        return e.exit_code
    where = "" if verbose else "; rerun with -v for the traceback"
    console.print(f"[bold red]internal error:[/] {type(e).__name__}: {_one_line(e)}. This is a bug in skyloom: please "
                  f"report it at {bug_report_hint()} with the command you ran{where}", highlight=False, soft_wrap=True)
    return EXIT_INTERNAL


def _broken_pipe() -> int:
    """The reader of stdout went away (``skyloom leaderboard | head -1``): stop quietly, as ``cat`` does.

    stdout is pointed at /dev/null so that flushing it at exit cannot raise again; the exit code is
    the shell's for a process ended by SIGPIPE (128 + 13).
    """
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):  # no real stdout file descriptor (an embedding test harness)
        pass
    return EXIT_BROKEN_PIPE


class _SkyloomGroup(TyperGroup):
    """The root command: maps every exception a command raises to its exit code, in one place."""

    def invoke(self, ctx: Any) -> Any:  # click's Context (typer bundles its own click)
        try:
            return super().invoke(ctx)
        except (typer.Exit, typer.Abort, typer.TyperException):
            raise  # click's own exits and usage errors: handled by main()
        except BrokenPipeError:
            raise typer.Exit(_broken_pipe()) from None
        except (Exception, KeyboardInterrupt) as e:  # noqa: BLE001 - every escape gets its exit code here
            raise typer.Exit(_report(e, bool(ctx.params.get("verbose")))) from None


app = typer.Typer(name="skyloom", help=HELP, rich_markup_mode="rich", no_args_is_help=True, cls=_SkyloomGroup,
                  pretty_exceptions_enable=False, add_completion=False)

STAGE_CLIS: tuple[str, ...] = ("skyloom.datagen.cli", "skyloom.captioning.cli", "skyloom.model.cli",
                               "skyloom.eval.cli.commands", "skyloom.dashboards.cli", "skyloom.demo")
STAGE_CLIS += ("skyloom.corpus_cli", "skyloom.plugins")  # `skyloom corpus ...`, `skyloom plugins`


@app.callback()
def _root(verbose: Annotated[bool, typer.Option(
        "--verbose", "-v", help="Debug logging, and the full traceback when a command fails.")] = False) -> None:
    setup_logging(verbose)


def _register_stages() -> None:
    # Every stage ships in the one package: an import error here is a broken install, shown as is.
    for mod_name in STAGE_CLIS:
        importlib.import_module(mod_name).register(app)


_register_stages()


def _help_like_unix(cmd: Any) -> None:
    """Metavars a Unix user expects in every command's help: flags bare, values as PATH, INT, TEXT, ...

    Typer prints ``<bool>``, ``<path>`` and ``{corpus}``; an explicit ``metavar=`` on an option wins.
    """
    names = {"int": "INT", "float": "FLOAT", "str": "TEXT"}
    for param in cmd.params:
        if param.param_type_name == "argument":
            if param.metavar is None:
                param.metavar = (param.name or "").upper() + ("..." if param.nargs != 1 else "")
            param.display_type_rich = lambda ctx: None  # the name says it: CORPUS, not CORPUS <path>
        elif getattr(param, "is_bool_flag", False):
            param.metavar = ""  # a flag takes no value
        elif param.metavar is None:
            desc = param.type_descriptor
            bare = param.bare_type().removeprefix("list[").removesuffix("]")
            param.metavar = "PATH" if desc.is_path else names.get(bare, bare.upper())
    help_opt = cmd.get_help_option(typer.Context(cmd))  # created once per command, then cached by click
    if help_opt is not None:
        help_opt.metavar = ""
    for sub in getattr(cmd, "commands", {}).values():
        _help_like_unix(sub)


def _usage_error(e: typer.TyperException) -> int:
    """One line for a command-line mistake (bad option, missing argument, bad value): exit 2."""
    ctx = getattr(e, "ctx", None)
    if type(e).__name__ == "NoArgsIsHelpError":  # `skyloom`, `skyloom corpus`: the help, then exit 2
        console.print(e.format_message(), highlight=False, markup=False)
        return EXIT_USER
    hint = f" (see '{ctx.command_path} --help')" if ctx is not None else ""
    console.print(f"[bold red]error:[/] {_one_line(e.format_message())}{hint}", highlight=False, soft_wrap=True)
    return int(getattr(e, "exit_code", EXIT_USER) or EXIT_USER)


def _raise_broken_pipe(_console: Any) -> None:
    raise BrokenPipeError  # rich's own handler exits 1; ours (_broken_pipe) exits as a SIGPIPE'd process


def main(argv: list[str] | None = None) -> None:
    """Entry point of the ``skyloom`` executable; exits with the code of skyloom.errors' contract."""
    from rich.console import Console

    Console.on_broken_pipe = _raise_broken_pipe  # type: ignore[method-assign,assignment]  # every console: ours and the one typer prints help with
    cmd = typer.main.get_command(app)
    _help_like_unix(cmd)
    try:
        rv = cmd.main(args=argv, prog_name="skyloom", standalone_mode=False)
        sys.stdout.flush()  # data still buffered must reach a closed pipe here, not at interpreter exit
    except BrokenPipeError:
        sys.exit(_broken_pipe())
    except typer.TyperException as e:  # the click bundled in typer: its ClickException derives from this
        sys.exit(_usage_error(e))
    except typer.Abort:
        console.print("[yellow]aborted[/]")
        sys.exit(EXIT_INTERRUPTED)
    sys.exit(rv if isinstance(rv, int) and not isinstance(rv, bool) else EXIT_OK)


if __name__ == "__main__":
    main()
