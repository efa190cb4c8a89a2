"""``skyloom plugins``: every registry, its entry-point group, and where each entry comes from.

Each pluggable part has one :class:`skyloom.registry.Registry`; another installed package adds an
entry by declaring an entry point in the registry's group (see :mod:`skyloom.registry`). This
module only names the registries, so the listing shows built-ins and plug-ins side by side; it
is not a list a plug-in has to edit.
"""

from __future__ import annotations

import importlib
import json
from typing import Annotated, Any

import typer

from skyloom.registry import Registry

# kind -> "module:attribute" of its registry (imported when listed)
REGISTRIES: dict[str, str] = {
    "scene kind": "skyloom.datagen.scene_kinds:SCENE_KINDS",
    "renderer": "skyloom.datagen.renderers:RENDERERS",
    "source kind": "skyloom.datagen.sources:SOURCE_KINDS",
    "source manifest format": "skyloom.datagen.sources:MANIFEST_FORMATS",
    "captioner": "skyloom.captioning.base:CAPTIONERS",
    "text encoder": "skyloom.model.text:TEXT_ENCODERS",
    "autoencoder": "skyloom.model.autoencoder:AUTOENCODERS",
    "annotator": "skyloom.datagen.curate.annotators:ANNOTATORS",
    "feature extractor": "skyloom.eval.features.base:EXTRACTORS",
    "metric": "skyloom.eval.metrics:METRICS",
}


def registry(kind: str) -> Registry:
    """The registry of ``kind`` (a key of :data:`REGISTRIES`)."""
    module, _, attr = REGISTRIES[kind].partition(":")
    return getattr(importlib.import_module(module), attr)


def listing() -> list[dict[str, Any]]:
    """One row per registered entry: kind, name, entry-point group, origin (a skyloom module or a distribution)."""
    rows = []
    for kind in REGISTRIES:
        reg = registry(kind)
        rows += [{"kind": kind, "name": n, "group": reg.group, "origin": reg.origin(n)} for n in reg.names()]
    return rows


def register(app: typer.Typer) -> None:
    """Add ``skyloom plugins`` to the app."""

    @app.command("plugins")
    def plugins_cmd(as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False) -> None:
        """List every registered scene kind, renderer, source kind, captioner, text encoder, autoencoder,
        feature extractor and metric, built-in or added by an installed package's entry point."""
        rows = listing()
        if as_json:
            print(json.dumps(rows, indent=2))
            return
        from rich.table import Table

        from skyloom.cli_common import console

        t = Table(title="registries (a package adds an entry under the entry-point group)")
        for col in ("kind", "name", "entry-point group", "from"):
            t.add_column(col)
        for r in rows:
            t.add_row(r["kind"], r["name"], r["group"] or "", r["origin"])
        console.print(t)
