"""``skyloom demo``: the whole pipeline end to end on small defaults, as a user would run it.

The demo is driven by ``configs/demo.yaml``: an ordered list of stages, each one the argument
list of an ordinary ``skyloom`` command (``datagen render``, ``datagen ingest``, ``caption``,
``train``, ``eval``, ``leaderboard``, ``compare``, ``report``). Every stage is printed as the
command line a user would type and then run in this process through the same CLI app, so the
demo exercises exactly the commands of the README, and one Ray instance serves every stage.

Resuming: finished stages are recorded in ``OUT/demo-state.json`` and skipped on a rerun; a
stage that was interrupted is rerun, and every stage command is itself resumable (render,
ingest and caption skip what is done; train resumes from its last checkpoint; eval reuses its
stored items). ``--fresh`` deletes ``OUT`` and starts over.
"""

from __future__ import annotations

import json
import shlex
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any

import typer

from skyloom.cli_common import SetOpt, console, fail
from skyloom.config import ConfigError

DEMO_STATE = "demo-state.json"


@dataclass(frozen=True)
class DemoStage:
    """One stage: a ``skyloom`` command line (placeholders ``{out}``, ``{corpus}``, ``{run}``, ...)."""

    name: str
    args: list[str] = field(default_factory=list)
    description: str = ""


@dataclass(frozen=True)
class DemoConfig:
    """The demo: where it writes and which commands it runs, in order."""

    out: str = "demo-output"
    paths: dict[str, str] = field(default_factory=dict)  # name -> path under out (placeholders)
    stages: list[DemoStage] = field(default_factory=list)


def default_config_path() -> Path:
    from skyloom.config import packaged_configs

    return packaged_configs() / "demo.yaml"


def load_demo_config(path: str | Path | None, sets: list[str] | None = None) -> DemoConfig:
    from skyloom import config

    p = Path(path) if path else default_config_path()
    return config.load(DemoConfig, p, sets or [])


def placeholders(cfg: DemoConfig, out: Path) -> dict[str, str]:
    values = {"out": str(out)}
    for name, rel in cfg.paths.items():
        values[name] = str(out / rel)
    return values


def expand(args: list[str], values: dict[str, str]) -> list[str]:
    """Fill ``{name}`` placeholders in a stage's arguments; an unknown one is a clear error."""
    out = []
    for a in args:
        try:
            out.append(a.format(**values))
        except KeyError as e:
            raise ConfigError(f"demo stage argument {a!r} uses unknown placeholder {e}; "
                             f"known: {', '.join(sorted(values))}") from None
    return out


def _load_state(out: Path) -> dict[str, Any]:
    p = out / DEMO_STATE
    if p.exists():
        try:
            return json.loads(p.read_text())
        except json.JSONDecodeError:
            return {}
    return {}


def _save_state(out: Path, state: dict[str, Any]) -> None:
    from skyloom.fsutil import atomic_write_json

    atomic_write_json(out / DEMO_STATE, state)


def run_stage_command(args: list[str]) -> None:
    """Run one ``skyloom`` command in this process; a non-zero exit stops the demo with the same code.

    The command itself has already printed its reason (the root command maps errors to exit codes).
    """
    from skyloom.cli import app

    try:
        # With standalone_mode=False click returns an exit code instead of raising.
        code = app(args, standalone_mode=False)
    except typer.Exit as e:
        code = e.exit_code
    except SystemExit as e:  # click may exit directly
        code = e.code if isinstance(e.code, int) else 1
    if isinstance(code, int) and not isinstance(code, bool) and code:
        console.print(f"[bold red]demo stage failed:[/] `skyloom {shlex.join(args)}` exited with code {code}")
        raise typer.Exit(code)


