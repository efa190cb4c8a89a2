"""``skyloom eval`` (evaluate checkpoints on a suite, train an in-domain evaluator, score videos),
``skyloom leaderboard`` and ``skyloom compare``."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Annotated, Any

import typer

from skyloom.cli_common import MaxFailuresOpt, RayAddressOpt, SetOpt, console, data_console, existing_path, fail
from skyloom.eval.cli import score as metrics_cli

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

Any other model: score a folder of its videos ([cyan]--videos DIR --name NAME[/], the items from
[cyan]skyloom eval export[/]), or a local diffusers pipeline ([cyan]--ckpt diffusers:PATH[/]).
[cyan]--calibrate[/] adds the suite's reference rows (ground truth, frozen, shuffled, noise, ...).

Subcommands: [cyan]suites[/], [cyan]export[/], [cyan]train-evaluator[/], [cyan]score[/]."""

DbOpt = Annotated[str | None, typer.Option("--db", envvar="SKYLOOM_RESULTS_DB",
                                           help="Results store: SQLAlchemy URL or SQLite path.")]
RunsOpt = Annotated[Path | None, typer.Option("--runs", help="Read every RUN/results.sqlite under this folder.")]
FormatOpt = Annotated[str, typer.Option("--format", "-f", help="table | csv | json | markdown")]


def _split_sets(sets: list[str] | None) -> tuple[list[str], list[str]]:
    run: list[str] = []
    suite: list[str] = []
    for s in sets or []:
        (suite if s.startswith("suite.") else run).append(s.removeprefix("suite."))
    return run, suite


