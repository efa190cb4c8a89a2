"""What a piped or redirected ``skyloom`` writes (issue 27): data on stdout at its full width, a reader that
stops early (``| head -1``) ends the command quietly, and other libraries' INFO lines only with ``-v``."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from tests.core.test_cli_contract import ENV, SKYLOOM

NO_COLUMNS = {k: v for k, v in ENV.items() if k != "COLUMNS"}  # rich's default for a pipe would be 80


def _sh(cmd: str, cwd: Path, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(["bash", "-c", f"set -o pipefail; {cmd}"], cwd=cwd, capture_output=True, text=True,
                          timeout=300, env=env or NO_COLUMNS, stdin=subprocess.DEVNULL)


@pytest.mark.parametrize("args", ["--help", "eval suites", "plugins", "plugins --json", "eval suites smoke"])
def test_head_ends_the_command_quietly(args, tmp_path):
    """``skyloom ... | head -1``: exit 0 or 141 (SIGPIPE, as ``cat`` does), never "internal error" or exit 1."""
    r = _sh(f"'{SKYLOOM}' {args} | head -1", tmp_path)
    assert r.returncode in (0, 141), (r.returncode, r.stderr)
    assert r.stdout, "head printed nothing: the command wrote no data to stdout"
    assert "internal error" not in r.stderr and "Traceback" not in r.stderr and "BrokenPipe" not in r.stderr


def test_piped_tables_are_not_wrapped(tmp_path):
    """A table on a pipe keeps every row on one line and its title on a line of its own, however long."""
    r = subprocess.run([SKYLOOM, "eval", "suites"], capture_output=True, text=True, env=NO_COLUMNS, timeout=120,
                       cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert lines[0] == "evaluation suites"
    (standard,) = [ln for ln in lines if "standard" in ln]
    assert ("clipsim, clip_temp, subject_consistency, background_consistency, temporal_flickering, dynamic_degree, "
            "warping_error, fvd, kvd") in standard
    assert max(len(ln) for ln in lines) > 80  # wider than rich's default for a file, so nothing was folded
    r = subprocess.run([SKYLOOM, "plugins"], capture_output=True, text=True, env=NO_COLUMNS, timeout=120, cwd=tmp_path)
    assert r.returncode == 0 and "skyloom.eval.metrics" in r.stdout and "…" not in r.stdout  # data: stdout, whole
    assert r.stderr == ""


def test_third_party_info_lines_only_with_verbose():
    """skyloom's own INFO lines show; another library's (PyOpenGL's "No OpenGL_accelerate module loaded") only
    with -v, which turns on DEBUG for everyone."""
    import logging

    from skyloom.cli_common import setup_logging

    try:
        setup_logging(False)
        assert logging.getLogger("skyloom.datagen.render").isEnabledFor(logging.INFO)
        assert not logging.getLogger("OpenGL.acceleratesupport").isEnabledFor(logging.INFO)
        assert logging.getLogger("OpenGL.acceleratesupport").isEnabledFor(logging.WARNING)
        setup_logging(True)
        assert logging.getLogger("OpenGL.acceleratesupport").isEnabledFor(logging.INFO)
        assert logging.getLogger("skyloom.datagen.render").isEnabledFor(logging.DEBUG)
    finally:
        setup_logging(False)


@pytest.mark.slow
def test_render_prints_no_opengl_info_line(tmp_path):
    """The line users saw on every render is gone without -v and back with it."""
    env = {**ENV, "MUJOCO_GL": os.environ.get("MUJOCO_GL", "egl")}
    args = ["datagen", "render", "--preset", "balls-single", "-n", "1", "--set", "executor=local"]
    quiet = subprocess.run([SKYLOOM, *args, "--out", str(tmp_path / "a")], capture_output=True, text=True, env=env,
                           timeout=600)
    assert quiet.returncode == 0, quiet.stderr[-2000:]
    assert "OpenGL_accelerate" not in quiet.stderr
    loud = subprocess.run([SKYLOOM, "-v", *args, "--out", str(tmp_path / "b")], capture_output=True, text=True,
                          env=env, timeout=600)
    assert loud.returncode == 0, loud.stderr[-2000:]
    assert "OpenGL_accelerate" in loud.stderr
