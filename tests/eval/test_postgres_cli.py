"""A team's shared PostgreSQL store through the installed ``skyloom`` executable: several ``skyloom eval``
processes write into one database at once, and ``leaderboard``, ``compare`` and ``dashboard`` read it,
showing exactly what they show for the same rows in a SQLite file."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from skyloom.eval.results.store import ResultsStore
from tests.eval import fakes
from tests.eval.test_leaderboard_cli import REAL_SUITE

REPO = Path(__file__).resolve().parents[2]
SKYLOOM = shutil.which("skyloom", path=str(Path(sys.executable).parent)) or shutil.which("skyloom")
# tests.eval.fakes (the fake pipeline loader) is imported by name inside the executable
ENV = {**os.environ, "SKYLOOM_NO_PROGRESS": "1", "COLUMNS": "200", "NO_COLOR": "1", "TERM": "dumb",
       "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))}

pytestmark = pytest.mark.postgres


def sky(*args: str, cwd: Path, timeout: float = 300) -> subprocess.CompletedProcess:
    assert SKYLOOM, "the skyloom executable is not installed next to this Python"
    return subprocess.run([SKYLOOM, *args], cwd=cwd, env=ENV, capture_output=True, text=True, timeout=timeout,
                          stdin=subprocess.DEVNULL)


def ok(*args: str, cwd: Path) -> str:
    r = sky(*args, cwd=cwd)
    assert r.returncode == 0 and "Traceback" not in r.stderr, r.stdout + r.stderr
    return r.stdout


@pytest.fixture(scope="module")
def shared(pg_server, tmp_path_factory):
    """Three checkpoints evaluated by three ``skyloom eval`` processes running at once into one PostgreSQL
    database (the URL carries a password, which trust authentication ignores: it must never be shown), and the
    same rows copied into a SQLite file."""
    tmp = tmp_path_factory.mktemp("pgcli")
    suite = tmp / "cli.yaml"
    suite.write_text(REAL_SUITE)
    cks = [fakes.make_checkpoint(tmp / "runs", "r1", 0, noise=60.0), fakes.make_checkpoint(tmp / "runs", "r1", 100),
           fakes.make_checkpoint(tmp / "runs", "r2", 100)]
    url = pg_server.new_database().replace("://skyloom@", "://skyloom:hunter2@")
    procs = [subprocess.Popen([SKYLOOM, "eval", "--suite", str(suite), "--ckpt", str(ck), "--db", url, "--json",
                               "--set", f"pipeline_loader={fakes.LOADER}", "--set", f"cache_dir={tmp / f'cache{i}'}",
                               "--set", "n_boot=100"],
                              cwd=tmp, env=ENV, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for i, ck in enumerate(cks)]
    outs = [p.communicate(timeout=600) for p in procs]
    assert [p.returncode for p in procs] == [0, 0, 0], [o[1][-3000:] for o in outs]
    copy = tmp / "copy.sqlite"
    with ResultsStore(url) as src, ResultsStore(copy) as dst:
        src.copy_into(dst)
    return {"tmp": tmp, "url": url, "sqlite": copy, "cks": cks, "outs": outs}


def test_concurrent_skyloom_eval_processes_share_one_store(shared):
    assert all("hunter2" not in out + err for out, err in shared["outs"])
    ids = [json.loads(out[out.index("{"):])["evals"][0]["eval_id"] for out, _ in shared["outs"]]
    with ResultsStore(shared["url"]) as store:
        evals = store.evals(suite="cli")
        assert sorted(e["eval_id"] for e in evals) == sorted(ids) and len(set(ids)) == 3
        assert {e["status"] for e in evals} == {"complete"}
        assert all("hunter2" not in e["config_json"] and "127.0.0.1" in e["config"]["eval"]["db"] for e in evals)
    # nor in any file the evaluations left (config.yaml, results.json)
    assert [p for p in (shared["tmp"] / "runs").rglob("*") if p.is_file() and b"hunter2" in p.read_bytes()] == []
    with ResultsStore(shared["url"]) as store:
        assert sorted(e["checkpoint_name"] for e in evals) == ["r1/step-00000000", "r1/step-00000100",
                                                               "r2/step-00000100"]
        for e in ids:  # 2 prompts x 2 seeds, three per-item metrics, each row once
            items = store.items(e)
            assert len(items) == 12 and len({(r["metric"], r["item_id"]) for r in items}) == 12
            assert {s["metric"] for s in store.scores(eval_ids=[e])} >= {"temporal_flickering", "warping_error",
                                                                         "dynamic_degree"}
            assert store.failures(e) == []


@pytest.mark.parametrize("fmt", ["json", "csv", "markdown", "table"])
def test_leaderboard_on_postgres_is_the_sqlite_leaderboard(shared, fmt):
    pg = ok("leaderboard", "--db", shared["url"], "--format", fmt, cwd=shared["tmp"])
    assert pg == ok("leaderboard", "--db", str(shared["sqlite"]), "--format", fmt, cwd=shared["tmp"])
    assert "hunter2" not in pg
    if fmt == "json":
        rows = json.loads(pg)["cli"]["rows"]
        assert [r["rank"] for r in rows] == [1, 2, 3] and rows[-1]["checkpoint_name"] == "r1/step-00000000"
        assert rows[0]["metric"] == "temporal_flickering" and rows[0]["value"] > rows[-1]["value"]


def test_compare_on_postgres_is_the_sqlite_compare(shared):
    args = ("compare", str(shared["cks"][0]), "r1/step-00000100", "--format", "json")
    pg = ok(*args, "--db", shared["url"], cwd=shared["tmp"])
    assert pg == ok(*args, "--db", str(shared["sqlite"]), cwd=shared["tmp"])
    by = {r["metric"]: r for r in json.loads(pg)}
    assert set(by) == {"temporal_flickering", "warping_error", "dynamic_degree"}
    assert by["temporal_flickering"]["diff"] > 0 and by["warping_error"]["diff"] < 0  # the noisy one is worse
    r = sky("compare", "nope", "r1/step-00000100", "--db", shared["url"], cwd=shared["tmp"])
    assert r.returncode == 2 and r.stdout == "" and "no evaluation matches 'nope'" in r.stderr
    assert "Traceback" not in r.stderr and "hunter2" not in r.stderr


def test_an_unreachable_server_is_one_error_line(shared):
    r = sky("leaderboard", "--db", "postgresql+psycopg://alice:s3cret@127.0.0.1:1/skyloom", cwd=shared["tmp"])
    assert r.returncode == 2 and r.stdout == "" and "Traceback" not in r.stderr
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and "cannot be opened as a database" in lines[0] and "s3cret" not in r.stderr


def _get(url: str) -> dict:
    with urllib.request.urlopen(url, timeout=30) as r:
        return json.load(r)


def test_dashboard_serves_the_postgres_store_and_notices_new_results(shared):
    from skyloom.dashboards.sources import Dashboard

    tmp = shared["tmp"]
    proc = subprocess.Popen([SKYLOOM, "dashboard", "--runs", str(tmp / "runs"), "--db", shared["url"], "--port", "0",
                             "--cache-dir", str(tmp / "dash-cache")], cwd=tmp, env=ENV, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    try:
        m, lines, deadline = None, [], time.monotonic() + 120
        while m is None and time.monotonic() < deadline:
            line = proc.stdout.readline()
            if not line:
                break
            lines.append(line)
            m = re.search(r"http://[\d.]+:\d+/", line)
        assert m, "".join(lines)
        base = m.group(0)
        board = _get(base + "api/leaderboard")
        local = Dashboard([tmp / "runs"], db=str(shared["sqlite"]))
        try:  # the same rows in a SQLite file give the same page
            assert board == json.loads(json.dumps(local.leaderboard(), default=str))
        finally:
            local.close()
        rows = board["suites"][0]["rows"]
        assert [r["checkpoint_name"] for r in rows][-1] == "r1/step-00000000" and not board["warnings"]
        overview = _get(base + "api/overview")
        assert overview["suites"] == ["cli"] and "hunter2" not in json.dumps(overview)
        assert overview["stores"] == [shared["url"].replace(":hunter2@", ":***@")]
        # another process writes: the page's live-refresh stamp changes within seconds
        before = _get(base + "api/stamp")["stamp"]
        with ResultsStore(shared["url"]) as w:
            w.begin_eval("late", suite="cli", checkpoint_name="r3/step-00000001")
        deadline = time.monotonic() + 20
        while _get(base + "api/stamp")["stamp"] == before and time.monotonic() < deadline:
            time.sleep(0.5)
        assert _get(base + "api/stamp")["stamp"] != before
        with ResultsStore(shared["url"]) as w:  # leave the module's store as the other tests expect it
            with w.engine.begin() as c:
                c.exec_driver_sql("DELETE FROM evals WHERE eval_id = 'late'")
    finally:
        proc.terminate()
        out = proc.communicate(timeout=30)[0]
    assert "hunter2" not in "".join(lines) + out and "Traceback" not in out


def test_report_reads_the_postgres_store(shared):
    tmp = shared["tmp"]
    out = tmp / "report.html"
    r = sky("report", "--runs", str(tmp / "runs"), "--db", shared["url"], "--out", str(out), cwd=tmp)
    assert r.returncode == 0 and "Traceback" not in r.stderr, r.stdout + r.stderr
    html = out.read_text()
    assert all(name in html for name in ("r1/step-00000000", "r1/step-00000100", "r2/step-00000100"))
    assert "hunter2" not in html + r.stdout + r.stderr
