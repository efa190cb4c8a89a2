"""The ``skyloom`` executable's contract, run the way users run it: the installed script in a subprocess.

Exit codes (skyloom.errors): 0 success, 1 internal error (a bug), 2 user error, 130 interrupted.
A mistake gives exactly one ``error:`` line on stderr that names the input, nothing on stdout,
and no traceback; ``-v`` adds the traceback.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

SKYLOOM = shutil.which("skyloom", path=str(Path(sys.executable).parent)) or shutil.which("skyloom")
ENV = {**os.environ, "SKYLOOM_NO_PROGRESS": "1", "COLUMNS": "200"}


def run(args: list[str], cwd: Path, timeout: float = 600, env: dict | None = None) -> subprocess.CompletedProcess:
    assert SKYLOOM, "the skyloom executable is not installed next to this Python"
    return subprocess.run([SKYLOOM, *args], cwd=cwd, capture_output=True, text=True, timeout=timeout,
                          env=env or ENV, stdin=subprocess.DEVNULL)


@pytest.fixture(scope="module")
def ws(tmp_path_factory) -> Path:
    """A workspace with an empty corpus, an empty run, an empty folder and two files that are not what they claim."""
    from skyloom.corpus import Corpus
    from skyloom.rundir import RunDir

    root = tmp_path_factory.mktemp("cli-contract")
    Corpus.create(root / "corpus")
    RunDir.create(root / "runs" / "run-a", preset="vdit-tiny")
    (root / "empty").mkdir()
    (root / "vids").mkdir()
    (root / "bad.csv").write_text("foo,bar\n1,2\n")
    (root / "notimg.png").write_text("hello")
    (root / "bad.yaml").write_text("steps: [1, 2\n")
    return root


# (arguments, what the one error line must mention). Every subcommand appears at least once.
MISTAKES: list[tuple[str, str]] = [
    ("", "Usage"),  # bare skyloom: the help, exit 2
    ("trian", "Did you mean 'train'"),
    ("--nosuch", "--nosuch"),
    ("train /nonexistent --out o", "/nonexistent"),
    ("train corpus", "--out"),
    ("train corpus --out o --steps many", "--steps"),
    ("train corpus --out o --preset vdit-tinny", "Did you mean 'vdit-tiny'"),
    ("train corpus --out o --preset bad.yaml", "bad.yaml"),
    ("train corpus --out o --stage vea", "--stage"),
    ("train corpus --out o --set optim.lr", "optim.lr"),
    ("train corpus --out o --set dit.nosuch=1", "nosuch"),
    ("sample --ckpt runs/run-a --prompt x --out a.mp4 --image /nonexistent.png", "/nonexistent.png"),
    ("sample --ckpt runs/run-a --prompt x --out a.mp4 --image notimg.png", "notimg.png"),
    ("sample --ckpt /nonexistent --prompt x --out a.mp4", "/nonexistent"),
    ("sample --ckpt runs/run-a", "--prompt"),
    ("sample --ckpt runs/run-a --prompt x --out a.gif", "a.gif"),
    ("sample --ckpt corpus --prompt x --out a.mp4", "corpus"),
    ("datagen render -n eight --out o", "--num-scenes"),
    ("datagen render --out o --preset balls-bonce", "Did you mean 'balls-bounce'"),
    ("datagen render --out o --set renderer=blender", "blender"),
    ("datagen render", "--out"),
    ("datagen nosuch", "nosuch"),
    ("datagen ingest /nonexistent.csv --out o", "/nonexistent.csv"),
    ("datagen ingest bad.csv --out o", "bad.csv"),
    ("datagen takedown --corpus /nonexistent --source x", "/nonexistent"),
    ("caption /nonexistent", "/nonexistent"),
    ("caption corpus --captioner magic", "magic"),
    ("caption verify /nonexistent", "/nonexistent"),
    ("caption stats corpus --json true", "true"),
    ("caption upsample", "PROMPT"),
    ("eval --suite smok --ckpt runs/run-a", "Did you mean 'smoke'"),
    ("eval --suite smoke", "--ckpt"),
    ("eval --suite smoke --ckpt /nonexistent", "/nonexistent"),
    ("eval score --metric fvdd --videos vids", "Did you mean 'fvd'"),
    ("eval score --metric fvd --videos /nonexistent", "/nonexistent"),
    ("eval suites nosuch", "nosuch"),
    ("eval train-evaluator /nonexistent --out o", "/nonexistent"),
    ("leaderboard --runs empty", "empty"),
    ("leaderboard --format xml --runs runs", "xml"),
    ("leaderboard", "--db"),
    ("compare a b --runs empty", "empty"),
    ("compare a", "'B'"),
    ("dashboard --runs /nonexistent", "/nonexistent"),
    ("report --runs /nonexistent --out r.html", "/nonexistent"),
    ("report --runs runs", "--out"),
    ("corpus info /nonexistent", "/nonexistent"),
    ("corpus validate /nonexistent", "/nonexistent"),
    ("corpus compact /nonexistent", "/nonexistent"),
    ("corpus export-wds corpus --shard-size 0", "--shard-size"),
    ("demo --stage nosuch --out d", "nosuch"),
    ("demo --config /nonexistent.yaml", "/nonexistent.yaml"),
]


@pytest.mark.slow
def test_every_mistake_exits_2_with_one_clear_line(ws):
    """50 mistakes over every subcommand: exit 2, one ``error:`` line naming the input, no traceback."""
    assert len(MISTAKES) >= 40
    commands = {a.split()[0] for a, _ in MISTAKES if a and not a.startswith("-")}
    assert commands >= {"train", "sample", "datagen", "caption", "eval", "leaderboard", "compare", "dashboard",
                        "report", "corpus", "demo"}
    with ThreadPoolExecutor(2) as pool:
        results = list(pool.map(lambda m: run(m[0].split(), ws), MISTAKES))
    problems = []
    for (args, needle), r in zip(MISTAKES, results):
        errors = [ln for ln in r.stderr.splitlines() if ln.startswith("error:")]
        if not args:  # bare `skyloom`: the help (on stdout, like `git`), exit 2
            ok = r.returncode == 2 and needle in r.stdout + r.stderr and "Traceback" not in r.stderr
        else:
            ok = (r.returncode == 2 and "Traceback" not in r.stderr + r.stdout and r.stdout == ""
                  and len(errors) == 1 and needle in errors[0])
        if not ok:
            problems.append(f"skyloom {args}: rc={r.returncode} stdout={r.stdout[-200:]!r} stderr={r.stderr[-400:]!r}")
    assert not problems, "\n".join(problems)


def test_verbose_shows_the_traceback(ws):
    r = run(["-v", "train", "/nonexistent", "--out", "o"], ws)
    assert r.returncode == 2 and "Traceback (most recent call last)" in r.stderr
    assert r.stderr.strip().splitlines()[-1] == "error: corpus /nonexistent does not exist"


def test_unexpected_exception_says_it_is_a_bug(ws, tmp_path):
    """A plain RuntimeError escaping a command: exit 1, a line that says it is a bug and where to report."""
    sitecustom = tmp_path / "sitecustomize.py"  # make `skyloom corpus info` itself raise, as a bug would
    sitecustom.write_text("import skyloom.corpus as c\n"
                          "def _boom(self, *args, **kwargs):\n    raise RuntimeError('kaboom')\n"
                          "c.Corpus.scan = _boom\n")  # what `corpus info` reads the manifest with
    env = {**ENV, "PYTHONPATH": str(tmp_path)}
    r = run(["corpus", "info", "corpus"], ws, env=env)
    assert r.returncode == 1, r.stderr
    assert "Traceback" not in r.stderr
    last = r.stderr.strip().splitlines()[-1]
    assert "RuntimeError: kaboom" in last and "bug in skyloom" in last and "report it" in last and "-v" in last
    r = run(["-v", "corpus", "info", "corpus"], ws, env=env)
    assert r.returncode == 1 and "Traceback (most recent call last)" in r.stderr


def test_success_is_0_and_data_goes_to_stdout(ws):
    r = run(["corpus", "info", "corpus", "--json"], ws)
    assert r.returncode == 0 and '"clips": 0' in r.stdout and r.stderr == ""
    r = run(["corpus", "info", "corpus"], ws)  # the table too: `skyloom corpus info C > info.txt` works
    assert r.returncode == 0 and "clips" in r.stdout and "clips" not in r.stderr
    r = run(["eval", "suites"], ws)
    assert r.returncode == 0 and "smoke" in r.stdout
    r = run(["--help"], ws)
    assert r.returncode == 0 and "Usage" in r.stdout


def test_help_reads_like_a_unix_tool(ws):
    r = run(["train", "--help"], ws)
    assert r.returncode == 0
    text = r.stdout
    assert "<bool>" not in text and "<path>" not in text and "<int>" not in text and "{corpus}" not in text
    assert "CORPUS" in text and "KEY=VALUE" in text and "PATH" in text and "INT" in text
    assert "[default: 1]" in text  # --num-workers
    score = run(["eval", "score", "--help"], ws).stdout
    assert "KEY=VALUE" in score and not any(f"<{t}>" in score for t in ("bool", "str", "path", "list[str]"))


def test_short_flags_mean_the_same_everywhere():
    import typer

    from skyloom.cli import app

    meaning: dict[str, set[str]] = {}

    def walk(cmd) -> None:
        for p in cmd.params:
            longs = [o for o in p.opts + p.secondary_opts if o.startswith("--")]
            for o in p.opts + p.secondary_opts:
                if len(o) == 2:
                    meaning.setdefault(o, set()).add(longs[0])
        for sub in getattr(cmd, "commands", {}).values():
            walk(sub)

    walk(typer.main.get_command(app))
    clashes = {k: v for k, v in meaning.items() if len(v) > 1}
    assert not clashes
    assert meaning["-o"] == {"--out"} and meaning["-s"] == {"--set"} and meaning["-v"] == {"--verbose"}


def test_failed_stage_prints_a_cross_not_a_tick(ws):
    r = run(["eval", "--suite", "smok", "--ckpt", "runs/run-a"], ws)
    assert r.returncode == 2 and "✓" not in r.stderr and "✗" in r.stderr


def test_cli_values_are_not_parsed_as_yaml(tmp_path):
    """A corpus path with ' #' or a folder named ``on`` reaches the config as itself."""
    from skyloom.captioning.config import CaptionConfig
    from skyloom.config import apply_values, load

    cfg = apply_values(load(CaptionConfig), {"corpus": Path("/data/cap #2")})
    assert cfg.corpus == "/data/cap #2"
    assert apply_values(cfg, {"corpus": "on"}).corpus == "on"
    from skyloom.demo import load_demo_config

    assert apply_values(load_demo_config(None), {"out": Path("yes")}).out == "yes"


def test_caption_run_keeps_a_hash_in_the_corpus_path(tmp_path):
    """End to end: `skyloom caption "DIR #2"` captions that folder, not "DIR"."""
    from tests.model.helpers import make_square_corpus

    make_square_corpus(tmp_path / "cap #2", n=1, captions=False)
    r = run(["caption", "cap #2", "--captioner", "heuristic"], tmp_path, timeout=300)
    assert r.returncode == 0, r.stderr
    assert "✓" in r.stderr and not (tmp_path / "cap").exists()


@pytest.mark.slow
def test_sigint_exits_130_and_says_how_to_resume(tmp_path):
    """Ctrl-C during `skyloom train`: exit 130, ✗ not ✓, and the resume hint; no traceback."""
    from skyloom.config import save_resolved
    from tests.model.helpers import make_square_corpus, tiny_cfg

    make_square_corpus(tmp_path / "corpus", n=3)
    save_resolved(tiny_cfg(steps=100000), tmp_path / "tiny.yaml")
    # A user's Ctrl-C reaches a foreground process; a suite started in the background of a non-interactive
    # shell (`make test &`) passes SIGINT down as ignored, and Python then installs no handler for it.
    p = subprocess.Popen([SKYLOOM, "train", "corpus", "--out", "run", "--preset", "tiny.yaml"], cwd=tmp_path,
                         env=ENV, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                         preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    metrics = tmp_path / "run" / "metrics.jsonl"
    deadline = time.time() + 240
    while time.time() < deadline and not (metrics.exists() and metrics.stat().st_size > 0):
        time.sleep(0.5)
    assert metrics.exists(), "training never started"
    p.send_signal(signal.SIGINT)
    out, err = p.communicate(timeout=120)
    assert p.returncode == 130, err
    assert "interrupted — rerun the same command to resume" in err
    assert "Traceback" not in err and "✓" not in err and "✗" in err


def test_dashboard_port_in_use_exits_2(ws):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        r = run(["dashboard", "--runs", "runs", "--port", str(port)], ws)
    assert r.returncode == 2 and "cannot listen" in r.stderr and "--port" in r.stderr


def test_failed_evaluation_exits_2_with_its_reason(ws):
    """`skyloom eval --ckpt <a corpus>` ran, but nothing could be evaluated: non-zero, and why."""
    r = run(["eval", "--suite", "smoke", "--ckpt", "corpus"], ws, timeout=300)
    assert r.returncode == 2, r.stderr
    last = r.stderr.strip().splitlines()[-1]
    assert last.startswith("error: evaluation of 1 checkpoint(s) failed") and "neither a checkpoint" in last
    assert "✓" not in r.stderr and "failed" in r.stdout  # the summary table (data) still on stdout


def test_failures_beyond_the_allowance_fail_the_job():
    from skyloom.cli_common import check_failures
    from skyloom.errors import JobFailedError, UserError

    check_failures("render", 0, 5, None, [])
    check_failures("render", 4, 5, None, ["a"] * 4)  # default: only a job where everything failed
    check_failures("render", 2, 5, 2, ["a", "b"])
    with pytest.raises(JobFailedError, match="5 of 5 failed") as e:
        check_failures("render", 5, 5, None, [f"s{i}: boom" for i in range(5)])
    assert isinstance(e.value, UserError) and "s0: boom" in str(e.value) and "2 more" in str(e.value)
    with pytest.raises(JobFailedError, match="--max-failures 1"):
        check_failures("caption", 2, 10, 1, ["x: bad", "y: bad"])