def register(app: typer.Typer) -> None:
    eval_app = typer.Typer(help=EVAL_HELP, rich_markup_mode="rich", invoke_without_command=True)

    @eval_app.callback(invoke_without_command=True)
    def eval_main(
        ctx: typer.Context,
        suite: Annotated[str | None, typer.Option("--suite", help="Suite name (configs/eval/suites) "
                                                  "or YAML path.")] = None,
        ckpt: Annotated[list[str] | None, typer.Option("--ckpt", help="Checkpoint folder or run (-> latest); "
                                                       "repeatable.")] = None,
        db: DbOpt = None,
        out: Annotated[Path | None, typer.Option("--out", "-o", help="Output folder "
                                                 "(default: RUN/eval of each checkpoint).")] = None,
        executor: Annotated[str | None, typer.Option(
            "--executor", metavar="auto|local|ray",
            help="auto (default: Ray actors for 2+ checkpoints) | local | ray.")] = None,
        ray_address: RayAddressOpt = None,
        preset: Annotated[str | None, typer.Option("--preset", help="EvalConfig preset in configs/eval/.")] = None,
        sets: SetOpt = None,
        as_json: Annotated[bool, typer.Option("--json", help="Print the summary as JSON.")] = False,
        videos: Annotated[Path | None, typer.Option(
            "--videos", help="Score a folder of <item_id>.mp4 made elsewhere (needs --name).")] = None,
        name: Annotated[str | None, typer.Option(
            "--name", help="Name of the --videos submission on the boards.")] = None,
        meta: Annotated[list[str] | None, typer.Option(
            "--meta", help="Submission metadata key=value (who, model, date, settings); repeatable.")] = None,
        mismatch: Annotated[str, typer.Option(
            "--mismatch", help="Submitted videos of another frame rate/size/length: resize (resample fps, trim, "
            "resize) | refuse.")] = "resize",
        calibrate: Annotated[bool, typer.Option(
            "--calibrate", help="Add the suite's calibration rows "
            "(ground truth, frozen, shuffled, noise, ...).")] = False,
        device: Annotated[str | None, typer.Option(
            "--device", help="Device to generate on (cpu, cuda, cuda:1, ...).")] = None,
        max_failures: MaxFailuresOpt = None,
    ) -> None:
        if ctx.invoked_subcommand is not None:
            return
        if not suite or not (ckpt or videos or calibrate):
            fail("pass --suite NAME and at least one --ckpt PATH, --videos DIR --name NAME or --calibrate "
                 "(or a subcommand)")
        if videos is not None and not name:
            fail("--videos needs --name NAME (the submission's name on the boards)")
        if name and videos is None:
            fail("--name names a --videos submission; pass --videos DIR too")
        _check_eval_flags(ckpt, videos, out, executor, mismatch, max_failures, meta)
        from skyloom.cli_common import load_config, progress, stage_timer
        from skyloom.eval.harness.runner import EvalConfig, run_eval

        for c in ckpt or []:  # a diffusers pipeline is named diffusers:PATH; its folder must exist too
            existing_path(c.removeprefix("diffusers:"), "--ckpt")
        run_sets, suite_sets = _split_sets(sets)
        cfg = load_config(EvalConfig, "eval", preset, run_sets)
        extra: dict[str, Any] = {"suite": suite, "checkpoints": tuple(ckpt or ()), "suite_overrides": tuple(suite_sets)}
        if device:
            extra["device"] = device
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
        results, checks = [], []
        with stage_timer(f"eval {suite}"):
            with progress() as bars:
                tasks: dict[tuple[str, str], Any] = {}

                def on_progress(entry: str, stage: str, done: int, total: int) -> None:
                    key = (entry, stage)
                    if key not in tasks:
                        unit = "videos generated" if stage == "generate" else "metrics scored"
                        tasks[key] = bars.add_task(f"{entry}: {unit}", total=total)
                    bars.update(tasks[key], completed=done, total=total)

                if ckpt:
                    results.append(run_eval(cfg, on_progress=on_progress))
                if videos is not None:
                    from skyloom.eval.harness.submissions import parse_meta, run_submission

                    res, check = run_submission(cfg, videos, name or "", parse_meta(meta or []), mismatch)
                    results.append(res)
                    checks.append(check)
                if calibrate:
                    from skyloom.eval.harness.calibration import run_calibration

                    results.append(run_calibration(cfg))
            res = results[0]
            for r in results[1:]:
                res.evals += r.evals
                res.seconds += r.seconds
            if as_json:
                from skyloom.eval.results.store import safe_url

                doc = dataclasses.asdict(res)
                doc["db"] = safe_url(doc["db"])  # skyloom never prints a database password
                if checks:
                    doc["submission_check"] = checks[0].rows()
                print(json.dumps(doc, indent=2, default=str))
            else:
                for check in checks:
                    _print_check(check)
                _print_summary(res)
            _check_evals(res, max_failures)  # a failed evaluation: ✗ and exit 2 with its reasons

    @eval_app.command("suites")
    def suites_cmd(name: Annotated[str | None, typer.Argument(help="Show (and validate) one suite.")] = None) -> None:
        """List the evaluation suites, or show one suite's items and metrics (validated)."""
        from rich.table import Table

        from skyloom.eval.harness.suites import list_suites, load_suite

        names = [name] if name else list_suites()
        t = Table(title="evaluation suites")
        for c in ("suite", "version", "items", "physics scenes", "metrics", "primary"):
            t.add_column(c)
        for n in names:
            s = load_suite(n)
            t.add_row(s.name, s.version_tag, str(len(s.items())), str(s.physics.num_scenes),
                      ", ".join(m.key for m in s.metrics), s.primary)
        data_console.print(t)

    @eval_app.command("export")
    def export_cmd(
        suite: Annotated[str, typer.Option("--suite", help="Suite name (configs/eval/suites) or YAML path.")],
        out: Annotated[Path, typer.Option("--out", help="Folder for the submitter's kit.")],
        ground_truth: Annotated[bool, typer.Option(
            "--ground-truth", help="Also write the answers (ground_truth/<item_id>.mp4): "
            "for checking a pipeline end to end, never for submitters.")] = False,
        sets: SetOpt = None,
    ) -> None:
        """Write what another system needs to generate the suite's videos: items.jsonl/items.csv (item id,
        task, prompt, seed, category, frames, fps, width, height), the given frames of i2v/extension/physics
        items (PNG + mp4), suite.yaml, manifest.json (content hash) and a README for submitters."""
        from skyloom.eval.harness.submissions import SubmissionError, export_suite
        from skyloom.eval.harness.suites import load_suite

        _, suite_sets = _split_sets(sets)
        s = load_suite(suite, suite_sets)
        if out.is_file():
            fail(f"--out {out} is a file; give a folder for the submitter's kit")
        try:
            man = export_suite(s, out, ground_truth=ground_truth)
        except SubmissionError as e:
            fail(str(e))
        console.print(f"exported suite [bold]{s.name}[/] v{man['suite_version']}: {man['items']} items "
                      f"({', '.join(man['tasks'])})"
                      f"{', ' + str(man['ground_truth']) + ' ground-truth clips' if ground_truth else ''} "
                      f"-> [bold]{out}[/] (README.md says how to submit)")

    @eval_app.command("tiny-diffusers")
    def tiny_diffusers_cmd(
        out: Annotated[Path, typer.Argument(help="Folder to save the pipeline to (save_pretrained).")],
        seed: Annotated[int, typer.Option("--seed", help="Seed of the random weights.")] = 0,
    ) -> None:
        """Save a randomly initialised tiny diffusers WanPipeline (tokenizer built offline): checks
        [cyan]skyloom eval --ckpt diffusers:OUT[/] end to end without downloading any weights. Its videos are noise."""
        from skyloom.eval.harness.diffusers_adapter import make_tiny_pipeline

        try:
            path = make_tiny_pipeline(out, seed=seed)
        except ImportError as e:
            fail(f"{e} (pip install 'skyloom[diffusers]')")
        console.print(f"tiny random WanPipeline saved to [bold]{path}[/]; evaluate it with "
                      f"[cyan]skyloom eval --suite smoke --ckpt diffusers:{path}[/]")

    @eval_app.command("ladder")
    def ladder_cmd(
        suite: Annotated[str, typer.Option("--suite", help="Suite with a physics section.")] = "physics",
        size: Annotated[int | None, typer.Option("--size", help="Render the scenes at SIZE x SIZE instead.")] = None,
        scenes: Annotated[int | None, typer.Option("--scenes", help="Number of probe scenes "
                                                   "(default: the suite's).")] = None,
        seed: Annotated[int | None, typer.Option("--seed", help="Draw the scenes with this seed instead of "
                                                 "the suite's.")] = None,
        fmt: FormatOpt = "table",
    ) -> None:
        """Score truth > perturbed > reversed > frozen > noise continuations of every admitted physics probe
        (and the trajectory ladder): does the suite discriminate? Prints each probe's degenerate gate and the
        draws that were rejected, with the reason. (No model needed; MuJoCo renders the scenes.)"""
        from skyloom.eval.harness.ladder import LADDER, TRAJECTORY_LADDER, suite_ladder
        from skyloom.eval.harness.suites import load_suite

        _check_format(fmt)
        s = load_suite(suite)
        if s.physics.num_scenes <= 0 and not scenes:
            fail(f"suite {suite!r} has no physics scenes")
        res = suite_ladder(s, size=size, num_scenes=scenes, seed=seed)
        if fmt == "json":
            print(json.dumps(res, indent=2, default=str))
            return
        rungs = list(TRAJECTORY_LADDER)
        rows = [{"scene": r["item_id"], "probe": r["probe"], "metric": m,
                 **{k: _fmt(r[m][k]) if k in r[m] else "" for k in rungs}}
                for r in res["scenes"] for m in res["aggregate"]]
        rows += [{"scene": "aggregate", "probe": f"ordered {res['ordered'][m]:.0%}", "metric": m,
                  **{k: _fmt(res["aggregate"][m][k]) if k in res["aggregate"][m] else "" for k in rungs}}
                 for m in res["aggregate"]]
        _emit(rows, ["scene", "probe", "metric", *rungs], fmt, title=f"{suite}: physics ladder ({', '.join(LADDER)})")
        from skyloom.eval.harness.continuations import DEGENERATE

        gate = [{"scene": r["item_id"], "moving cells": str(r["moving_cells"]),
                 "gate": "pass" if r["gate"]["passed"] else "FAIL",
                 "perturbed": _fmt(r["gate"]["terms"]["perturbed"]),
                 **{k: _fmt(r["gate"]["terms"][k]) for k in DEGENERATE}} for r in res["scenes"]]
        _emit(gate, ["scene", "moving cells", "gate", "perturbed", *DEGENERATE], fmt,
              title="degenerate gate (physics_iq terms; each must be below perturbed)")
        draw = res.get("draw") or {}
        rej = [{"draw": r["item_id"], "probe": str(r["probe"]), "reason": r["reason"]}
               for r in draw.get("rejected", [])]
        if rej:
            _emit(rej, ["draw", "probe", "reason"], fmt,
                  title=f"rejected draws ({len(rej)} of {draw.get('draws')}; min moving cells "
                        f"{draw.get('min_moving_cells')})")

    @eval_app.command("train-evaluator")
    def train_evaluator_cmd(
        corpus: Annotated[Path, typer.Argument(help="Captioned corpus to train on.")],
        out: Annotated[Path, typer.Option("--out", "-o", help="Folder for the evaluator "
                                          "(config.json, model.safetensors).")],
        preset: Annotated[str | None, typer.Option("--preset", help="EvaluatorConfig preset in configs/eval/.")] = None,
        sets: SetOpt = None,
    ) -> None:
        """Train a small video-text contrastive model (open_clip towers, random init) on a corpus's
        clips and captions, on CPU in minutes. Use it as an extractor: [cyan]indomain:OUT[/]."""
        from skyloom.cli_common import load_config, stage_timer
        from skyloom.corpus import Corpus
        from skyloom.eval.features.indomain import EvaluatorConfig, train_evaluator

        Corpus(corpus)  # a clear error before the towers are built
        cfg = load_config(EvaluatorConfig, "eval", preset, sets)
        from skyloom.cli_common import check_out_apart, check_positive

        check_positive({k: getattr(cfg, k) for k in ("frames", "size", "steps", "batch_size", "lr", "max_clips")})
        check_out_apart(out, {"corpus": corpus})
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
        metric: Annotated[str | None, typer.Option(
            "--metric", "-m", help="Rank by this metric (default: the suite's primary).")] = None,
        suite_version: Annotated[str | None, typer.Option(
            "--suite-version", help="Rank this suite version (default: the latest evaluated).")] = None,
        fmt: FormatOpt = "table",
    ) -> None:
        """Rank evaluated checkpoints per suite; entries tied within noise share a tie group.
        Only evaluations of the same suite version (declared version + content hash) are ranked together;
        the board names the version it shows and lists the others with their entry counts (pick one with
        --suite-version). Entries that miss items the others scored are listed unranked with their coverage."""
        from skyloom.eval.results.boards import board

        _check_format(fmt)
        store = _open(db, runs)
        suites = [suite] if suite else sorted({e["suite"] for e in store.evals()})
        boards = {s: board(store, s, metric, suite_version=suite_version) for s in suites}
        if not any(b["rows"] for b in boards.values()):
            fail(f"no finished evaluations{' of suite ' + repr(suite) if suite else ''} in {store.url}")
        _emit_leaderboards(boards, fmt)

    @app.command("compare")
    def compare_cmd(
        a: Annotated[str, typer.Argument(help="Baseline: eval id, checkpoint path, run, "
                                         "or name like run/step-00000100.")],
        b: Annotated[str, typer.Argument(help="Candidate, same forms as A.")],
        suite: Annotated[str | None, typer.Option("--suite", help="Suite (needed when A/B were evaluated "
                                                  "on several).")] = None,
        metric: Annotated[list[str] | None, typer.Option("--metric", "-m",
                                                         help="Only these metrics (repeatable).")] = None,
        db: DbOpt = None,
        runs: RunsOpt = None,
        fmt: FormatOpt = "table",
    ) -> None:
        """Paired per-item comparison of B against A (same prompts and seeds): difference B - A, the exact
        sign-flip (or, for FVD/KVD, item-swap permutation) p-value, the CI that inverts it, and the verdict per
        metric: a / b better when p < 0.05, tie, "too few items" (no test could reach 0.05) or no verdict."""
        from skyloom.eval.results.stats import compare_all, suite_versions, verdict_label

        _check_format(fmt)
        store = _open(db, runs, near=[a, b])
        ea, eb = store.resolve_eval(a, suite), store.resolve_eval(b, suite)
        if ea == eb:
            fail(f"A ({a}) and B ({b}) are the same evaluation {ea}: compare two different entries")
        rows = [c.to_dict() for c in compare_all(store, ea, eb, metric)]
        ra, rb = store.get_eval(ea), store.get_eval(eb)
        na, nb = _entry_label(ra), _entry_label(rb)
        va, vb = ra["suite_version"], rb["suite_version"]
        for r in rows:
            r["a"], r["b"] = na, nb
            r["suite_version_a"], r["suite_version_b"] = va, vb
            unbounded = r["verdict"] == "too few items"  # every shift is accepted: the interval is the whole line
            r["diff [CI]"] = (f"{_fmt(r['diff'])} [-inf, inf]" if unbounded else
                              f"{_fmt(r['diff'])} [{_fmt(r['ci_low'])}, {_fmt(r['ci_high'])}]"
                              if r["ci_low"] is not None else f"{_fmt(r['diff'])} (no test)")
            r["dir"] = "↑" if r["higher_is_better"] else "↓"
            r["verdict"] = verdict_label(r["verdict"], na, nb)
        if fmt == "table":
            cols = ["metric", "dir", "mean_a", "mean_b", "diff [CI]", "p_value", "n", "verdict"]
            title = (f"compare A={na} -> B={nb} (difference B - A, paired by prompt and seed; suite {ra['suite']} "
                     + (f"v{va})" if va == vb else f"A v{va}, B v{vb}: different suite versions)"))
        else:
            cols = ["metric", "a", "b", "suite_version_a", "suite_version_b", "mean_a", "mean_b", "diff", "ci_low",
                    "ci_high", "p_value", "alpha", "n", "better", "verdict", "method", "higher_is_better", "extractor"]
            title = f"compare {ea} -> {eb}"
        _emit(rows, cols, fmt, title=title)
        if fmt in ("table", "markdown"):
            others = [f"v{v['version']} ({v['entries']} entries)" for v in suite_versions(store, ra["suite"])
                      if v["version"] not in (va, vb)]
            print(f"verdict: significant iff p < alpha = {rows[0]['alpha']:g} per metric (no correction across "
                  f"metrics){'; other versions of ' + ra['suite'] + ': ' + ', '.join(others) if others else ''}"
                  if rows else "")


