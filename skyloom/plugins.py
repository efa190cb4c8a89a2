"""``skyloom plugins``: every registry, its entries, where each comes from and the options it takes.

Each pluggable part has one :class:`skyloom.registry.Registry`; another installed package adds an
entry by declaring an entry point in the registry's group (see :mod:`skyloom.registry`). This
module only names the registries, so the listing shows built-ins and plug-ins side by side; it
is not a list a plug-in has to edit.

The tables of built-ins in the docs are generated from :func:`listing` (``python -m skyloom.plugins
--write-docs`` rewrites the marked blocks of :data:`DOC_BLOCKS`; ``--check-docs`` exits 1 when a doc
differs, and ``tests/core/test_plugin_docs.py`` runs that check).

Example:
    >>> rows = {(r["kind"], r["name"]): r for r in listing(kinds=["metric"])}
    >>> [f["name"] for f in rows["metric", "warping_error"]["config"]]
    ['flow', 'protocol']
    >>> rows["metric", "clipsim"]["inputs"]
    ['videos', 'item_ids', 'prompts']
"""

from __future__ import annotations

import dataclasses
import importlib
import json
import re
import sys
import types
import typing
from pathlib import Path
from typing import Annotated, Any

import typer

from skyloom.registry import Registry, RegistryError

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


def type_name(tp: Any) -> str:
    """A config field's type as written in code: ``int``, ``str | None``, ``dict[str, Any]``."""
    if tp is type(None):
        return "None"
    if tp is Any:
        return "Any"
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if origin in (typing.Union, types.UnionType):
        return " | ".join(type_name(a) for a in args)
    if origin is typing.Literal:
        return f"Literal[{', '.join(map(repr, args))}]"
    if origin is not None:
        return f"{getattr(origin, '__name__', str(origin))}[{', '.join(type_name(a) for a in args)}]"
    return getattr(tp, "__name__", str(tp).replace("typing.", ""))


def config_fields(cls: type) -> list[dict[str, Any]]:
    """One ``{"name", "type", "default"}`` per field of a config dataclass (defaults as JSON values)."""
    from skyloom.config import to_dict

    hints = typing.get_type_hints(cls)
    out = []
    for f in dataclasses.fields(cls):
        if f.default is not dataclasses.MISSING:
            default = f.default
        elif f.default_factory is not dataclasses.MISSING:
            default = f.default_factory()
        else:
            default = None
        out.append({"name": f.name, "type": type_name(hints[f.name]), "default": to_dict(default)})
    return out


def summary(doc: str) -> str:
    """The first sentence of a docstring's first paragraph, on one line, Sphinx roles as plain code."""
    para = " ".join(doc.strip().split("\n\n")[0].split())
    first = re.split(r"(?<=[.!?])\s+(?=[A-Z`(])", para)[0]
    return re.sub(r"``([^`]+)``", r"`\1`", re.sub(r":[a-z]+:`~?([^`]+)`", r"`\1`", first))


def describe(kind: str, reg: Registry, name: str) -> dict[str, Any]:
    """One listing row: kind, name, group, origin, and (importing the entry) summary, module, config.

    Metrics add ``inputs``, ``optional_inputs``, ``higher_is_better`` and ``default_extractor``. An
    entry that cannot be loaded (a missing optional dependency, a plug-in without ``config_class``)
    gets ``error`` instead, so one broken plug-in does not hide the others.
    """
    row: dict[str, Any] = {"kind": kind, "name": name, "group": reg.group, "origin": reg.origin(name)}
    try:
        obj = reg.get(name)
    except (RegistryError, ImportError) as e:
        row["error"] = str(e)
        return row
    row["summary"] = summary(getattr(obj, "__doc__", None) or "")
    row["module"] = getattr(obj, "__module__", "")
    row["object"] = getattr(obj, "__qualname__", getattr(obj, "__name__", repr(obj)))
    cfg = reg.config_class(name)
    row["config_class"] = f"{cfg.__module__}.{cfg.__qualname__}" if cfg is not None else None
    row["config"] = config_fields(cfg) if cfg is not None else []
    if kind == "metric":
        from skyloom.eval.metrics.inputs import optional_inputs, required_inputs

        row["inputs"] = list(required_inputs(obj))
        row["optional_inputs"] = list(optional_inputs(obj))
        row["higher_is_better"] = bool(getattr(obj, "higher_is_better", True))
        row["default_extractor"] = getattr(obj, "default_extractor", None)
    return row


