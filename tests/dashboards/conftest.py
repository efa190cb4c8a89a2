"""Fixtures of the dashboard tests: one small world (runs, results store, videos, corpus) per session."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.dashboards.fixtures import make_corpus, make_gt_corpus, make_physics_run, make_runs, make_tiny_checkpoints


@pytest.fixture(scope="session")
def world(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("dash-world")
    paths = make_runs(root)
    paths["corpus"] = make_corpus(root)
    paths["root"] = root
    return paths


@pytest.fixture(scope="session")
def dash(world):
    from skyloom.dashboards import Dashboard

    return Dashboard(world["runs"], corpora=[world["corpus"]], cache_dir=world["root"] / "cache")


@pytest.fixture(scope="session")
def client(dash):
    from fastapi.testclient import TestClient

    from skyloom.dashboards import create_app

    with TestClient(create_app(dash), base_url="http://localhost") as c:
        yield c


@pytest.fixture(scope="session")
def sim_world(tmp_path_factory) -> dict[str, Path]:
    """Runs with a physics evaluation, and a corpus with simulator ground truth (``tiny_run`` adds a checkpoint)."""
    root = tmp_path_factory.mktemp("dash-sim")
    paths = make_physics_run(root / "runs")
    paths["corpus"] = make_gt_corpus(root)
    paths.update(root=root, runs=root / "runs", cache=root / "cache")
    return paths


@pytest.fixture(scope="session")
def sim_dash(sim_world):
    from skyloom.dashboards import Dashboard

    d = Dashboard(sim_world["runs"], corpora=[sim_world["corpus"]], cache_dir=sim_world["cache"])
    yield d
    d.close()


@pytest.fixture(scope="session")
def sim_client(sim_dash):
    from fastapi.testclient import TestClient

    from skyloom.dashboards import create_app

    with TestClient(create_app(sim_dash), base_url="http://localhost") as c:
        yield c


@pytest.fixture(scope="session")
def tiny_run(sim_world) -> Path:
    """A real vdit run (2 training steps, ~10-20 s) inside ``sim_world``'s runs, for the prompt box."""
    return make_tiny_checkpoints(sim_world["runs"], sim_world["root"] / "train-corpus")
