"""Ray helper: a local instance sized for this machine by default, a real cluster on request.

``RAY_ADDRESS`` or ``--ray-address`` joins an existing cluster; otherwise a local instance
starts with ``num_cpus`` = the machine's cores, a modest object store and no dashboard (the
laptop set-up of Ray's ``ray.init`` documentation: ``num_cpus``, ``object_store_memory``,
``include_dashboard=False``). A local instance is stopped when its driver dies, ``kill -9``
included (:func:`start_reaper`).
"""

from __future__ import annotations

import logging
import os
import sys
from typing import Any

logger = logging.getLogger(__name__)

DEFAULT_OBJECT_STORE_BYTES = 512 * 1024 * 1024


def init_ray(address: str | None = None, num_cpus: int | None = None,
             object_store_memory: int | None = None, **kwargs: Any):
    """Start or join Ray once per process; returns the ``ray`` module.

    Args:
        address: cluster address (``ray://host:10001`` or ``auto``); defaults to ``$RAY_ADDRESS``;
            ``None``/``"local"`` starts a local instance.
        num_cpus: CPUs for a local instance (default: all cores).
        object_store_memory: bytes for a local object store (default 512 MiB).
    """
    import ray

    if ray.is_initialized():
        return ray
    address = address or os.environ.get("RAY_ADDRESS") or None
    os.environ.setdefault("RAY_DEDUP_LOGS", "0")
    os.environ.setdefault("RAY_ENABLE_UV_RUN_RUNTIME_ENV", "0")
    common = dict(ignore_reinit_error=True, logging_level=logging.WARNING, log_to_driver=True, **kwargs)
    if address and address != "local":
        logger.info("joining Ray cluster at %s", address)
        ray.init(address=address, **common)
    else:
        os.environ.pop("RAY_ADDRESS", None)
        ray.init(num_cpus=num_cpus or os.cpu_count() or 1,
                 object_store_memory=object_store_memory or DEFAULT_OBJECT_STORE_BYTES,
                 include_dashboard=False, **common)
        start_reaper()
    return ray


# The reaper: a small process in its own session that follows the driver's process tree and, once
# the driver is gone, kills what is left of it. Ray's own fate sharing stops the GCS and the raylet
# when the driver that started them is killed with SIGKILL, but the raylet's agents
# (ray::DashboardAgent, ray::RuntimeEnvAgent) were left running (measured with Ray 2.60).
_REAPER = r"""
import os, signal, sys, time
import psutil
me = os.getpid()
seen = {}
for item in sys.argv[3:]:  # the driver's children when it started us: we may start after it died
    pid, t = item.split(":")
    try:
        p = psutil.Process(int(pid))
        if abs(p.create_time() - float(t)) < 0.01:
            seen[p.pid] = p
    except psutil.Error:
        pass
def alive(p):
    try:
        return p.is_running() and p.status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False
try:
    driver = psutil.Process(int(sys.argv[1]))
except psutil.Error:
    driver = None
while driver is not None and alive(driver):
    try:
        for c in driver.children(recursive=True):
            if c.pid != me and c.pid not in seen:
                seen[c.pid] = c
    except psutil.Error:
        pass
    time.sleep(float(sys.argv[2]))
left = [p for p in seen.values() if alive(p)]
for p in left:
    try:
        p.send_signal(signal.SIGTERM)
    except psutil.Error:
        pass
gone, still = psutil.wait_procs(left, timeout=3)
for p in still:
    try:
        p.kill()
    except psutil.Error:
        pass
"""


def start_reaper(poll_s: float = 0.5):
    """Start the reaper of this driver's Ray processes (see ``_REAPER``); returns its ``Popen``.

    It stops every process the driver started (the local Ray instance's GCS, raylet, agents and
    workers) when the driver dies, however it dies (``kill -9`` included); after a normal exit it
    finds nothing left. It lives in its own session, so Ctrl-C in the terminal does not reach it.
    """
    import subprocess

    import psutil

    kids = [f"{c.pid}:{c.create_time()}" for c in psutil.Process().children(recursive=True)]
    return subprocess.Popen([sys.executable, "-c", _REAPER, str(os.getpid()), str(poll_s), *kids],
                            start_new_session=True, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)


def shutdown_ray() -> None:
    import ray

    if ray.is_initialized():
        ray.shutdown()


EXECUTORS = ("auto", "local", "ray")


def use_ray(executor: str, n_items: int, min_items: int, address: str | None = None) -> bool:
    """Whether a job of ``n_items`` should run on Ray: the ``auto`` executor's rule, shared by stages.

    ``ray``: always; ``local``: never; ``auto``: when a cluster address is given (argument or
    ``$RAY_ADDRESS``), when Ray is already running in this process (nothing to start), or when the
    job has at least ``min_items`` items, the size from which starting a local Ray instance pays
    for itself (measured per stage in docs/benchmarks.md). Smaller jobs run in-process.

    Raises:
        ValueError: an executor other than auto, local, ray.
    """
    if executor not in EXECUTORS:
        raise ValueError(f"executor {executor!r} is not one of: {', '.join(EXECUTORS)}")
    if executor != "auto":
        return executor == "ray"
    if address and address != "local":
        return True
    if os.environ.get("RAY_ADDRESS") and address != "local":
        return True
    ray = sys.modules.get("ray")  # imported and initialised already: joining costs nothing
    if ray is not None and getattr(ray, "is_initialized", lambda: False)():
        return True
    return n_items >= max(1, min_items)


def node_id() -> str:
    """The id of the Ray node this code runs on ("" outside Ray); jobs record it in their stats."""
    ray = sys.modules.get("ray")
    if ray is None or not ray.is_initialized():
        return ""
    try:
        return ray.get_runtime_context().get_node_id()
    except Exception:  # noqa: BLE001 - diagnostics only
        return ""
