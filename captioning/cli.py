"""``skyloom caption``: caption a corpus, verify captions, caption statistics, prompt upsampling."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Annotated

import typer
from typer.core import TyperGroup

from skyloom.cli_common import (
    MaxFailuresOpt,
    RayAddressOpt,
    SetOpt,
    WaitOpt,
    check_failures,
    console,
    data_console,
    load_config,
    stage_timer,
)


class _DefaultRun(TyperGroup):
    """``skyloom caption CORPUS ...`` means ``skyloom caption run CORPUS ...``."""

    def parse_args(self, ctx, args):
        if args and args[0] not in self.commands and args[0] not in ("--help", "-h"):
            args = ["run", *args]
        return super().parse_args(ctx, args)


def register(app: typer.Typer) -> None:
    """Add ``skyloom caption`` (run, verify, stats, upsample) to the skyloom app."""
    caption_app = typer.Typer(
        cls=_DefaultRun, no_args_is_help=True, rich_markup_mode="rich",
        help="Dense captions for a corpus: [cyan]skyloom caption CORPUS --captioner auto[/] "
             "(scene-graph for synthetic clips with ground truth, a VLM or the heuristic fallback otherwise), "
             "plus [cyan]verify[/], [cyan]stats[/] and [cyan]upsample[/].")


    @caption_app.command("run")
    def caption_run(
        corpus: Annotated[Path, typer.Argument(help="Corpus directory.")],
        captioner: Annotated[str | None, typer.Option(
            help="scene-graph | heuristic | vlm-local | vlm-endpoint | a plug-in's name | auto "
                 "(default: the preset's, else auto). A plug-in's settings: --set options.NAME.KEY=VALUE.")] = None,
        preset: Annotated[str | None, typer.Option(help="Preset in configs/caption/ (or a YAML path).")] = None,
        sets: SetOpt = None,
        ray_address: RayAddressOpt = None,
        max_failures: MaxFailuresOpt = None,
        wait: WaitOpt = False,
    ) -> None:
        """Caption every clip (a Ray job over a pool of captioner actors; resumable; failures quarantined)."""
        from skyloom.captioning.config import CaptionConfig
        from skyloom.captioning.runner import run
        from skyloom.config import apply_values

        cfg = load_config(CaptionConfig, "caption", preset, sets)
        cfg = apply_values(cfg, {"corpus": corpus, **({"captioner": captioner} if captioner else {})})
        if ray_address:
            cfg = dataclasses.replace(cfg, ray_address=ray_address)
        with stage_timer(f"caption {corpus} ({cfg.captioner})"):
            res = run(cfg, wait=wait)
            console.print(f"captioned {res.captioned}, already done {res.skipped}, failed {res.failed} "
                          f"in {res.seconds:.1f} s; config {res.config_path}")
            for f in res.failures[:10]:
                console.print(f"[yellow]failed[/] {f['clip']} ({f['captioner']}): {f['reason']}")
            n_failed = sum(res.failed.values())
            check_failures(f"caption {corpus}", n_failed, sum(res.captioned.values()) + n_failed, max_failures,
                           [f"{f['clip']}: {f['reason']}" for f in res.failures])


    @caption_app.command("verify")
    def caption_verify(
        corpus: Annotated[Path, typer.Argument(help="Corpus directory.")],
        captioner: Annotated[str | None, typer.Option(help="Only captions of this captioner.")] = None,
        kind: Annotated[str | None, typer.Option(help="Only captions of this kind (short, dense, vlm, ...).")] = None,
        out: Annotated[Path | None, typer.Option("--out", "-o",
                                                 help="JSON report path (default CORPUS/caption_verify.json).")] = None,
    ) -> None:
        """Precision/recall of the facts captions state vs ground truth; hallucinated objects flagged."""
        from rich.table import Table

        from skyloom.captioning.report import verify_corpus
        from skyloom.corpus import Corpus
        from skyloom.fsutil import atomic_write_json

        c = Corpus(corpus)
        rep = verify_corpus(c, captioner, kind)
        dest = out or c.root / "caption_verify.json"
        atomic_write_json(dest, rep)
        t = Table(title=f"caption verification ({len(rep['clips'])} captions with ground truth)")
        for col in ("captioner/kind", "n", "precision", "recall", "clips with hallucinations"):
            t.add_column(col)
        for name, g in rep["groups"].items():
            t.add_row(name, str(g["n"]), f"{g['precision']:.3f}", f"{g['recall']:.3f}", str(g["hallucinated_clips"]))
        data_console.print(t)
        console.print(f"report: {dest}")


    @caption_app.command("stats")
    def caption_stats_cmd(
        corpus: Annotated[Path, typer.Argument(help="Corpus directory.")],
        as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
    ) -> None:
        """Caption statistics: words per caption, vocabulary, distinct captions, coverage per source."""
        from rich.table import Table

        from skyloom.captioning.report import caption_stats
        from skyloom.corpus import Corpus

        st = caption_stats(Corpus(corpus))
        if as_json:
            print(json.dumps(st, indent=2))
            return
        t = Table(title=f"captions of {st['clips']} clips: coverage {st['coverage']:.1%} "
                        f"({', '.join(f'{k} {v:.0%}' for k, v in st['coverage_by_source'].items())})")
        for col in ("captioner/kind", "captions", "words (mean / min / max)", "vocabulary", "distinct"):
            t.add_column(col)
        for name, g in st["groups"].items():
            t.add_row(name, str(g["captions"]), f"{g['words_mean']:.1f} / {g['words_min']} / {g['words_max']}",
                      str(g["vocabulary"]), f"{g['distinct_fraction']:.0%}")
        data_console.print(t)


    @caption_app.command("upsample")
    def caption_upsample(
        prompt: Annotated[str, typer.Argument(help="Short prompt, e.g. 'a red ball bouncing'.")],
        seed: Annotated[int, typer.Option(help="Seed for the unstated details and the phrasing.")] = 0,
        preset: Annotated[str | None, typer.Option(help="Preset in configs/caption/ "
                                                        "(upsample.mode, upsample.endpoint).")] = None,
        sets: SetOpt = None,
    ) -> None:
        """Expand a short prompt into the dense caption style the model was trained on (printed to stdout)."""
        from skyloom.captioning.config import CaptionConfig
        from skyloom.captioning.upsample import upsample

        cfg = load_config(CaptionConfig, "caption", preset, sets)
        print(upsample(prompt, seed=seed, mode=cfg.upsample.mode, endpoint=cfg.upsample.endpoint))

    app.add_typer(caption_app, name="caption")