def _check_eval_flags(ckpt: list[str] | None, videos: Path | None, out: Path | None, executor: str | None,
                      mismatch: str, max_failures: int | None, meta: list[str] | None) -> None:
    """Flags that contradict each other or cannot work, refused before any suite is loaded."""
    from skyloom.cli_common import check_out_apart, check_positive

    if videos is not None and ckpt:
        fail(f"--videos {videos} scores a folder made elsewhere and --ckpt {ckpt[0]} generates with a checkpoint: "
             "give one of them per command")
    if executor is not None and executor not in ("auto", "local", "ray"):
        fail(f"--executor {executor!r} is not one of: auto, local, ray")
    if mismatch not in ("resize", "refuse"):
        fail(f"--mismatch {mismatch!r} is not one of: resize, refuse")
    check_positive({"--max-failures": max_failures}, allow_zero=True)
    if videos is not None:
        existing_path(videos, "--videos folder")
        if not videos.is_dir():
            fail(f"--videos {videos} is not a folder of <item_id>.mp4 files")
        if not any(videos.glob("*.mp4")):
            fail(f"--videos {videos} holds no .mp4 file (skyloom eval export says which <item_id>.mp4 to make)")
    from skyloom.eval.harness.submissions import parse_meta

    parse_meta(meta or [])
    if out is not None:
        check_out_apart(out, {"--videos folder": videos})
        for c in ckpt or []:
            check_out_apart(out, {"--ckpt": c.removeprefix("diffusers:")})


