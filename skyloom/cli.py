"""The ``skyloom`` command line: one subcommand per stage.

Stage packages add their commands through ``<package>.cli.register(app)``; this file only wires
them together, adds the corpus tools and turns user errors (bad config, bad input) into one
clear red line instead of a traceback.
"""

from __future__ import annotations

import importlib
import json
import sys
from pathlib import Path
from typing import Annotated

import typer

from skyloom.cli_common import console, fail, setup_logging

HELP = """[bold]skyloom[/]: data and evaluation for text-to-video diffusion models.

The pipeline, one subcommand per arrow:

  [cyan]datagen render[/] / [cyan]datagen ingest[/]  ->  CORPUS  -> [cyan]caption[/] -> CORPUS
  CORPUS -> [cyan]train[/] -> RUN -> [cyan]sample[/] / [cyan]eval[/] -> results -> [cyan]leaderboard[/], [cyan]compare[/], [cyan]dashboard[/], [cyan]report[/]

[cyan]demo[/] runs it all end to end on small defaults. Every command takes [bold]--help[/].
"""

app = typer.Typer(name="skyloom", help=HELP, rich_markup_mode="rich", no_args_is_help=True,
                  pretty_exceptions_enable=False, add_completion=False)

STAGE_CLIS = ("skyloom.datagen.cli", "skyloom.captioning.cli", "skyloom.model.cli", "skyloom.eval.cli", "skyloom.dashboards.cli", "skyloom.demo")


@app.callback()
def _root(verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Debug logging.")] = False) -> None:
    setup_logging(verbose)


corpus_app = typer.Typer(help="Inspect, validate, compact and export a corpus (the contract between stages).",
                         no_args_is_help=True, rich_markup_mode="rich")
app.add_typer(corpus_app, name="corpus")


@corpus_app.command("info")
def corpus_info(corpus: Annotated[Path, typer.Argument(help="Corpus directory.")],
                as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False) -> None:
    """Summarise a corpus: clips per source kind, license and split; captions; quarantine."""
    from collections import Counter

    from rich.table import Table

    from skyloom.corpus import Corpus

    c = Corpus(corpus)
    recs = c.records()
    summary = {
        "corpus": str(c.root), "clips": len(recs),
        "source_kind": dict(Counter(r.source_kind for r in recs)),
        "license": dict(Counter(r.license_id for r in recs)),
        "split": dict(Counter(r.split for r in recs)),
        "captioned": sum(1 for r in recs if r.captions),
        "frames": int(sum(r.num_frames for r in recs)),
        "hours": round(sum(r.duration_s for r in recs) / 3600, 4),
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
    console.print(t)


@corpus_app.command("validate")
def corpus_validate(corpus: Annotated[Path, typer.Argument(help="Corpus directory.")]) -> None:
    """Check every manifest part's schema, every row's values, and that every clip file exists."""
    from skyloom.corpus import Corpus, validate_record

    c = Corpus(corpus)
    recs = c.records()
    missing = [r.id for r in recs if not c.abspath(r).exists()]
    for r in recs:
        validate_record(r, where=str(c.manifest_dir))
    if missing:
        fail(f"{len(missing)} clip file(s) missing, e.g. {missing[:5]}")
    console.print(f"[green]ok[/]: {len(recs)} clips, {len(c.part_files())} manifest part(s)")


@corpus_app.command("compact")
def corpus_compact(corpus: Annotated[Path, typer.Argument(help="Corpus directory.")]) -> None:
    """Fold the manifest's append-only parts into one file (atomic)."""
    from skyloom.corpus import Corpus

    p = Corpus(corpus).compact()
    console.print(f"manifest compacted into {p}")


@corpus_app.command("export-wds")
def corpus_export(corpus: Annotated[Path, typer.Argument(help="Corpus directory.")],
                  out: Annotated[Path | None, typer.Option(help="Output folder (default CORPUS/shards).")] = None,
                  shard_size: Annotated[int, typer.Option(help="Clips per tar shard.")] = 1000,
                  split: Annotated[str | None, typer.Option(help="Only this split.")] = None) -> None:
    """Export WebDataset tar shards (<id>.mp4 + <id>.json + <id>.txt) for large-scale training."""
    from skyloom.corpus import Corpus

    shards = Corpus(corpus).export_webdataset(out, shard_size=shard_size, split=split)
    console.print(f"wrote {len(shards)} shard(s) to {shards[0].parent if shards else out}")


def _register_stages() -> None:
    # Every stage ships in the one package: an import error here is a broken install, shown as is.
    for mod_name in STAGE_CLIS:
        importlib.import_module(mod_name).register(app)


_register_stages()


def main() -> None:
    """Entry point: run the app, turning user errors into one clear line and exit code 2."""
    from skyloom.config import ConfigError
    from skyloom.corpus import CorpusError, ManifestError
    from skyloom.registry import RegistryError
    from skyloom.rundir import RunError
    from skyloom.video import VideoError

    user_errors = (ConfigError, CorpusError, ManifestError, RegistryError, RunError, VideoError,
                   FileNotFoundError, KeyError)
    try:
        rc = app(standalone_mode=False)  # click returns (does not raise) typer.Exit's code in this mode
        if isinstance(rc, int) and rc:
            sys.exit(rc)
    except typer.Exit as e:
        sys.exit(e.exit_code)
    except typer.Abort:
        console.print("[yellow]aborted[/]")
        sys.exit(130)
    except KeyboardInterrupt:
        console.print("[yellow]interrupted: rerun the same command to resume[/]")
        sys.exit(130)
    except user_errors as e:
        msg = e.args[0] if isinstance(e, KeyError) and e.args else e
        console.print(f"[bold red]error:[/] {msg}")
        sys.exit(2)
    except Exception as e:  # click usage errors
        import click

        if isinstance(e, click.ClickException):
            e.show()
            sys.exit(e.exit_code)
        raise


if __name__ == "__main__":
    main()