def run(cfg: DemoConfig, fresh: bool = False, only: list[str] | None = None) -> dict[str, Any]:
    """Run the demo's stages in order; returns ``{"out", "stages": [{name, seconds, skipped}]}``."""
    from skyloom.cli_common import stage_timer

    out = Path(cfg.out)
    if fresh and out.exists():
        console.print(f"[yellow]--fresh[/]: removing {out}")
        shutil.rmtree(out)
    out.mkdir(parents=True, exist_ok=True)
    from skyloom.config import save_resolved

    save_resolved(cfg, out / "demo-config.yaml")
    values = placeholders(cfg, out)
    state = _load_state(out)
    done: dict[str, Any] = state.setdefault("done", {})
    summary = []
    t_all = time.perf_counter()
    names = [s.name for s in cfg.stages]
    if only:
        unknown = sorted(set(only) - set(names))
        if unknown:
            raise ConfigError(f"unknown demo stage(s) {', '.join(unknown)}; stages: {', '.join(names)}")
    for i, stage in enumerate(cfg.stages, 1):
        if only and stage.name not in only:
            continue
        args = expand(stage.args, values)
        title = f"[{i}/{len(cfg.stages)}] {stage.name}" + (f": {stage.description}" if stage.description else "")
        if stage.name in done and not only:
            console.print(f"[dim]skip {title} (done in a previous run, {done[stage.name]['seconds']:.1f} s; "
                          f"--fresh starts over)[/]")
            summary.append({"name": stage.name, "seconds": 0.0, "skipped": True})
            continue
        with stage_timer(title) as info:
            console.print(f"[bold]$ skyloom {shlex.join(args)}[/]")
            run_stage_command(args)
        done[stage.name] = {"seconds": round(info["seconds"], 2), "finished_at": time.time()}
        _save_state(out, state)
        summary.append({"name": stage.name, "seconds": info["seconds"], "skipped": False})
    result = {"out": str(out), "seconds": time.perf_counter() - t_all, "stages": summary, "paths": values}
    _print_summary(result)
    return result


def _print_summary(result: dict[str, Any]) -> None:
    from rich.table import Table

    t = Table(title="skyloom demo: summary")
    t.add_column("stage")
    t.add_column("seconds", justify="right")
    for s in result["stages"]:
        t.add_row(s["name"], "skipped (done)" if s["skipped"] else f"{s['seconds']:.1f}")
    t.add_row("[bold]total", f"[bold]{result['seconds']:.1f}")
    console.print(t)
    p = result["paths"]
    lines = [f"outputs in {result['out']}/"]
    for key, label in (("corpus", "corpus"), ("run", "training run"), ("report", "static report")):
        if key in p:
            lines.append(f"  {label:14s} {p[key]}")
    if "runs" in p or "out" in p:
        runs = p.get("runs", p["out"])
        lines.append(f"open the dashboard:  skyloom dashboard --runs {runs}"
                     + (f" --corpus {p['corpus']}" if "corpus" in p else ""))
    console.print("\n".join(lines))


def register(app: typer.Typer) -> None:
    @app.command("demo")
    def demo(
        config: Annotated[Path | None, typer.Option("--config", "-c",
                                                    help="Demo YAML (default configs/demo.yaml).")] = None,
        fresh: Annotated[bool, typer.Option("--fresh", help="Delete the output folder and start over.")] = False,
        out: Annotated[Path | None, typer.Option(
            "--out", "-o", help="Output folder (default from the config: demo-output).")] = None,
        stage: Annotated[list[str] | None, typer.Option("--stage", help="Run only this stage (repeatable), "
                                                        "even if done.")] = None,
        sets: SetOpt = None,
    ) -> None:
        """Run the whole pipeline end to end on small defaults (~15 min on 2 CPU cores).

        Renders a small synthetic corpus, ingests real licensed clips (rejecting the unlicensed),
        captions everything, trains vdit-tiny for a few minutes, evaluates the step-0 and final
        checkpoints on the smoke, colour-motion (and its held-out paraphrases) and physics suites,
        prints the leaderboard and the paired
        comparison, and writes a static HTML report. Rerun to resume; [bold]--fresh[/] starts over.
        """
        from skyloom.config import apply_values

        cfg = apply_values(load_demo_config(config, sets), {"out": out} if out else {})
        if not cfg.stages:
            fail(f"demo config {config or default_config_path()} has no stages")
        run(cfg, fresh=fresh, only=stage)
