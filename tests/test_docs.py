"""The shell commands of README.md and docs/*.md against the real command line (issue 27: docs that run).

Every fenced ``bash``/``sh``/``shell``/``console`` block is read; continuation lines are joined,
comments dropped, ``$ `` prompts of console blocks stripped. Each ``skyloom`` command is then

1. **parsed** by the installed command tree itself (click's own ``make_context``: the subcommand exists,
   every option is one it takes, every value has its type, required arguments are there), in-process,
   so a renamed flag or a documented option no command takes fails here; and
2. **run**, in a temporary folder, when it is one of the commands that need no corpus, run, GPU or server
   (``--help``, listings, ``caption upsample``, ``datagen demo-sources``, ...): exit 0 and data on stdout.

Commands that need a GPU, a server, a cluster, the network or weights that are not shipped are listed by
name (``NEEDS``) and skipped by the run step, and the test prints that list. The heavy stages (render,
train, eval) are run end to end by tests/test_demo.py, whose stages are these same commands at small sizes.
"""

from __future__ import annotations

import re
import shlex
import subprocess
from pathlib import Path

import pytest

from tests.core.test_cli_contract import ENV, SKYLOOM

ROOT = Path(__file__).resolve().parents[1]
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
FENCE = re.compile(r"^```(?P<lang>[A-Za-z]*)\s*$")
SHELL_LANGS = {"bash", "sh", "shell", "console"}

# What a command needs that a test machine has not: it is parsed, never run, and listed in the output.
NEEDS = {
    "a GPU": ("--gpu", "--device cuda", "cuda"),
    "a Ray cluster": ("--ray-address", "ray://"),
    "a server (dashboard, VLM or Unreal Engine)": ("skyloom dashboard", "vlm-endpoint", "renderer=unrealcv",
                                                    "base_url="),
    "a file of your own": ("specs.jsonl",),
    "weights or footage that are not shipped": ("/models/", "/data/footage", "/shared/", "wan-1.3b", "path/to/",
                                                "my_pkg", "i3d_pretrained", "open_clip_vit"),
}
# Commands run in a temporary folder per file, in the file's order (a later one may read what an earlier one
# made): listings and help, and the corpus stages at small sizes (SMALL). The model stages (train, sample, eval)
# are left to tests/test_demo.py, which runs them at small sizes.
RUNNABLE = (
    ("skyloom", "--help"), ("skyloom", "plugins"), ("skyloom", "eval", "suites"), ("skyloom", "caption", "upsample"),
    ("skyloom", "datagen", "demo-sources"), ("skyloom", "eval", "export"), ("skyloom", "datagen", "render"),
    ("skyloom", "datagen", "ingest"), ("skyloom", "datagen", "takedown"), ("skyloom", "corpus", "info"),
    ("skyloom", "corpus", "validate"), ("skyloom", "caption", "verify"), ("skyloom", "caption", "stats"),
)
# What a file's commands take as given, made first in its folder (at the README's small size).
PRELUDE = {"captioning.md": [["datagen", "render", "--preset", "balls-bounce", "-n", "2", "--out", "data/corpus"]]}
SMALL = {"--num-scenes": "2", "-n": "2"}  # a render of 2 scenes shows the command works as one of 10,000 would


def small(args: list[str]) -> list[str]:
    """The command at a test's size: the values of SMALL's options replaced."""
    return [SMALL[args[i - 1]] if i and args[i - 1] in SMALL else a for i, a in enumerate(args)]


def _runnable(args: list[str]) -> bool:
    if args[:2] == ["datagen", "ingest"] and "ingest-demo" not in args:
        return False  # your own sources.csv: not in the folder
    if args[:1] == ["caption"] and len(args) > 1 and (args[1] == "run" or "/" in args[1]):
        return True  # `skyloom caption CORPUS` is `skyloom caption run CORPUS`
    return any(tuple(["skyloom", *args[:len(r) - 1]]) == r for r in RUNNABLE)


def shell_commands(path: Path) -> list[tuple[int, str]]:
    """``(line, command)`` of every command in the file's fenced shell blocks, in order."""
    out: list[tuple[int, str]] = []
    lang, pending, start = None, "", 0
    for n, line in enumerate(path.read_text().splitlines(), 1):
        m = FENCE.match(line.strip())
        if m is not None:
            lang = (m["lang"].lower() or "text") if lang is None else None
            pending = ""
            continue
        if lang not in SHELL_LANGS:
            continue
        text = line.rstrip()
        if lang == "console":
            if not (text.startswith("$ ") or pending):
                continue  # output lines of a console block
            text = text.removeprefix("$ ")
        if not pending:
            start = n
        if text.endswith("\\"):
            pending += text[:-1] + " "
            continue
        cmd = (pending + text).strip()
        pending = ""
        if cmd and not cmd.startswith("#"):
            out.append((start, cmd))
    return out


