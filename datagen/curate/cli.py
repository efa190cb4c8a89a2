"""``skyloom corpus dedup / annotate / filter / stats / embed / semdedup / search``: curate a corpus.

Registered on the ``skyloom corpus`` group by :mod:`skyloom.corpus_cli`. Heavy imports stay inside
the command bodies.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from skyloom.cli_common import RayAddressOpt, SetOpt, console, data_console, load_config, progress

CorpusArg = Annotated[Path, typer.Argument(help="Corpus directory.")]
PresetOpt = Annotated[str | None, typer.Option("--preset", help="YAML file of settings (see --set).")]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON on stdout.")]


def _bar(description: str):
    bar = progress()
    task = bar.add_task(description, total=None)

    def tick(done: int, total: int) -> None:
        bar.update(task, completed=done, total=total)

    return bar, tick


def register(corpus_app: typer.Typer) -> None:
    """Add the curation commands to the ``skyloom corpus`` group."""

    @corpus_app.command("dedup")
    def dedup(corpus: CorpusArg, preset: PresetOpt = None, sets: SetOpt = None, as_json: JsonOpt = False,
              ray_address: RayAddressOpt = None) -> None:
        """Find near-duplicate clips (re-encodes, resizes, crops, speed changes, letterbox, mirror, logos)
        and mark all but one per group in the manifest (meta.dedup) and dedup.parquet; never deletes.

        Settings (--set): threshold (hash bits, default 15.5), candidates, executor (auto|local|ray),
        fingerprint.frames, fingerprint.centre, ... (DedupConfig in skyloom.datagen.curate.dedup).

        Example: [bold]skyloom corpus dedup corpus --set threshold=14[/]
        """
        from skyloom.config import save_resolved
        from skyloom.corpus import Corpus
        from skyloom.datagen.curate.dedup import DedupConfig, run_dedup

        c = Corpus(corpus)
        cfg = load_config(DedupConfig, "datagen", preset, sets)
        save_resolved(cfg, c.root / "configs" / "dedup.yaml")
        bar, tick = _bar("fingerprints")
        with bar:
            res = run_dedup(c, cfg, ray_address=ray_address, on_progress=tick)
        summary = {"corpus": str(c.root), "clips": res.clips, "fingerprinted": res.fingerprinted,
                   "pairs_checked": res.pairs_checked, "groups": res.groups, "duplicates": res.duplicates,
                   "seconds": round(res.seconds, 3)}
        if as_json:
            print(json.dumps(summary, indent=2))
            return
        from rich.table import Table

        t = Table(title=f"near-duplicate groups in {c.root}")
        for col in ("group", "kept", "duplicates (similarity)"):
            t.add_column(col, overflow="fold")
        by: dict[str, list[tuple[str, dict]]] = {}
        for cid, m in res.members.items():
            by.setdefault(m["group"], []).append((cid, m))
        for g, members in sorted(by.items()):
            kept = members[0][1]["kept"]
            t.add_row(g, kept, ", ".join(f"{cid} ({m['similarity']:.2f})" for cid, m in members if m["duplicate"]))
        data_console.print(t)
        console.print(f"{res.clips} clips ({res.fingerprinted} fingerprinted now), {res.pairs_checked} candidate "
                      f"pairs checked: {res.groups} group(s), {res.duplicates} clip(s) marked duplicate "
                      f"in {res.seconds:.1f} s")
