"""``skyloom dashboard``: the real command serves the app on 127.0.0.1 and a free port."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def _serve(cmd: list[str], cwd: Path) -> tuple[subprocess.Popen, re.Match]:
    """Start ``skyloom dashboard`` and return it with the match of the URL it printed (host, port)."""
    env = dict(os.environ, COLUMNS="300", NO_COLOR="1", TERM="dumb")
    proc = subprocess.Popen(cmd, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    url, lines, deadline = None, [], time.monotonic() + 60
    while url is None and time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            break
        lines.append(line)
        url = re.search(r"http://([\d.]+):(\d+)/", line)
    if url is None:
        proc.terminate()
        proc.wait(timeout=20)
        raise AssertionError("".join(lines))
    return proc, url


def test_dashboard_command_serves_on_localhost(world):
    proc, m = _serve([sys.executable, "-m", "skyloom.cli", "dashboard", "--runs", str(world["runs"]),
                      "--corpus", str(world["corpus"]), "--port", "0"], REPO)
    try:
        url = m.group(0)
        assert url.startswith("http://127.0.0.1:")  # bound to this machine only by default
        with urllib.request.urlopen(url + "api/overview", timeout=20) as r:
            ov = json.load(r)
        assert sorted(x["name"] for x in ov["runs"]) == ["run-a", "run-b", "run-empty"]
        with urllib.request.urlopen(url, timeout=20) as r:
            assert b'id="skyloom-data">null</script>' in r.read()
    finally:
        proc.terminate()
        proc.wait(timeout=20)


def test_dashboard_command_reports_a_busy_port(world):
    from typer.testing import CliRunner

    from skyloom.cli import app
    from skyloom.dashboards.app import bind

    sock = bind("127.0.0.1", 0)
    try:
        port = sock.getsockname()[1]
        res = CliRunner().invoke(app, ["dashboard", "--runs", str(world["runs"]), "--port", str(port)])
    finally:
        sock.close()
    assert res.exit_code == 2 and "cannot listen" in res.output, res.output


def _skyloom() -> str:
    exe = Path(sys.executable).parent / "skyloom"
    assert exe.exists(), f"the skyloom executable is not installed next to {sys.executable}"
    return str(exe)


def test_dashboard_command_answers_only_allowed_host_names(world, tmp_path):
    import http.client

    proc, url = _serve([_skyloom(), "dashboard", "--runs", str(world["runs"]), "--port", "0",
                        "--allow-host", "dash.lan", "--cache-dir", str(tmp_path / "cache")], tmp_path)
    try:

        def status(host: str) -> int:
            conn = http.client.HTTPConnection(url.group(1), int(url.group(2)), timeout=20)
            conn.putrequest("GET", "/api/overview", skip_host=True)
            conn.putheader("Host", host)
            conn.endheaders()
            try:
                return conn.getresponse().status
            finally:
                conn.close()

        assert status(f"dash.lan:{url.group(2)}") == 200 and status("localhost") == 200
        assert status("evil.example") == 400
    finally:
        proc.terminate()
        proc.wait(timeout=20)


def test_dashboard_command_rejects_a_bad_allow_host(world):
    res = subprocess.run([_skyloom(), "dashboard", "--runs", str(world["runs"]), "--port", "0",
                          "--allow-host", "http://dash.lan/"], capture_output=True, text=True, timeout=120, check=False,
                         env=dict(os.environ, COLUMNS="300", NO_COLOR="1", TERM="dumb"))
    assert res.returncode != 0 and "--allow-host" in res.stderr and "Traceback" not in res.stderr + res.stdout, res