def _check_evals(res: Any, max_failures: int | None) -> None:
    """Exit 2 with the reasons when an evaluation failed or has more failures than allowed."""
    from skyloom.errors import JobFailedError
    from skyloom.eval.results.store import ResultsStore

    bad = [e for e in res.evals if e.status == "failed"
           or (max_failures is not None and e.failures > max_failures)]
    if not bad:
        return
    store = ResultsStore(res.db)
    lines = []
    for e in bad:
        fails = sorted(store.failures(e.eval_id), key=lambda f: f["item_id"] != "*")  # whole-metric failures first
        reasons = "; ".join(f"{f['item_id']} ({f['stage']}): {f['reason']}" for f in fails[:3])
        what = "failed" if e.status == "failed" else f"{e.failures} failures > --max-failures {max_failures}"
        lines.append(f"{e.checkpoint_name} {what}: {reasons or 'no reason recorded'}")
    raise JobFailedError(f"evaluation of {len(bad)} checkpoint(s) failed: " + " | ".join(lines)
                         + f" (details in {bad[0].results_path})")


def _check_format(fmt: str) -> None:
    if fmt not in FORMATS:
        fail(f"--format {fmt!r} is not one of {', '.join(FORMATS)}")


def _open(db: str | None, runs: Path | None, near: list[str] | None = None):
    """The store given by --db, the merged stores of --runs, or the run of a checkpoint argument."""
    from skyloom.eval.results.store import ResultsStore, open_existing
    from skyloom.rundir import locate_store

    if runs is not None and not db:
        existing_path(runs, "--runs folder")
    found = locate_store(db, runs=runs, near=near or (), existing=True)
    if found and runs is not None and not db:
        return ResultsStore.merged(found)  # one leaderboard across the runs
    if found:  # reading: a --db (or $SKYLOOM_RESULTS_DB) file that does not exist is an error, never created
        return open_existing(found[0], "results store (--db / SKYLOOM_RESULTS_DB)")
    if runs is not None and not db:
        fail(f"no results.sqlite under {runs}")
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
        from rich.markup import escape
        from rich.table import Table

        t = Table(title=escape(title))
        for c in cols:
            t.add_column(escape(c), overflow="fold")
        for r in rows:  # names such as "noise [calibration]" are text, not rich markup
            t.add_row(*(escape(_fmt(r.get(c))) for c in cols))
        data_console.print(t)


