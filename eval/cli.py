"""``skyloom eval`` (evaluate checkpoints on a suite, train an in-domain evaluator, score videos),
``skyloom leaderboard`` and ``skyloom compare``."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Annotated, Any

import typer

from skyloom.eval import metrics_cli
from skyloom.cli_common import MaxFailuresOpt, RayAddressOpt, SetOpt, console, data_console, existing_path, fail

logger = logging.getLogger(__name__)

FORMATS = ("table", "csv", "json", "markdown")

EVAL_HELP = """Evaluate checkpoints on a suite: generate the suite's videos per checkpoint, score them,
store scores with CIs in the results store and write results.json beside the videos.

[cyan]skyloom eval --suite smoke --ckpt runs/tiny/checkpoints/step-00000000 --ckpt runs/tiny[/]

[cyan]skyloom eval --suite smoke --ckpt runs/tiny --set suite.extractors.text_video=indomain:runs/evaluator[/]

[cyan]skyloom eval --suite physics --ckpt runs/tiny --executor ray[/]

Rerunning the same command resumes (finished videos and scores are kept). Suites live in
configs/eval/suites/ (or pass a YAML path); [bold]--set suite.KEY=VALUE[/] overrides a suite field,
other [bold]--set[/] keys the run's settings (EvalConfig: executor, n_boot, cache_dir, ...).

