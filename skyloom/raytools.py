"""Ray helper: a local instance sized for this machine by default, a real cluster on request.

``RAY_ADDRESS`` or ``--ray-address`` joins an existing cluster; otherwise a local instance
starts with ``num_cpus`` = the machine's cores, a modest object store and no dashboard (the
laptop default, see ../shared/REFERENCE.md "Ray on a small machine").
"""

from __future__ import annotations

import logging
import os
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
    return ray


def shutdown_ray() -> None:
    import ray

    if ray.is_initialized():
        ray.shutdown()
