"""Fixtures of the dashboard tests: one small world (runs, results store, videos, corpus) per session."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.dashboards.fixtures import make_corpus, make_runs


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