Subcommands: [cyan]suites[/], [cyan]train-evaluator[/], [cyan]score[/]."""

DbOpt = Annotated[str | None, typer.Option("--db", envvar="SKYLOOM_RESULTS_DB",
                                           help="Results store: SQLAlchemy URL or SQLite path.")]
RunsOpt = Annotated[Path | None, typer.Option("--runs", help="Read every RUN/results.sqlite under this folder.")]
FormatOpt = Annotated[str, typer.Option("--format", "-f", help="table | csv | json | markdown")]


def _split_sets(sets: list[str] | None) -> tuple[list[str], list[str]]:
    run, suite = [], []
    for s in sets or []:
        (suite if s.startswith("suite.") else run).append(s.removeprefix("suite."))
    return run, suite


def register(app: typer.Typer) -> None:
    eval_app = typer.Typer(help=EVAL_HELP, rich_markup_mode="rich", invoke_without_command=True)

    @eval_app.callback(invoke_without_command=True)
    def eval_main(
        ctx: typer.Context,
        suite: Annotated[str | None, typer.Option("--suite", help="Suite name (configs/eval/suites) or YAML path.")] = None,
        ckpt: Annotated[list[str] | None, typer.Option("--ckpt", help="Checkpoint folder or run (-> latest); repeatable.")] = None,
        db: DbOpt = None,
        out: Annotated[Path | None, typer.Option("--out", "-o", help="Output folder (default: RUN/eval of each checkpoint).")] = None,
        executor: Annotated[str | None, typer.Option("--executor", help="auto (default: Ray actors for 2+ checkpoints) | local | ray.")] = None,
        ray_address: RayAddressOpt = None,
        preset: Annotated[str | None, typer.Option("--preset", help="EvalConfig preset in configs/eval/.")] = None,
        sets: SetOpt = None,
        as_json: Annotated[bool, typer.Option("--json", help="Print the summary as JSON.")] = False,
        max_failures: MaxFailuresOpt = None,
    ) -> None:
        if ctx.invoked_subcommand is not None:
            return
        if not suite or not ckpt:
            fail("pass --suite NAME and at least one --ckpt PATH (or a subcommand; see 'skyloom eval --help')")
        from skyloom.cli_common import load_config, progress, stage_timer
        from skyloom.errors import UserError
        from skyloom.eval.runner import EvalConfig, run_eval

        for c in ckpt:
            existing_path(c, "--ckpt")
        run_sets, suite_sets = _split_sets(sets)
        cfg = load_config(EvalConfig, "eval", preset, run_sets)
        extra: dict[str, Any] = {"suite": suite, "checkpoints": tuple(ckpt), "suite_overrides": tuple(suite_sets)}
        if db:
            extra["db"] = db
        if out:
            extra["out"] = str(out)
        if executor:
            extra["executor"] = executor
        if ray_address:
            extra["ray_address"], extra["executor"] = ray_address, "ray"
        import dataclasses

        cfg = dataclasses.replace(cfg, **extra)
        with stage_timer(f"eval {suite}"):
            with progress() as bars:
                tasks: dict[tuple[str, str], Any] = {}

                def on_progress(name: str, stage: str, done: int, total: int) -> None:
                    key = (name, stage)
                    if key not in tasks:
                        unit = "videos generated" if stage == "generate" else "metrics scored"
                        tasks[key] = bars.add_task(f"{name}: {unit}", total=total)
                    bars.update(tasks[key], completed=done, total=total)

                try:
                    res = run_eval(cfg, on_progress=on_progress)
                except ValueError as e:  # no checkpoint, the same one twice, an unknown executor
                    if isinstance(e, UserError):
                        raise
                    fail(str(e))
            if as_json:
                print(json.dumps(dataclasses.asdict(res), indent=2, default=str))
            else:
                _print_summary(res)
            _check_evals(res, max_failures)  # a failed evaluation: ✗ and exit 2 with its reasons

    @eval_app.command("suites")
    def suites_cmd(name: Annotated[str | None, typer.Argument(help="Show (and validate) one suite.")] = None) -> None:
        """List the evaluation suites, or show one suite's items and metrics (validated)."""
        from rich.table import Table

        from skyloom.eval.suites import list_suites, load_suite

        names = [name] if name else list_suites()
        t = Table(title="evaluation suites")
        for c in ("suite", "version", "items", "physics scenes", "metrics", "primary"):
            t.add_column(c)
        for n in names:
            s = load_suite(n)
            t.add_row(s.name, s.version_tag, str(len(s.items())), str(s.physics.num_scenes),
                      ", ".join(m.key for m in s.metrics), s.primary)
        data_console.print(t)

    @eval_app.command("train-evaluator")
    def train_evaluator_cmd(
        corpus: Annotated[Path, typer.Argument(help="Captioned corpus to train on.")],
        out: Annotated[Path, typer.Option("--out", "-o", help="Folder for the evaluator (config.json, model.safetensors).")],
        preset: Annotated[str | None, typer.Option("--preset", help="EvaluatorConfig preset in configs/eval/.")] = None,
        sets: SetOpt = None,
    ) -> None:
        """Train a small video-text contrastive model (open_clip towers, random init) on a corpus's
        clips and captions, on CPU in minutes. Use it as an extractor: [cyan]indomain:OUT[/]."""
        from skyloom.eval.evaluator import EvaluatorConfig, train_evaluator
        from skyloom.cli_common import load_config, stage_timer

        from skyloom.corpus import Corpus

        Corpus(corpus)  # a clear error before the towers are built
        cfg = load_config(EvaluatorConfig, "eval", preset, sets)
        with stage_timer("train in-domain evaluator"):
            res = train_evaluator(str(corpus), str(out), cfg)
        console.print(f"evaluator written to [bold]{res['path']}[/] ({res['train_clips']} clips, "
                      f"held-out caption ranking accuracy {res.get('heldout_accuracy', float('nan')):.2f}); "
                      f"use it with [cyan]--set suite.extractors.text_video=indomain:{res['path']}[/]")

    metrics_cli.register(eval_app)
    app.add_typer(eval_app, name="eval")

    @app.command("leaderboard")
    def leaderboard_cmd(
        suite: Annotated[str | None, typer.Option("--suite", help="Only this suite (default: every suite).")] = None,
        db: DbOpt = None,
        runs: RunsOpt = None,
        metric: Annotated[str | None, typer.Option("--metric", "-m", help="Rank by this metric (default: the suite's primary).")] = None,
        suite_version: Annotated[str | None, typer.Option("--suite-version", help="Rank this suite version (default: the latest evaluated).")] = None,
        fmt: FormatOpt = "table",
    ) -> None:
        """Rank evaluated checkpoints per suite; entries tied within noise share a tie group.
        Only evaluations of the same suite version (declared version + content hash) are ranked together."""
        from skyloom.eval.stats import leaderboard

        _check_format(fmt)
        store = _open(db, runs)
        suites = [suite] if suite else sorted({e["suite"] for e in store.evals()})
        try:
            boards = {s: leaderboard(store, s, metric, suite_version=suite_version) for s in suites}
        except ValueError as e:
            fail(str(e))
        if not any(boards.values()):
            fail(f"no finished evaluations{' of suite ' + repr(suite) if suite else ''} in {store.url}")
        _emit_leaderboards(boards, fmt)

    @app.command("compare")
    def compare_cmd(
        a: Annotated[str, typer.Argument(help="Baseline: eval id, checkpoint path, run, or name like run/step-00000100.")],
        b: Annotated[str, typer.Argument(help="Candidate, same forms as A.")],
        suite: Annotated[str | None, typer.Option("--suite", help="Suite (needed when A/B were evaluated on several).")] = None,
        metric: Annotated[list[str] | None, typer.Option("--metric", "-m", help="Only these metrics (repeatable).")] = None,
        db: DbOpt = None,
        runs: RunsOpt = None,
        fmt: FormatOpt = "table",
    ) -> None:
        """Paired per-item comparison of B against A (same prompts and seeds): difference B - A,
        bootstrap CI, sign-flip permutation p-value, and which is better per metric."""
        from skyloom.eval.stats import compare_all

        _check_format(fmt)
        store = _open(db, runs, near=[a, b])
        try:
            ea, eb = store.resolve_eval(a, suite), store.resolve_eval(b, suite)
            rows = [c.to_dict() for c in compare_all(store, ea, eb, metric)]
        except ValueError as e:
            fail(str(e))
        na, nb = store.get_eval(ea)["checkpoint_name"], store.get_eval(eb)["checkpoint_name"]
        for r in rows:
            r["a"], r["b"] = na, nb
            r["diff [CI]"] = f"{_fmt(r['diff'])} [{_fmt(r['ci_low'])}, {_fmt(r['ci_high'])}]"
            r["dir"] = "↑" if r["higher_is_better"] else "↓"
        if fmt == "table":
            cols = ["metric", "dir", "mean_a", "mean_b", "diff [CI]", "p_value", "n", "better"]
            title = f"compare A={na} -> B={nb} (difference B - A, paired by prompt and seed)"
        else:
            cols = ["metric", "a", "b", "mean_a", "mean_b", "diff", "ci_low", "ci_high", "p_value", "n", "better",
                    "higher_is_better", "extractor"]
            title = f"compare {ea} -> {eb}"
        _emit(rows, cols, fmt, title=title)


