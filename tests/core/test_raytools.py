"""The ``auto`` executor's rule (skyloom.raytools.use_ray), shared by render, ingest and captioning."""

from __future__ import annotations

import pytest

from skyloom.raytools import use_ray


def test_auto_runs_small_jobs_in_process_and_large_or_addressed_ones_on_ray(monkeypatch):
    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    monkeypatch.setitem(__import__("sys").modules, "ray", None)  # Ray not started in this process
    assert not use_ray("auto", 10, 16)
    assert use_ray("auto", 16, 16) and use_ray("auto", 1000, 16)
    assert use_ray("auto", 1, 16, address="10.0.0.1:6379")  # a cluster is given: always join it
    assert not use_ray("auto", 1, 16, address="local")
    monkeypatch.setenv("RAY_ADDRESS", "10.0.0.1:6379")
    assert use_ray("auto", 1, 16)
    assert use_ray("ray", 1, 16) and not use_ray("local", 10**6, 16, address="10.0.0.1:6379")
    with pytest.raises(ValueError, match="executor 'rya' is not one of: auto, local, ray"):
        use_ray("rya", 1, 16)


def test_auto_uses_a_ray_instance_already_running(monkeypatch):
    class FakeRay:
        @staticmethod
        def is_initialized() -> bool:
            return True

    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    monkeypatch.setitem(__import__("sys").modules, "ray", FakeRay)
    assert use_ray("auto", 1, 16)


DRIVER = r"""
import json, os, signal, sys
import psutil
from skyloom.raytools import init_ray
init_ray(address="local", num_cpus=1)
me = psutil.Process()
kids = [{"pid": c.pid, "t": c.create_time(), "cmd": " ".join(c.cmdline())[:80]} for c in me.children(recursive=True)]
print(json.dumps(kids), flush=True)
os.kill(os.getpid(), signal.SIGKILL)
"""


@pytest.mark.slow
def test_a_local_ray_instance_dies_with_its_driver_even_on_kill_9():
    import json
    import subprocess
    import sys
    import time

    import psutil

    r = subprocess.run([sys.executable, "-c", DRIVER], capture_output=True, text=True, timeout=300, check=False)
    assert r.returncode == -9, r.stderr[-2000:]
    kids = json.loads(r.stdout.strip().splitlines()[-1])
    assert any("raylet" in k["cmd"] for k in kids) and len(kids) >= 4, kids

    def alive(k) -> bool:
        try:
            p = psutil.Process(k["pid"])
            return abs(p.create_time() - k["t"]) < 0.01 and p.status() != psutil.STATUS_ZOMBIE
        except psutil.Error:
            return False

    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and any(alive(k) for k in kids):
        time.sleep(0.5)
    assert not [k for k in kids if alive(k)], [k for k in kids if alive(k)]