def skyloom_args(cmd: str) -> list[list[str]]:
    """The argument lists of every ``skyloom`` invocation in one shell command (``a && b``, ``x | y``, env
    assignments in front), comments dropped."""
    try:
        tokens = shlex.split(cmd, comments=True)
    except ValueError as e:
        raise AssertionError(f"not valid shell: {cmd!r} ({e})") from None
    out, cur = [], None
    for tok in tokens:
        if tok in ("&&", "||", "|", ";", "done", "do") or tok.endswith(";"):
            cur = None
            continue
        if cur is not None and re.fullmatch(r"\d*(>>?|<)(&\d+)?", tok):
            cur = None  # a redirection: the rest is the shell's, not skyloom's
            continue
        if cur is not None and tok.startswith("$"):
            tok = "1"  # a shell variable (a loop's seed or size): 1 is a value every option type accepts
        if cur is None:
            if tok == "skyloom":
                cur = []
                out.append(cur)
            continue
        cur.append(tok)
    return out


def needs(cmd: str) -> str | None:
    for what, marks in NEEDS.items():
        if any(m in cmd for m in marks):
            return what
    return None


ALL = [(p, n, c) for p in DOCS for n, c in shell_commands(p)]


def test_the_docs_have_commands_to_check():
    assert len([c for _, _, c in ALL if "skyloom" in c]) >= 80, "the extraction found too few commands"
    assert {p.name for p, _, c in ALL if "skyloom " in c} >= {"README.md", "model.md", "eval.md", "captioning.md",
                                                              "datagen-render.md", "datagen-ingest.md", "dashboard.md"}


def _parse(args: list[str]) -> list[str]:
    """Parse ``skyloom ARGS`` with the real command tree, without running it; the command path."""
    import typer

    from skyloom.cli import app

    cmd = typer.main.get_command(app)
    ctx = cmd.make_context("skyloom", list(args))
    names = ["skyloom"]
    while hasattr(cmd, "commands"):
        rest = list(getattr(ctx, "_protected_args", None) or getattr(ctx, "protected_args", None) or []) + ctx.args
        if not rest:
            break
        name, sub, rest = cmd.resolve_command(ctx, rest)
        names.append(name)
        ctx = sub.make_context(name, rest, parent=ctx)
        cmd = sub
    return names


def test_every_documented_skyloom_command_parses():
    """Each documented ``skyloom`` command is accepted by the command line as written (options, types, arguments)."""
    problems, checked = [], 0
    for path, line, cmd in ALL:
        for args in skyloom_args(cmd):
            if not args or args[0] == "--help" or "--help" in args:
                continue
            try:
                _parse(args)
                checked += 1
            except Exception as e:  # noqa: BLE001 - click's usage errors: collected, reported together
                problems.append(f"{path.relative_to(ROOT)}:{line}: skyloom {shlex.join(args)}\n    {e}")
    assert checked >= 80
    assert not problems, "documented commands the CLI refuses:\n" + "\n".join(problems)


@pytest.mark.slow
def test_runnable_documented_commands_run(tmp_path, capsys):
    """The documented commands that need no corpus, run or server run as written, per file in order, in a
    temporary folder: exit 0 and output on stdout. What is left to other tests or marked as needing a GPU or a
    server is listed."""
    ran, skipped, left = [], [], 0
    for path in DOCS:
        work = tmp_path / path.stem
        work.mkdir()
        for args in PRELUDE.get(path.name, []):
            r = subprocess.run([SKYLOOM, *args], cwd=work, capture_output=True, text=True, env=ENV, timeout=600,
                               stdin=subprocess.DEVNULL)
            assert r.returncode == 0, f"prelude of {path.name}: skyloom {shlex.join(args)}\n{r.stderr[-2000:]}"
        for line, cmd in shell_commands(path):
            for args in skyloom_args(cmd):
                where = f"{path.relative_to(ROOT)}:{line}: skyloom {shlex.join(args)}"
                why = needs(cmd)
                if why is not None:
                    skipped.append(f"{where}  [needs {why}]")
                    continue
                if not _runnable(args):
                    left += 1
                    continue
                r = subprocess.run([SKYLOOM, *small(args)], cwd=work, capture_output=True, text=True, env=ENV,
                                   timeout=300, stdin=subprocess.DEVNULL)
                assert r.returncode == 0, f"{where}: exit {r.returncode}\n{r.stdout[-1000:]}{r.stderr[-2000:]}"
                assert "Traceback" not in r.stderr
                ran.append(where)
    with capsys.disabled():
        print(f"\ndocs: ran {len(ran)} command(s); {left} left to the stage tests (tests/test_demo.py and the stage "
              f"tests run them at small sizes); skipped by name, {len(skipped)}:")
        for s in skipped:
            print("  " + s)
    assert len(ran) >= 15 and skipped