def _check_evals(res: Any, max_failures: int | None) -> None:
    """Exit 2 with the reasons when an evaluation failed or has more failures than allowed."""
    from skyloom.eval.store import ResultsStore
    from skyloom.errors import JobFailedError

    bad = [e for e in res.evals if e.status == "failed"
           or (max_failures is not None and e.failures > max_failures)]
    if not bad:
        return
    store = ResultsStore(res.db)
    lines = []
    for e in bad:
        reasons = "; ".join(f"{f['item_id']} ({f['stage']}): {f['reason']}" for f in store.failures(e.eval_id)[:3])
        what = "failed" if e.status == "failed" else f"{e.failures} failures > --max-failures {max_failures}"
        lines.append(f"{e.checkpoint_name} {what}: {reasons or 'no reason recorded'}")
    raise JobFailedError(f"evaluation of {len(bad)} checkpoint(s) failed: " + " | ".join(lines)
                         + f" (details in {bad[0].results_path})")


def _check_format(fmt: str) -> None:
    if fmt not in FORMATS:
        fail(f"--format {fmt!r} is not one of {', '.join(FORMATS)}")


def _open(db: str | None, runs: Path | None, near: list[str] | None = None):
    """The store given by --db, the merged stores of --runs, or the run of a checkpoint argument."""
    from skyloom.eval.store import ResultsStore
    from skyloom.rundir import find_runs, run_of_checkpoint

    if db:
        return ResultsStore(db)
    if runs is not None:
        stores = [r.root / "results.sqlite" for r in find_runs(runs) if (r.root / "results.sqlite").exists()]
        if (runs / "results.sqlite").exists():
            stores.append(runs / "results.sqlite")
        if not stores:
            fail(f"no results.sqlite under {runs}")
        return ResultsStore.merged(stores)
    for ref in near or []:
        if Path(ref).exists():
            run = run_of_checkpoint(ref)
            if run is not None and (run.root / "results.sqlite").exists():
                return ResultsStore(run.root / "results.sqlite")
    fail("no results store: pass --db URL_OR_PATH or --runs DIR (or set SKYLOOM_RESULTS_DB)")


