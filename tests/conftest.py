"""Shared fixtures: tiny synthetic videos, temporary corpora and runs; quiet progress bars."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

os.environ.setdefault("SKYLOOM_NO_PROGRESS", "1")
os.environ.setdefault("MUJOCO_GL", "egl")
os.environ.setdefault("PYOPENGL_PLATFORM", "egl")
os.environ.setdefault("RAY_ENABLE_UV_RUN_RUNTIME_ENV", "0")

ARTIFACTS = Path(__file__).resolve().parents[1] / "test-artifacts"


@pytest.fixture
def artifacts_dir() -> Path:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    return ARTIFACTS


def moving_square_video(T: int = 16, H: int = 32, W: int = 32, colour=(255, 40, 40), seed: int = 0) -> np.ndarray:
    """A coloured square moving right over a grey background: uint8 (T, H, W, 3)."""
    rng = np.random.default_rng(seed)
    v = np.full((T, H, W, 3), 90, np.uint8)
    s = max(2, H // 5)
    y = int(rng.integers(0, H - s))
    for t in range(T):
        x = int((t * (W - s)) / max(1, T - 1))
        v[t, y:y + s, x:x + s] = colour
    return v


@pytest.fixture
def tmp_corpus(tmp_path):
    from skyloom.corpus import Corpus

    return Corpus.create(tmp_path / "corpus")


@pytest.fixture(scope="session")
def ray_local():
    """One local Ray instance (2 CPUs, no dashboard) shared by every test that needs Ray."""
    from skyloom.raytools import init_ray

    ray = init_ray(address="local", num_cpus=2)
    yield ray


@pytest.fixture(scope="session")
def pg_server():
    """A throw-away PostgreSQL server for the session (tests/pgserver.py); skipped only where it is not installed."""
    from tests.pgserver import PgServer, find_bindir

    bindir = find_bindir()
    if bindir is None:
        pytest.skip("PostgreSQL server binaries (initdb, pg_ctl) not found on PATH, in /usr/lib/postgresql/*/bin "
                    "or $SKYLOOM_TEST_PG_BIN: apt-get install postgresql (make test installs it)")
    server = PgServer(bindir)
    yield server
    server.stop()


@pytest.fixture
def pg_url(pg_server) -> str:
    """The SQLAlchemy URL of a new, empty database on the session's PostgreSQL server."""
    return pg_server.new_database()