def listing(kinds: list[str] | None = None, builtin_only: bool = False) -> list[dict[str, Any]]:
    """One row per registered entry (see :func:`describe`), registries in :data:`REGISTRIES` order.

    Args:
        kinds: only these kinds (default: all).
        builtin_only: only skyloom's own entries (what the docs list).
    """
    rows = []
    for kind in kinds or list(REGISTRIES):
        reg = registry(kind)
        for n in reg.names():
            if builtin_only and not reg.origin(n).startswith("skyloom"):
                continue
            rows.append(describe(kind, reg, n))
    return rows


# -- generated docs --------------------------------------------------------------------------------
def _options_cell(row: dict[str, Any]) -> str:
    if row.get("error"):
        return f"(cannot load: {row['error']})"
    return ", ".join(f"`{f['name']}`={json.dumps(f['default'])}" for f in row["config"]) or "none"


def _module_file(module: str) -> str:
    """``skyloom.eval.metrics.fvd`` -> ``eval/metrics/fvd.py`` (the stage folders sit at the top level)."""
    parts = module.split(".")
    if parts[0] == "skyloom" and len(parts) > 1 and parts[1] in ("datagen", "captioning", "model", "eval",
                                                                 "dashboards"):
        parts = parts[1:]
    return "/".join(parts) + ".py"


def _table(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(c.replace("|", "\\|") for c in r) + " |" for r in rows]
    return "\n".join(lines)


def markdown_blocks(rows: list[dict[str, Any]] | None = None) -> dict[str, str]:
    """The generated tables of built-ins, by block name (``metrics``, ``extractors``, ``registries``)."""
    rows = listing(builtin_only=True) if rows is None else rows
    metrics = [r for r in rows if r["kind"] == "metric"]
    extractors = [r for r in rows if r["kind"] == "feature extractor"]
    blocks = {
        "metrics": _table(
            ["metric", "what", "better", "default extractor", "inputs (optional)", "settings (defaults)", "file"],
            [[f"`{r['name']}`", r.get("summary", ""), "higher" if r.get("higher_is_better", True) else "lower",
              f"`{r['default_extractor']}`" if r.get("default_extractor") else "none (pixels)",
              ", ".join(r.get("inputs", [])) + (f" ({', '.join(r['optional_inputs'])})"
                                                if r.get("optional_inputs") else ""),
              _options_cell(r), f"`{_module_file(r.get('module', ''))}`"] for r in metrics]),
        "extractors": _table(
            ["extractor", "what", "options (defaults)", "file"],
            [[f"`{r['name']}`", r.get("summary", ""), _options_cell(r), f"`{_module_file(r.get('module', ''))}`"]
             for r in extractors]),
    }
    reg_rows = []
    for kind in REGISTRIES:
        mine = [r for r in rows if r["kind"] == kind]
        reg = registry(kind)
        names = ", ".join(f"`{r['name']}`" + ("" if not r.get("config") else
                                             f" ({', '.join(f['name'] for f in r['config'])})") for r in mine)
        reg_rows.append([kind, f"`{REGISTRIES[kind].replace(':', '.')}`", f"`{reg.group}`", names])
    blocks["registries"] = _table(["kind", "registry", "entry-point group", "built-ins (their options)"], reg_rows)
    return blocks


