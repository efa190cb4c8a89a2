"""``skyloom dashboard`` (serve the web app) and ``skyloom report`` (one static HTML file)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

RunsOpt = Annotated[list[Path], typer.Option(
    "--runs", help="Folder of run directories (or one run); searched 3 levels deep. Repeatable.")]
DbOpt = Annotated[str | None, typer.Option(
    "--db", envvar="SKYLOOM_RESULTS_DB",
    help="Results store: SQLAlchemy URL or SQLite path (default: each run's results.sqlite).")]
CorpusOpt = Annotated[list[Path] | None, typer.Option("--corpus", help="Corpus directory to browse. Repeatable.")]
MaxClipsOpt = Annotated[int, typer.Option(help="Clip rows listed per corpus (the charts cover every clip).")]


def _check_inputs(runs: list[Path], corpus: list[Path] | None, db: str | None = None) -> None:
    """Every --runs and --corpus folder and the --db file must exist (a typo is an error, not an empty
    dashboard, and reading never creates a database)."""
    from skyloom.cli_common import existing_path

    for r in runs:
        existing_path(r, "--runs folder")
    for c in corpus or []:
        existing_path(c, "--corpus folder")
    if db:
        from skyloom.eval.results.store import StoreError, sqlite_file

        f = sqlite_file(db)
        if f is not None and not f.is_file():
            raise StoreError(f"results store (--db / SKYLOOM_RESULTS_DB) {db} does not exist")


def register(app: typer.Typer) -> None:
    """Add the ``dashboard`` and ``report`` commands to the ``skyloom`` app."""

    @app.command("dashboard")
    def dashboard_cmd(runs: RunsOpt, db: DbOpt = None, corpus: CorpusOpt = None,
                      host: Annotated[str, typer.Option(
                          help="Interface to bind (default: this machine only).")] = "127.0.0.1",
                      port: Annotated[int, typer.Option(help="Port (0: any free port).")] = 8765,
                      max_clips: MaxClipsOpt = 5000,
                      allow_host: Annotated[list[str] | None, typer.Option(
                          "--allow-host", help="Also answer requests for this host name (Host header); repeatable. "
                          "Default: localhost, 127.0.0.1, ::1 and the --host address. '*': any name.")] = None,
                      cache_dir: Annotated[Path | None, typer.Option(
                          help="Where simulator videos and prompt-box samples are cached "
                          "(default $SKYLOOM_DASHBOARD_CACHE or ~/.cache/skyloom/dashboard).")] = None,
                      device: Annotated[str, typer.Option(help="Device the prompt box samples on.")] = "cpu") -> None:
        """Serve the dashboard: leaderboards, synchronised side-by-side videos, training curves, corpus.

        Read-only: only videos and images inside the --runs and --corpus directories are served;
        the only files written are the dashboard's own cache (--cache-dir).
        Example: [bold]skyloom dashboard --runs runs/ --corpus data/corpus[/]
        """
        from skyloom.cli_common import console, fail
        from skyloom.errors import require_extra

        for module in ("fastapi", "uvicorn"):
            require_extra(module, "dashboard", what="skyloom dashboard")
        from skyloom.dashboards.app import bind, create_app, serve
        from skyloom.dashboards.guard import LOCAL_HOSTS, normalise_hosts
        from skyloom.dashboards.sources import Dashboard

        if not 0 <= port <= 65535:
            fail(f"--port {port}: a port is 0-65535 (0: any free port)")
        from skyloom.cli_common import check_positive

        check_positive({"--max-clips": max_clips})
        _check_inputs(runs, corpus, db)
        hosts = normalise_hosts([*LOCAL_HOSTS, *([] if host in ("0.0.0.0", "::", "") else [host]),
                                 *(allow_host or [])])
        dash = Dashboard(runs, db=db, corpora=corpus or [], max_clips=max_clips, cache_dir=cache_dir, device=device)
        for w in dash.overview()["warnings"]:
            console.print(f"[yellow]warning:[/] {w}")
        try:
            sock = bind(host, port)
        except OSError as e:
            fail(f"cannot listen on {host}:{port} ({e.strerror or e}); pick another --port (0: any free one)")
            return
        h, p = sock.getsockname()[:2]
        if host not in ("127.0.0.1", "localhost", "::1"):
            console.print(f"[yellow]warning:[/] listening on {host}: "
                          "anyone who can reach this machine can read the results")
            if host in ("0.0.0.0", "::") and not allow_host:
                console.print("[yellow]warning:[/] only requests addressed to localhost are answered; add "
                              "--allow-host NAME for each name or address others use to reach this machine")
        console.print(f"skyloom dashboard on [bold]http://{'[' + h + ']' if ':' in h else h}:{p}/[/] (Ctrl-C to stop)")
        try:
            serve(create_app(dash, allow_hosts=hosts), sock)
        finally:
            dash.close()

    @app.command("report")
    def report_cmd(runs: RunsOpt, out: Annotated[Path, typer.Option("--out", "-o", help="HTML file to write.")],
                   db: DbOpt = None, corpus: CorpusOpt = None,
                   max_video_mb: Annotated[float, typer.Option(help="Budget for embedded videos, in MB.")] = 50.0,
                   top_k: Annotated[int, typer.Option(
                       "--top-k", help="Embed the compare view's videos and precompute paired comparisons for the K "
                       "best-ranked entries of each board only (the report says so; the leaderboard lists every "
                       "entry). 0: none.")] = 8,
                   max_paired: Annotated[int | None, typer.Option(
                       help="Precompute paired comparisons among at most this many of the top K entries "
                            "(default: all K).")] = None,
                   max_clips: MaxClipsOpt = 500) -> None:
        """Write the dashboard's views as ONE self-contained HTML file (videos embedded) to share.

        Example: [bold]skyloom report --runs runs/ --corpus data/corpus --out report.html[/]
        """
        from skyloom.cli_common import check_out_apart, check_positive, console, fail
        from skyloom.dashboards.report import build_report
        from skyloom.dashboards.sources import Dashboard

        check_positive({"--max-clips": max_clips})
        check_positive({"--max-video-mb": max_video_mb, "--top-k": top_k, "--max-paired": max_paired}, allow_zero=True)
        _check_inputs(runs, corpus, db)
        if out.is_dir():
            fail(f"--out {out} is a folder; give the HTML file to write (e.g. {out / 'report.html'})")
        if out.suffix.lower() not in (".html", ".htm"):
            fail(f"--out {out} must end in .html (the report is one HTML file)")
        for c in corpus or []:
            check_out_apart(out, {"--corpus folder": c})
        dash = Dashboard(runs, db=db, corpora=corpus or [], max_clips=max_clips)
        try:
            info = build_report(dash, out, max_video_mb=max_video_mb, max_paired_evals=max_paired, top_k=top_k)
        finally:
            dash.close()
        for w in info.warnings:
            console.print(f"[yellow]warning:[/] {w}")
        budget = info.videos_omitted - info.videos_missing
        note = "".join([f", {budget} left out (budget)" if budget else "",
                        f", {info.videos_missing} missing or outside the folders" if info.videos_missing else ""])
        console.print(f"[green]wrote[/] {info.path} ({info.bytes / 2**20:.1f} MB, "
                      f"{info.videos_embedded} video(s) embedded{note}; videos and {info.paired} paired "
                      f"comparison(s) of the top {info.top_k} entries per board)")