KIND_LABELS = {"model": "", "submission": "submission", "calibration": "calibration"}


def _entry_label(r: dict[str, Any]) -> str:
    """An entry's name with its kind: calibration rows and submissions are never mistaken for checkpoints."""
    name = r.get("checkpoint_name") or r.get("eval_id") or ""
    kind = KIND_LABELS.get(r.get("kind") or "model", "")
    return f"{name} [{kind}]" if kind else name


def _emit_leaderboards(boards: dict[str, dict[str, Any]], fmt: str) -> None:
    if fmt == "json":
        print(json.dumps(boards, indent=2, default=str))
        return
    for suite, bd in boards.items():
        rows = bd["rows"]
        if not rows:
            continue
        metrics = sorted({m for r in rows for m in r["scores"]})
        total = bool(bd.get("weights"))
        flat = []
        for r in rows:
            d = {k: v for k, v in r.items() if k not in ("scores", "meta", "breakdown")}
            d["entry"] = _entry_label(r)
            d["ci"] = f"[{_fmt(r['ci_low'])}, {_fmt(r['ci_high'])}]" if r["ci_low"] is not None else ""
            d.update({f"{m}": r["scores"].get(m) for m in metrics if m != r["metric"]})
            if total:
                b = r.get("breakdown") or {}
                d["total"] = b.get("total")
                d.update({f"cat:{c}": (b.get("categories") or {}).get(c) for c in bd.get("categories", [])})
            flat.append(d)
        primary = rows[0]["metric"]
        arrow = "↑" if rows[0]["higher_is_better"] else "↓"
        flagged = bd.get("flagged") or []
        cats = [f"cat:{c}" for c in bd.get("categories", [])] if total else []
        if fmt == "table":  # narrow: the primary metric with its CI, the others folded into one column
            for d, r in zip(flat, rows):
                d["tie"] = d["tie_group"]
                d[f"{primary} [CI]"] = f"{_fmt(r['value'])} {d['ci']}"
                d["other metrics"] = "  ".join(f"{m}{'(!)' if m in flagged else ''}={_fmt(v)}"
                                               for m, v in r["scores"].items() if m != primary)
            beside = ["dynamic_degree"] if "dynamic_degree" in metrics and primary != "dynamic_degree" else []
            for d, r in zip(flat, rows):  # motion beside a temporal ranking: a static video cannot top it unnoticed
                for m in beside:
                    d[m] = _fmt(r["scores"].get(m))
            for d, r in zip(flat, rows):
                d["rank"] = "unranked" if r.get("partial") else r["rank"]
                d["n"] = r["coverage"]
            cols = ["rank", "tie", "entry", f"{primary} [CI]", *beside] + (["total"] if total else []) + \
                ["n", "failures", "other metrics"]
            _emit(flat, cols, fmt,
                  title=f"{suite} v{rows[0]['suite_version']}: ranked by {primary} {arrow} (rows sharing 'tie' are "
                        "within noise; [calibration] rows are references, not ranked)")
        else:
            cols = ["rank", "tie_group", "entry", "kind", "step", "value", "ci", "n", "coverage", "partial"] + \
                (["total"] if total else []) + cats + [m for m in metrics if m != primary] + \
                ["failures", "suite_version", "eval_id"]
            if fmt == "csv":
                cols = ["suite", "metric"] + cols
            for d in flat:
                d["suite"] = suite
            _emit(flat, cols, fmt, title=f"{suite} v{rows[0]['suite_version']}: ranked by {primary} {arrow} "
                                         "(ties within noise share tie_group; calibration rows are not ranked)")
        _print_board_notes(bd, fmt)


