"""The wheel works outside the checkout: it carries every preset, suite and dashboard file, and its
``skyloom`` runs render -> caption -> train -> eval suites from a folder holding a user's own
``model.py`` and ``eval/`` (decoys that raise on import), loading skyloom only from the wheel.

For speed the fresh venv sees the third-party dependencies already installed (torch, ray, ...)
through a ``.pth`` line naming this interpreter's site-packages folders; skyloom itself is
installed from the wheel into the venv and nowhere else on its path.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import sysconfig
import tomllib
import zipfile
from importlib import metadata
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]

# Written into the work folder (on PYTHONPATH): every process, Ray workers included, records where
# each loaded skyloom module and any top-level `model`/`eval` module came from.
SITECUSTOMIZE = '''
import atexit, json, os, sys

def _dump():
    mods = {n: getattr(m, "__file__", None) for n, m in list(sys.modules.items())
            if n == "skyloom" or n.startswith("skyloom.") or n in ("model", "eval")}
    out = os.path.join(os.environ["LOADED_DIR"], f"{os.getpid()}.json")
    with open(out, "w") as f:
        json.dump({"argv": sys.argv, "modules": mods}, f)

if os.environ.get("LOADED_DIR"):
    atexit.register(_dump)
'''


def _version(v: str) -> tuple[int, ...]:
    return tuple(int(p) for p in v.split(".")[:3] if p.isdigit())


def _build_path() -> str:
    """PYTHONPATH for the build: the site folder of the newest setuptools visible here (a venv's bundled
    setuptools may predate the built-in bdist_wheel and shadow a newer one)."""
    found = [(d.version, Path(d.locate_file(""))) for d in metadata.distributions()
             if d.metadata["Name"] == "setuptools"]
    return str(max(found, key=lambda f: _version(f[0]))[1]) if found else ""


def _source_tree(dest: Path) -> Path:
    """Copy what the wheel is built from (pyproject's package folders + README) away from the checkout."""
    pyproject = tomllib.loads((REPO / "pyproject.toml").read_text())
    folders = set(pyproject["tool"]["setuptools"]["package-dir"].values())
    for name in sorted(folders):
        shutil.copytree(REPO / name, dest / name, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    for f in ("pyproject.toml", pyproject["project"]["readme"]):
        shutil.copy2(REPO / f, dest / f)
    return dest


def _run(cmd: list[str], **kw) -> subprocess.CompletedProcess:
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=300, **kw)
    assert r.returncode == 0, f"{cmd} exit {r.returncode}\nstdout:\n{r.stdout[-3000:]}\nstderr:\n{r.stderr[-5000:]}"
    assert "Traceback" not in r.stdout + r.stderr
    return r


@pytest.mark.slow
def test_wheel_installs_and_runs_the_pipeline_outside_the_checkout(tmp_path):
    # 1. build the wheel from a copy of the sources
    src = _source_tree(tmp_path / "src")
    dist = tmp_path / "dist"
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "SKYLOOM_CONFIGS", "RAY_ADDRESS")}
    _run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(dist), str(src)],
         env={**env, "PYTHONPATH": _build_path()})
    (wheel,) = dist.glob("skyloom-*.whl")

    # 2. it carries every YAML preset and suite, and the dashboard's static files
    names = set(zipfile.ZipFile(wheel).namelist())
    presets = sorted(p.relative_to(REPO / "configs").as_posix() for p in (REPO / "configs").rglob("*.yaml"))
    assert len(presets) >= 20
    assert [p for p in presets if f"skyloom/configs/{p}" not in names] == []
    static = sorted(p.name for p in (REPO / "dashboards" / "static").iterdir() if p.suffix in (".html", ".js", ".css"))
    assert {"index.html", "app.js", "app.css"} <= set(static)
    assert [s for s in static if f"skyloom/dashboards/static/{s}" not in names] == []

    # 3. a fresh venv outside the checkout; skyloom only from the wheel
    venv = tmp_path / "venv"
    _run([sys.executable, "-m", "venv", "--without-pip", str(venv)], env=env)
    py = venv / "bin" / "python"
    purelib = "import sysconfig; print(sysconfig.get_paths()['purelib'])"
    site = Path(_run([str(py), "-c", purelib], env=env).stdout.strip())
    deps = [p for p in sys.path if p.endswith("site-packages") and Path(p).is_dir()]
    assert sysconfig.get_paths()["purelib"] in deps
    (site / "_deps_from_test_runner.pth").write_text("\n".join(deps) + "\n")
    _run([sys.executable, "-m", "pip", "--python", str(py), "install", "--no-deps", "--no-index", "-q", str(wheel)],
         env=env)
    exe = venv / "bin" / "skyloom"
    assert exe.read_text().splitlines()[0] == f"#!{py}"

    # 4. a user's folder with its own model.py and eval/ package, both on the path
    work = tmp_path / "work"
    (work / "eval").mkdir(parents=True)
    (work / "model.py").write_text("raise ImportError('decoy: the user folder model.py was imported')\n")
    (work / "eval" / "__init__.py").write_text("raise ImportError('decoy: the user folder eval/ was imported')\n")
    (work / "sitecustomize.py").write_text(SITECUSTOMIZE)
    loaded = work / "loaded"
    loaded.mkdir()
    run_env = {**env, "PYTHONPATH": str(work), "LOADED_DIR": str(loaded), "SKYLOOM_NO_PROGRESS": "1",
               "HOME": str(work / "home")}

    def skyloom(*args: str) -> subprocess.CompletedProcess:
        return _run([str(exe), *args], cwd=work, env=run_env)

    skyloom("datagen", "render", "-n", "2", "--preset", "balls-bounce", "--out", "corpus",
            "--set", "scene.num_frames=8", "--set", "num_cpus=1", "--set", "scenes_per_task=2")
    skyloom("caption", "corpus", "--captioner", "scene-graph", "--set", "executor=local")
    skyloom("train", "corpus", "--out", "run", "--steps", "2", "--set", "dit.depth=1", "--set", "num_threads=1",
            "--set", "data.buckets=[{height: 32, width: 32, num_frames: 8, batch_size: 2}]")
    r = skyloom("eval", "suites")
    assert all(s in r.stdout + r.stderr for s in ("smoke", "standard", "physics"))

    # 5. what ran: the corpus has 2 captioned clips, the run 2 steps, and every skyloom module came from the wheel
    from skyloom.corpus import Corpus

    recs = Corpus(work / "corpus").records()
    assert len(recs) == 2 and all({c.kind for c in r.captions} == {"short", "dense"} for r in recs)
    assert (work / "run" / "checkpoints" / "step-00000002" / "COMPLETE").exists()
    dumps = [json.loads(p.read_text()) for p in loaded.glob("*.json")]
    seen = {m: f for d in dumps for m, f in d["modules"].items()}
    for needed in ("skyloom.datagen.render", "skyloom.captioning.runner", "skyloom.model.train",
                   "skyloom.eval.harness.suites", "skyloom.config"):
        assert needed in seen, f"{needed} not loaded by any process"
    assert "model" not in seen and "eval" not in seen  # the decoys were never imported
    outside = {m: f for m, f in seen.items() if f is not None and not Path(f).is_relative_to(site)}
    assert outside == {}, f"skyloom modules loaded from outside the wheel: {outside}"
    assert any(str(site) in f for f in seen.values() if f)