def _fmt(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:.4g}"
    return "" if v is None else str(v)


def _emit(rows: list[dict[str, Any]], cols: list[str], fmt: str, title: str = "") -> None:
    if fmt == "json":
        print(json.dumps(rows, indent=2, default=str))
    elif fmt == "csv":
        import csv
        import sys

        w = csv.DictWriter(sys.stdout, fieldnames=cols, extrasaction="ignore")
        w.writeheader()
        w.writerows(rows)
    elif fmt == "markdown":
        if title:
            print(f"### {title}\n")
        print("| " + " | ".join(cols) + " |")
        print("|" + "|".join("---" for _ in cols) + "|")
        for r in rows:
            print("| " + " | ".join(_fmt(r.get(c)) for c in cols) + " |")
        print()
    else:
        from rich.table import Table

        t = Table(title=title)
        for c in cols:
            t.add_column(c, overflow="fold")
        for r in rows:
            t.add_row(*(_fmt(r.get(c)) for c in cols))
        data_console.print(t)


def _emit_leaderboards(boards: dict[str, list[dict[str, Any]]], fmt: str) -> None:
    if fmt == "json":
        print(json.dumps(boards, indent=2, default=str))
        return
    for suite, rows in boards.items():
        if not rows:
            continue
        metrics = sorted({m for r in rows for m in r["scores"]})
        flat = []
        for r in rows:
            d = {k: v for k, v in r.items() if k != "scores"}
            d["ci"] = f"[{_fmt(r['ci_low'])}, {_fmt(r['ci_high'])}]" if r["ci_low"] is not None else ""
            d.update({f"{m}": r["scores"].get(m) for m in metrics if m != r["metric"]})
            flat.append(d)
        primary = rows[0]["metric"]
        arrow = "↑" if rows[0]["higher_is_better"] else "↓"
        if fmt == "table":  # narrow: the primary metric with its CI, the others folded into one column
            for d, r in zip(flat, rows):
                d["tie"] = d["tie_group"]
                d[f"{primary} [CI]"] = f"{_fmt(r['value'])} {d['ci']}"
                d["other metrics"] = "  ".join(f"{m}={_fmt(v)}" for m, v in r["scores"].items() if m != primary)
            _emit(flat, ["rank", "tie", "checkpoint_name", f"{primary} [CI]", "n", "failures", "other metrics"], fmt,
                  title=f"{suite} v{rows[0]['suite_version']}: ranked by {primary} {arrow} (rows sharing 'tie' are "
                        "within noise)")
            continue
        cols = ["rank", "tie_group", "checkpoint_name", "step", "value", "ci", "n"] + \
               [m for m in metrics if m != primary] + ["failures", "eval_id"]
        if fmt == "csv":
            cols = ["suite", "metric"] + cols
        for d in flat:
            d["suite"] = suite
        _emit(flat, cols, fmt, title=f"{suite} v{rows[0]['suite_version']}: ranked by {primary} {arrow} "
                                     "(ties within noise share tie_group)")


def _print_summary(res: Any) -> None:
    """One column per checkpoint, one row per field/metric (narrow terminals stay readable)."""
    from rich.table import Table

    t = Table(title=f"suite {res.suite} -> {res.db}")
    t.add_column("")
    for e in res.evals:
        t.add_column(e.checkpoint_name, overflow="fold")
    t.add_row("status", *(e.status for e in res.evals))
    t.add_row("generated", *(str(e.generated) for e in res.evals))
    t.add_row("failures", *(str(e.failures) for e in res.evals))
    for m in sorted({m for e in res.evals for m in e.scores}):
        t.add_row(m, *(_fmt(e.scores.get(m)) for e in res.evals))
    data_console.print(t)
    cs = res.cache_stats
    console.print(f"feature cache: {cs.get('hits', 0)} hits, {cs.get('encoded', 0)} encoded "
                  f"(reference: {cs.get('reference_encoded', 0)} encoded)")
    for e in res.evals:
        console.print(f"results: {e.results_path}")