def _print_board_notes(bd: dict[str, Any], fmt: str) -> None:
    """Flags (calibration rows out of order) and the breakdown's definition, under the table."""
    if fmt == "csv":
        for m in bd.get("flagged") or []:
            logger.warning("metric %s flagged: %s", m, "; ".join(bd["flags"][m]["violations"]))
        for t in bd.get("total_flags") or []:
            logger.warning("total flagged: %s", t)
        return
    lines = [f"suite {bd['suite']} version {bd['suite_version']}"
             + (f"; other versions: {others} (pick one with --suite-version)" if (others := ", ".join(
                 f"{v['version']} ({v['entries']} entries)" for v in bd.get("versions") or []
                 if v["version"] != bd["suite_version"])) else "; no other version")]
    if bd.get("correction"):
        lines.append(bd["correction"])
    for t in bd.get("total_flags") or []:
        lines.append(f"FLAGGED total: {t}; the weighted total does not put real data on top here")
    for m in bd.get("flagged") or []:
        lines.append(f"FLAGGED {m}: calibration rows out of order ({'; '.join(bd['flags'][m]['violations'])}); "
                     "this metric does not separate the ground truth from the baselines here")
    if bd.get("weights"):
        w = ", ".join(f"{m}×{v:g}" for m, v in bd["weights"].items())
        how = (f"normalised between calibration rows {bd['low']} (0) and {bd['high']} (1)"
               if bd.get("normalise") == "calibration" else "raw values")
        lines.append(f"total = weighted mean of {w}, {how}; per category from the items of each category")
    if bd.get("note"):
        lines.append(bd["note"])
    for line in lines:
        print(f"- {line}" if fmt == "markdown" else line)
    if lines and fmt == "markdown":
        print()


def _print_check(check: Any) -> None:
    """The submission folder's problems by item (stdout: part of the command's result)."""
    rows = check.rows()
    if not rows:
        console.print(f"submission: all {len(check.videos)} videos match the suite")
        return
    _emit(rows, ["item_id", "status", "what"], "table",
          title=f"submission: {len(check.videos)} video(s) scored, {len(check.problems)} item(s) failed, "
                f"{len(check.notes)} conformed, {len(check.extra)} extra file(s)")


def _print_summary(res: Any) -> None:
    """One column per checkpoint, one row per field/metric (narrow terminals stay readable)."""
    from rich.table import Table

    from skyloom.eval.results.store import safe_url

    t = Table(title=f"suite {res.suite} -> {safe_url(res.db)}")
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