# doc file (relative to the repository root) -> the generated blocks it holds
DOC_BLOCKS: dict[str, tuple[str, ...]] = {
    "docs/metrics.md": ("metrics", "extractors"),
    "docs/architecture.md": ("registries",),
}
_BLOCK = re.compile(r"(<!-- generated: (?P<name>[a-z]+) \(python -m skyloom\.plugins --write-docs\) -->\n)"
                    r"(?P<body>.*?)(^<!-- end generated -->)", re.S | re.M)


def render_docs(root: Path, blocks: dict[str, str] | None = None) -> dict[str, tuple[str, str]]:
    """``{doc: (current text, text with every generated block regenerated)}`` for :data:`DOC_BLOCKS`.

    Raises:
        ValueError: a doc lacks the marker of a block it should hold.
    """
    blocks = markdown_blocks() if blocks is None else blocks
    out = {}
    for doc, names in DOC_BLOCKS.items():
        text = (root / doc).read_text()
        found = {m.group("name") for m in _BLOCK.finditer(text)}
        missing = sorted(set(names) - found)
        if missing:
            raise ValueError(f"{doc}: no generated block {', '.join(missing)} (markers: <!-- generated: NAME "
                             "(python -m skyloom.plugins --write-docs) --> ... <!-- end generated -->)")
        new = _BLOCK.sub(lambda m: m.group(1) + blocks[m.group("name")] + "\n" + m.group(4), text)
        out[doc] = (text, new)
    return out


def _repo_root() -> Path:
    return Path(__file__).resolve().parent.parent


def main(argv: list[str] | None = None) -> int:
    """``python -m skyloom.plugins [--markdown | --write-docs | --check-docs]``."""
    args = sys.argv[1:] if argv is None else argv
    if args == ["--markdown"]:
        for name, body in markdown_blocks().items():
            print(f"## {name}\n\n{body}\n")
        return 0
    if args in (["--write-docs"], ["--check-docs"]):
        stale = []
        for doc, (old, new) in render_docs(_repo_root()).items():
            if old != new:
                stale.append(doc)
                if args == ["--write-docs"]:
                    (_repo_root() / doc).write_text(new)
        if args == ["--check-docs"] and stale:
            print(f"out of date (run python -m skyloom.plugins --write-docs): {', '.join(stale)}", file=sys.stderr)
            return 1
        print("\n".join(f"{'rewrote' if args == ['--write-docs'] else 'stale'}: {d}" for d in stale) or "up to date")
        return 0
    print("usage: python -m skyloom.plugins [--markdown | --write-docs | --check-docs]", file=sys.stderr)
    return 2


def register(app: typer.Typer) -> None:
    """Add ``skyloom plugins`` to the app."""

    @app.command("plugins")
    def plugins_cmd(as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
                    markdown: Annotated[bool, typer.Option("--markdown", help="Print the docs' tables of "
                                                                             "built-ins.")] = False) -> None:
        """List every registered scene kind, renderer, source kind, captioner, text encoder, autoencoder,
        feature extractor and metric, built-in or added by an installed package's entry point, with
        the options each takes (its config_class fields) and, for metrics, the inputs they read."""
        if markdown:
            for name, body in markdown_blocks().items():
                print(f"## {name}\n\n{body}\n")
            return
        rows = listing()
        if as_json:
            print(json.dumps(rows, indent=2))
            return
        from rich.table import Table

        from skyloom.cli_common import console

        t = Table(title="registries (a package adds an entry under the entry-point group)")
        for col in ("kind", "name", "from", "options (defaults)", "inputs"):
            t.add_column(col)
        for r in rows:
            inputs = ", ".join(r.get("inputs", [])) + (f" ({', '.join(r['optional_inputs'])})"
                                                       if r.get("optional_inputs") else "")
            t.add_row(r["kind"], r["name"], r["origin"], _options_cell(r), inputs)
        console.print(t)


if __name__ == "__main__":
    raise SystemExit(main())
