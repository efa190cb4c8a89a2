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


# -- the browser: Debian's headless Chromium through Playwright (tests marked ``browser``) ----------------
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]


def launch_chromium(playwright, extra_args: tuple[str, ...] = ()):
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: install Debian's chromium (make sysdeps, or apt-get install chromium)")
    return playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS + list(extra_args))


@pytest.fixture(scope="session")
def playwright_session():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        yield p


@pytest.fixture(scope="session")
def browser(playwright_session):
    b = launch_chromium(playwright_session)
    yield b
    b.close()


@pytest.fixture
def page(browser):
    ctx = browser.new_context(viewport={"width": 1280, "height": 900})
    pg = ctx.new_page()
    errors: list[str] = []
    pg.on("pageerror", lambda e: errors.append(str(e)))
    pg.errors = errors
    yield pg
    ctx.close()
    assert errors == [], f"JavaScript errors: {errors}"


def open_view(page, base: str, view: str) -> None:
    """Open ``base#view`` (``view`` may carry ``?query``) and wait until the view has rendered."""
    page.goto(f"{base}#{view}")
    page.wait_for_selector(f"#view-{view.split('?')[0]}[data-ready='1']", timeout=30000)
