"""``skyloom corpus``: inspect, validate, compact and export a corpus (the contract between stages)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from skyloom.cli_common import console, data_console
from skyloom.errors import EXIT_USER


def register(app: typer.Typer) -> None:
    """Add the ``skyloom corpus`` group (info, validate, compact, export-wds) to the skyloom app."""
    corpus_app = typer.Typer(help="Inspect, validate, compact and export a corpus (the contract between stages).",
                             no_args_is_help=True, rich_markup_mode="rich")
    @corpus_app.command("info")
    def corpus_info(corpus: Annotated[Path, typer.Argument(help="Corpus directory.")],
                    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False) -> None:
        """Summarise a corpus: clips per source kind, license and split; captions; quarantine."""
        from collections import Counter

        import pyarrow.compute as pc
        from rich.table import Table

        from skyloom.corpus import Corpus

        c = Corpus(corpus)
        t = c.scan(["source_kind", "license_id", "split", "num_frames", "duration_s"])  # five columns, no records

        def counts(col: str) -> dict[str, int]:
            return dict(Counter(t.column(col).to_pylist())) if t.num_rows else {}

        summary = {
            "corpus": str(c.root), "clips": t.num_rows,
            "source_kind": counts("source_kind"), "license": counts("license_id"), "split": counts("split"),
            "captioned": c.captioned(),
            "frames": int(pc.sum(t.column("num_frames")).as_py() or 0),
            "hours": round((pc.sum(t.column("duration_s")).as_py() or 0.0) / 3600, 4),
            "quarantined": len(c.quarantined()), "takedowns": len(c.takedowns()),
        }
        if as_json:
            print(json.dumps(summary, indent=2))
            return
        t = Table(title=f"corpus {c.root}")
        t.add_column("field")
        t.add_column("value")
        for k, v in summary.items():
            t.add_row(k, json.dumps(v) if isinstance(v, dict) else str(v))
        data_console.print(t)


    @corpus_app.command("validate")
    def corpus_validate(corpus: Annotated[Path, typer.Argument(help="Corpus directory.")],
                        repair: Annotated[bool, typer.Option("--repair", help="Quarantine orphan files, re-hash rows "
                                                             "whose file is provably ours, rewrite the snapshot, drop "
                                                             "dead clips from shards.")] = False) -> None:
        """Check that the corpus is what its manifest says: schema, files, sha256, orphans, takedowns, shards.

        Prints one line per problem on stdout and exits 2 (a failed check, like any failed job) when any
        is left; 0 when the corpus is sound.
        """
        from skyloom.corpus import Corpus
        from skyloom.corpus_check import check_corpus

        rep = check_corpus(Corpus(corpus), repair=repair)
        for line in rep.repaired:
            console.print(f"[yellow]repaired[/]: {line}")
        for p in rep.problems:
            print(p)
        if rep.problems:
            console.print(f"[bold red]{len(rep.problems)} problem(s)[/] in {corpus} "
                          f"({rep.clips} clips, {rep.shards} shards)")
            raise typer.Exit(EXIT_USER)
        console.print(f"[green]ok[/]: {rep.clips} clips, {rep.shards} shard(s), {len(Corpus(corpus).part_files())} "
                      "manifest part(s)")


    @corpus_app.command("compact")
    def corpus_compact(corpus: Annotated[Path, typer.Argument(help="Corpus directory.")]) -> None:
        """Fold the manifest's parts into a new base and make manifest.parquet current (streaming, atomic).

        Appends write small parts; a compaction also runs by itself once the parts hold an eighth of the
        base's rows. Run it by hand before handing the corpus to a tool that reads manifest.parquet."""
        from skyloom.corpus import Corpus

        c = Corpus(corpus)
        p = c.compact()
        console.print(f"manifest compacted into {p.relative_to(c.root) if p else 'nothing'}: {len(c)} live clip(s); "
                      f"{c.snapshot_path.name} is current")


    @corpus_app.command("export-wds")
    def corpus_export(corpus: Annotated[Path, typer.Argument(help="Corpus directory.")],
                      out: Annotated[Path | None, typer.Option(
                          "--out", "-o", help="Output folder (default CORPUS/shards).")] = None,
                      shard_size: Annotated[int, typer.Option(min=1, help="Clips per tar shard.")] = 1000,
                      split: Annotated[str | None, typer.Option(help="Only this split.")] = None) -> None:
        """Export WebDataset tar shards (<id>.mp4 + <id>.json + <id>.txt) for large-scale training."""
        from skyloom.corpus import Corpus

        c = Corpus(corpus)
        shards = c.export_webdataset(out, shard_size=shard_size, split=split)
        console.print(f"wrote {len(shards)} shard(s) of split {split or 'all'} to {out or c.root / 'shards'}")

    from skyloom.datagen.curate.cli import register as register_curation  # dedup, annotate, filter, ...

    register_curation(corpus_app)
    app.add_typer(corpus_app, name="corpus")
