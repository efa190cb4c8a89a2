"""``skyloom datagen``: the render and ingest commands, each defined beside its job."""

from __future__ import annotations

import importlib

import typer

SUBCLIS = ("skyloom.datagen.render_cli", "skyloom.datagen.ingest_cli")


def register(app: typer.Typer) -> None:
    dg = typer.Typer(help="Build a corpus: [cyan]render[/] synthetic scenes with ground truth, "
                          "[cyan]ingest[/] licensed clips, [cyan]takedown[/] a source.",
                     no_args_is_help=True, rich_markup_mode="rich")
    for name in SUBCLIS:
        try:
            mod = importlib.import_module(name)
        except ModuleNotFoundError as e:
            if e.name == name:
                continue
            raise
        mod.register(dg)
    app.add_typer(dg, name="datagen")
