"""``skyloom datagen``: the render and ingest commands, each defined beside its job."""

from __future__ import annotations

import typer

from skyloom.datagen import ingest_cli, render_cli


def register(app: typer.Typer) -> None:
    """Add the ``skyloom datagen`` group (render, ingest, takedown, demo-sources) to the skyloom app."""
    dg = typer.Typer(help="Build a corpus: [cyan]render[/] synthetic scenes with ground truth, "
                          "[cyan]ingest[/] licensed clips, [cyan]takedown[/] a source.",
                     no_args_is_help=True, rich_markup_mode="rich")
    render_cli.register(dg)
    ingest_cli.register(dg)
    app.add_typer(dg, name="datagen")
