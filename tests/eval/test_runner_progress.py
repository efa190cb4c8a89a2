"""`skyloom eval` reports progress per checkpoint: videos generated, then metrics scored (the CLI's bars)."""

from __future__ import annotations

import os
import pty
import subprocess
import sys

from skyloom.eval.harness.runner import EvalConfig, run_eval
from tests.eval import fakes


def test_on_progress_counts_videos_and_metrics(tmp_path):
    fakes.register_fake_extractor()
    ref = fakes.make_reference_corpus(tmp_path / "ref")
    suite = fakes.write_suite(tmp_path / "fake.yaml", reference=ref)
    ck = fakes.make_checkpoint(tmp_path / "runs", "prog", 10, noise=8.0)
    events: list[tuple[str, str, int, int]] = []
    res = run_eval(EvalConfig(suite=str(suite), checkpoints=(str(ck),), cache_dir=str(tmp_path / "cache"),
                              pipeline_loader=fakes.LOADER, n_boot=50, set_boot=5), metrics=fakes.FAKE_METRICS,
                   on_progress=lambda *e: events.append(e))
    name = res.evals[0].checkpoint_name
    gen = [(d, t) for n, s, d, t in events if s == "generate" and n == name]
    score = [(d, t) for n, s, d, t in events if s == "score" and n == name]
    assert gen[0] == (0, gen[0][1]) and gen[-1][0] == gen[-1][1] == res.evals[0].generated > 0
    assert [d for d, _ in gen] == sorted(d for d, _ in gen)  # counts only go up
    assert score[-1][0] == score[-1][1] == len({m for m in res.evals[0].scores})
    # rerun: nothing left to generate, scoring still reported
    events.clear()
    run_eval(EvalConfig(suite=str(suite), checkpoints=(str(ck),), cache_dir=str(tmp_path / "cache"),
                        pipeline_loader=fakes.LOADER, n_boot=50, set_boot=5), metrics=fakes.FAKE_METRICS,
             on_progress=lambda *e: events.append(e))
    assert not [e for e in events if e[1] == "generate"] and [e for e in events if e[1] == "score"]


def test_progress_bars_only_on_a_terminal():
    """On a TTY the bars draw (count and ETA); piped, or with SKYLOOM_NO_PROGRESS=1, they stay quiet."""
    code = ("from skyloom.cli_common import track\n"
            "for _ in track(range(3), 'items'): pass\n")
    env = {k: v for k, v in os.environ.items() if k != "SKYLOOM_NO_PROGRESS"}
    piped = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env)
    assert piped.returncode == 0 and piped.stderr == "" and piped.stdout == ""


    def on_tty(extra: dict[str, str]) -> str:
        pid, fd = pty.fork()
        if pid == 0:  # child: stderr is the pty
            os.execve(sys.executable, [sys.executable, "-c", code], {**env, **extra, "COLUMNS": "100"})
        out = b""
        while True:
            try:
                chunk = os.read(fd, 4096)
            except OSError:
                break
            if not chunk:
                break
            out += chunk
        os.waitpid(pid, 0)
        return out.decode("utf-8", "replace")

    shown = on_tty({})
    assert "items" in shown and "3/3" in shown
    assert "items" not in on_tty({"SKYLOOM_NO_PROGRESS": "1"})
