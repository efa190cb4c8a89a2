"""Render, ingest and captioning on a real two-node Ray cluster, driven through the CLI (issue 15).

Two ``ray start`` processes (a head and a second node, one CPU each, small object stores) form the
cluster; the jobs join it with ``--ray-address``. Checks: tasks ran on both nodes (node ids in the
job reports), the corpus equals a single-process run's (ids, sha256, captions), and ``kill -9`` of
the ingest driver mid-job followed by a rerun loses and duplicates nothing. The Ray processes are
started in their own session and killed by process group in ``finally`` (never ``ray stop``, which
would stop every Ray instance on the machine).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pytest

from skyloom.corpus import Corpus
from skyloom.datagen.sources import write_sources_csv
from skyloom.video import write_video

pytestmark = pytest.mark.slow

SKYLOOM = str(Path(sys.executable).with_name("skyloom"))
RAY = [sys.executable, "-m", "ray.scripts.scripts"]
STORE = str(80 * 1024 * 1024)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _env() -> dict[str, str]:
    env = {**os.environ, "SKYLOOM_NO_PROGRESS": "1", "RAY_DEDUP_LOGS": "0", "RAY_USAGE_STATS_ENABLED": "0",
           "RAY_ENABLE_UV_RUN_RUNTIME_ENV": "0", "RAY_AUTH_MODE": "disabled", "MUJOCO_GL": "egl",
           "PYOPENGL_PLATFORM": "egl"}
    env.pop("RAY_ADDRESS", None)
    return env


@pytest.fixture(scope="module")
def cluster():
    """A Ray head and a second node as separate processes; yields the address."""
    tmp = Path(tempfile.mkdtemp(prefix="rc", dir="/tmp"))  # short: Ray's socket paths have a length limit
    port = _free_port()
    addr = f"127.0.0.1:{port}"
    common = ["--num-cpus=1", f"--object-store-memory={STORE}", "--block", "--disable-usage-stats"]
    procs = []
    try:
        procs.append(subprocess.Popen([*RAY, "start", "--head", f"--port={port}", "--include-dashboard=false",
                                       f"--temp-dir={tmp}", "--node-ip-address=127.0.0.1", *common],
                                      env=_env(), start_new_session=True, stdout=subprocess.DEVNULL,
                                      stderr=open(tmp / "head.log", "w")))  # noqa: SIM115
        _wait_nodes(addr, 1, procs, tmp)
        procs.append(subprocess.Popen([*RAY, "start", f"--address={addr}", "--node-ip-address=127.0.0.1",
                                       "--node-manager-port=0", *common],
                                      env=_env(), start_new_session=True, stdout=subprocess.DEVNULL,
                                      stderr=open(tmp / "node.log", "w")))  # noqa: SIM115
        _wait_nodes(addr, 2, procs, tmp)
        yield addr
    finally:
        for p in reversed(procs):  # the whole process group each `ray start --block` leads
            for sig in (signal.SIGTERM, signal.SIGKILL):
                try:
                    os.killpg(p.pid, sig)
                except ProcessLookupError:
                    break
                try:
                    p.wait(timeout=15)
                except subprocess.TimeoutExpired:
                    continue
        shutil.rmtree(tmp, ignore_errors=True)


def _wait_nodes(addr: str, n: int, procs, tmp: Path, timeout: float = 120) -> None:
    code = ("import ray,sys; ray.init(address=sys.argv[1], logging_level='ERROR'); "
            "print(sum(x['Alive'] for x in ray.nodes()))")
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout:
        if any(p.poll() is not None for p in procs):
            logs = "\n".join(f.read_text()[-2000:] for f in tmp.glob("*.log"))
            raise RuntimeError(f"ray start exited early:\n{logs}")
        r = subprocess.run([sys.executable, "-c", code, addr], check=False, capture_output=True, text=True,
                           env=_env(), timeout=60)
        if r.returncode == 0 and r.stdout.strip().isdigit() and int(r.stdout.strip()) >= n:
            return
        time.sleep(1)
    raise RuntimeError(f"the Ray cluster at {addr} did not reach {n} node(s) in {timeout} s")


def _sk(*args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    r = subprocess.run([SKYLOOM, *args], check=False, capture_output=True, text=True, env=_env(), timeout=timeout)
    assert r.returncode == 0 and "Traceback" not in r.stderr, r.stderr[-3000:]
    return r


@pytest.fixture(scope="module")
def sources(tmp_path_factory) -> Path:
    d = tmp_path_factory.mktemp("src")
    for k in range(6):  # a textured pan: neither blank nor static
        base = np.random.default_rng(k).integers(0, 256, (10, 40, 3), dtype=np.uint8).repeat(8, 0).repeat(8, 1)
        write_video(d / f"v{k}.mp4", np.stack([base[:, 3 * t:3 * t + 96] for t in range(32)]), fps=16)
    return write_sources_csv(d / "sources.csv", [{"url": f"v{k}.mp4", "license": "CC0-1.0", "author": "t"}
                                                 for k in range(6)])


ING = ["--set", "shots.clip_seconds=1.0", "--set", "shots.min_clip_seconds=0.5", "--set", "filters.min_duration_s=0.5",
       "--set", "transcode.short_side=64"]
RENDER = ["--preset", "balls-bounce", "-n", "4", "--set", "scene.num_frames=8", "--set", "scenes_per_task=1"]


def _build(root: Path, sources: Path, ray: list[str], ingest_extra: list[str]) -> None:
    allow = ["--set", f"fetch.allowed_roots=[{sources.parent}]"]
    _sk("datagen", "render", "--out", str(root), *RENDER, *ray)
    _sk("datagen", "ingest", str(sources), "--out", str(root), *ING, *allow, *ingest_extra, *ray)
    _sk("caption", "run", str(root), "--captioner", "auto", "--set", "auto_fallback=[heuristic]",
        "--set", "num_actors=2", "--set", "batch_size=1", *ray)


def _state(root: Path) -> dict[str, tuple]:
    c = Corpus(root)
    return {r.id: (r.sha256, tuple(sorted((x.captioner, x.kind, x.text) for x in r.captions))) for r in c.records()}


def test_cluster_jobs_use_both_nodes_and_match_a_single_process_run(cluster, sources, tmp_path):
    local, dist = tmp_path / "local", tmp_path / "dist"
    _build(local, sources, [], ["--set", "engine=local"])
    _build(dist, sources, ["--ray-address", cluster], ["--set", "workers=2", "--set", "chunk_sources=6"])
    assert _state(dist) == _state(local) and len(_state(local)) > 4
    render = json.loads(max((dist / "reports").glob("render-*.json")).read_text())
    ingest = json.loads(max((dist / "reports").glob("ingest-*.json")).read_text())
    caption = json.loads(max((dist / "caption_runs").glob("*.json")).read_text())
    for stats in (render["nodes"], ingest["nodes"], caption["nodes"]):
        assert len(stats) == 2 and "driver" not in stats, stats
    assert set(render["nodes"]) == set(ingest["nodes"]) == set(caption["nodes"])
    local_render = json.loads(max((local / "reports").glob("render-*.json")).read_text())
    assert local_render["nodes"] == {"driver": 4}  # auto: a 4-scene job runs in-process
    check = subprocess.run([SKYLOOM, "corpus", "validate", str(dist)], check=False, env=_env(), capture_output=True)
    assert check.returncode == 0, check.stdout


def test_kill_9_of_the_driver_then_rerun_loses_and_duplicates_nothing(cluster, sources, tmp_path):
    allow = ["--set", f"fetch.allowed_roots=[{sources.parent}]"]
    ref = tmp_path / "ref"
    _sk("datagen", "ingest", str(sources), "--out", str(ref), *ING, *allow, "--set", "engine=local")
    out = tmp_path / "killed"
    cmd = [SKYLOOM, "datagen", "ingest", str(sources), "--out", str(out), *ING, *allow, "--set", "workers=1",
           "--ray-address", cluster]
    p = subprocess.Popen(cmd, env=_env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    state = out / "ingest_state.jsonl"
    t0 = time.monotonic()
    while time.monotonic() - t0 < 240 and not (state.exists() and state.read_text().strip()):
        time.sleep(0.05)
    p.kill()  # SIGKILL: no cleanup of any kind
    p.wait()
    done = len(state.read_text().splitlines())
    assert 1 <= done < 6, f"the driver was killed after {done} of 6 sources"
    _sk(*cmd[1:])
    ids = [r.id for r in Corpus(out).records()]
    assert len(ids) == len(set(ids)) and _state(out) == _state(ref)
    check = subprocess.run([SKYLOOM, "corpus", "validate", str(out)], check=False, env=_env(), capture_output=True,
                           text=True)
    assert check.returncode == 0, check.stdout
