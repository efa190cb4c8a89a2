"""``skyloom corpus dedup / annotate / filter / stats / embed / semdedup / search``: curate a corpus.

Registered on the ``skyloom corpus`` group by :mod:`skyloom.corpus_cli`. Heavy imports stay inside
the command bodies.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from skyloom.cli_common import RayAddressOpt, SetOpt, WaitOpt, console, data_console, load_config, progress

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
    register_embeddings(corpus_app)

    @corpus_app.command("dedup")
    def dedup(corpus: CorpusArg, preset: PresetOpt = None, sets: SetOpt = None, as_json: JsonOpt = False,
              ray_address: RayAddressOpt = None, wait: WaitOpt = False) -> None:
        """Find near-duplicate clips (re-encodes, resizes, crops, speed changes, letterbox, mirror, logos)
        and mark all but one per group in the manifest (meta.dedup) and dedup.parquet; never deletes.

        Settings (--set): threshold (hash bits, default 15.5), candidates, executor (auto|local|ray),
        fingerprint.frames, fingerprint.centre, ... (DedupConfig in skyloom.datagen.curate.dedup).

        Example: [bold]skyloom corpus dedup corpus --set threshold=14[/]
        """
        from skyloom.config import save_resolved
        from skyloom.corpus import Corpus
        from skyloom.datagen.curate.dedup import DedupConfig, run_dedup

        cfg = load_config(DedupConfig, "datagen", preset, sets)
        c = Corpus(corpus)
        save_resolved(cfg, c.root / "configs" / "dedup.yaml")
        bar, tick = _bar("fingerprints")
        with c.writer("dedup", wait=wait), bar:
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

    @corpus_app.command("annotate")
    def annotate(corpus: CorpusArg, annotators: Annotated[str | None, typer.Option(
                     "--annotators", "-a", help="Comma-separated annotators (default camera_motion,technical,text; "
                     "also aesthetic with --set options.aesthetic.mlp_weights=FILE).")] = None,
                 preset: PresetOpt = None, sets: SetOpt = None, as_json: JsonOpt = False,
                 ray_address: RayAddressOpt = None, wait: WaitOpt = False) -> None:
        """Annotate every clip (camera motion, on-screen text, technical quality, aesthetic) into
        CORPUS/annotations.parquet, one column per value with its annotator version and tool; resumable.

        Example: [bold]skyloom corpus annotate corpus -a camera_motion,text --set options.text.frames=5[/]
        """
        from skyloom.config import apply_values, save_resolved
        from skyloom.corpus import Corpus
        from skyloom.datagen.curate.annotate import AnnotateConfig, run_annotate

        cfg = load_config(AnnotateConfig, "datagen", preset, sets)
        if annotators:
            cfg = apply_values(cfg, {"annotators": tuple(a.strip() for a in annotators.split(",") if a.strip())})
        c = Corpus(corpus)
        save_resolved(cfg, c.root / "configs" / "annotate.yaml")
        bar, tick = _bar("clips")
        with c.writer("annotate", wait=wait), bar:
            res = run_annotate(c, cfg, ray_address=ray_address, on_progress=tick)
        summary = {"corpus": str(c.root), "clips": res.clips, "annotated": res.annotated, "failed": res.failed,
                   "annotators": list(cfg.annotators), "file": str(res.path), "seconds": round(res.seconds, 3)}
        if as_json:
            print(json.dumps(summary, indent=2))
        else:
            console.print(f"{res.annotated} clip(s) annotated ({', '.join(cfg.annotators)}), {res.failed} failed, "
                          f"{res.clips - res.annotated - res.failed} already done; {res.path} "
                          f"in {res.seconds:.1f} s")

    @corpus_app.command("filter")
    def filter_cmd(corpus: CorpusArg,
                   where: Annotated[list[str], typer.Option("--where", "-w", help="Rule NAME OP VALUE (repeatable), "
                                    "e.g. 'text_area < 0.02', 'camera_motion in static,pan_left', "
                                    "'duplicate == false'.")],
                   name: Annotated[str, typer.Option("--name", help="Selection name: recorded as "
                                   "quality.select_NAME (1 passes, 0 fails) and meta.select.NAME.")] = "default",
                   as_json: JsonOpt = False, wait: WaitOpt = False) -> None:
        """Select clips by annotation thresholds; the verdict is recorded per clip, nothing is deleted.

        Example: [bold]skyloom corpus filter corpus -w 'text_area < 0.02' -w 'sharpness > 20' --name clean[/]
        """
        from skyloom.corpus import Corpus
        from skyloom.datagen.curate.select import run_filter

        c = Corpus(corpus)
        with c.writer("filter", wait=wait):
            res = run_filter(c, where, name)
        summary = {"name": res.name, "rules": res.rules, "clips": res.clips, "passed": res.passed,
                   "failed_by": res.failed_by, "updated": res.updated}
        if as_json:
            print(json.dumps(summary, indent=2))
            return
        console.print(f"selection {res.name!r}: {res.passed} of {res.clips} clip(s) pass "
                      f"({'; '.join(res.rules)}); recorded as quality.select_{res.name}")
        for rule, n in sorted(res.failed_by.items()):
            console.print(f"  {n} fail {rule}")

    @corpus_app.command("stats")
    def stats(corpus: CorpusArg, ends: Annotated[int, typer.Option(min=1, help="Clips listed at each end.")] = 3,
              as_json: JsonOpt = False) -> None:
        """Distribution of every annotation and quality score, with the clips at both ends."""
        from rich.table import Table

        from skyloom.corpus import Corpus
        from skyloom.datagen.curate.select import annotation_stats

        st = annotation_stats(Corpus(corpus), ends=ends)
        if as_json:
            print(json.dumps(st, indent=2))
            return
        t = Table(title=f"annotations of {st['corpus']} ({st['clips']} clips)")
        for col in ("annotation", "n", "distribution", "lowest", "highest"):
            t.add_column(col, overflow="fold")
        for name, a in st["annotations"].items():
            if a.get("kind") == "number":
                dist = (f"min {a['min']:.4g}  p5 {a['p5']:.4g}  p50 {a['p50']:.4g}  p95 {a['p95']:.4g}  "
                        f"max {a['max']:.4g}\n" + _spark(a["hist"]["counts"]))
                t.add_row(name, str(a["n"]), dist, ", ".join(a["lowest"]), ", ".join(a["highest"]))
            elif a.get("kind") == "label":
                t.add_row(name, str(a["n"]), ", ".join(f"{k}: {v}" for k, v in a["counts"].items()),
                          "", "; ".join(f"{k}: {', '.join(v)}" for k, v in a["examples"].items()))
            else:
                t.add_row(name, "0", "not annotated", "", "")
        data_console.print(t)


def _spark(counts: list[int]) -> str:
    bars = " ▁▂▃▄▅▆▇█"
    top = max(counts) or 1
    return "".join(bars[round(c / top * 8)] for c in counts)


def register_embeddings(corpus_app: typer.Typer) -> None:
    """``corpus embed``, ``corpus semdedup`` and ``corpus search``."""

    @corpus_app.command("embed")
    def embed(corpus: CorpusArg, preset: PresetOpt = None, sets: SetOpt = None, as_json: JsonOpt = False,
              ray_address: RayAddressOpt = None, wait: WaitOpt = False) -> None:
        """Embed every clip into CORPUS/embeddings.parquet with a registered feature extractor; resumable.

        Settings: extractor (pixels: weights-free; clip with options.pretrained=FILE; dino; indomain:PATH),
        options.*, frames.

        Example: [bold]skyloom corpus embed corpus --set extractor=clip --set options.pretrained=ViT-B-32.pt[/]
        """
        from skyloom.config import save_resolved
        from skyloom.corpus import Corpus
        from skyloom.datagen.curate.embed import EmbedConfig, run_embed

        cfg = load_config(EmbedConfig, "datagen", preset, sets)
        c = Corpus(corpus)
        save_resolved(cfg, c.root / "configs" / "embed.yaml")
        bar, tick = _bar("clips")
        with c.writer("embed", wait=wait), bar:
            res = run_embed(c, cfg, ray_address=ray_address, on_progress=tick)
        summary = {"corpus": str(c.root), "clips": res.clips, "embedded": res.embedded, "failed": res.failed,
                   "embedder": res.embedder, "dim": res.dim, "seconds": round(res.seconds, 3)}
        if as_json:
            print(json.dumps(summary, indent=2))
        else:
            console.print(f"{res.embedded} clip(s) embedded with {res.embedder} (dim {res.dim}), {res.failed} failed, "
                          f"{res.clips - res.embedded - res.failed} already done, in {res.seconds:.1f} s")

    @corpus_app.command("semdedup")
    def semdedup(corpus: CorpusArg,
                 eps: Annotated[float, typer.Option(help="Duplicates: cosine similarity >= 1 - eps to a kept clip "
                                                         "of the same cluster.")] = 0.05,
                 clusters: Annotated[int, typer.Option(min=0, help="k-means clusters (0: ~sqrt(clips)).")] = 0,
                 as_json: JsonOpt = False, wait: WaitOpt = False) -> None:
        """Semantic dedup of the embeddings (SemDeDup: k-means, cosine threshold within clusters) into
        CORPUS/semdedup.parquet; filters read it as semantic_duplicate. Nothing is deleted."""
        from skyloom.corpus import Corpus
        from skyloom.datagen.curate.embed import semantic_dedup

        c = Corpus(corpus)
        with c.writer("semdedup", wait=wait):
            res = semantic_dedup(c, eps=eps, clusters=clusters)
        summary = {"clips": res.clips, "clusters": res.clusters, "duplicates": res.duplicates, "eps": res.eps}
        if as_json:
            print(json.dumps(summary, indent=2))
        else:
            console.print(f"{res.duplicates} of {res.clips} clip(s) are semantic duplicates (eps {res.eps}, "
                          f"{res.clusters} clusters); see semdedup.parquet")

    @corpus_app.command("search")
    def search_cmd(corpus: CorpusArg,
                   text: Annotated[str | None, typer.Option("--text", help="Find clips nearest this text "
                                                             "(needs CLIP-like embeddings).")] = None,
                   clip: Annotated[str | None, typer.Option("--clip", help="Find clips nearest this clip id.")] = None,
                   k: Annotated[int, typer.Option("--top-k", "-k", min=1, help="How many clips.")] = 10,
                   as_json: JsonOpt = False) -> None:
        """Nearest clips to a text or a clip, by the embeddings (FAISS if installed, else exact NumPy)."""
        from skyloom.corpus import Corpus
        from skyloom.datagen.curate.embed import search

        hits = search(Corpus(corpus), text=text, clip=clip, k=k)
        if as_json:
            print(json.dumps(hits, indent=2))
            return
        for h in hits:
            data_console.print(f"{h['score']:.4f}  {h['id']}")
