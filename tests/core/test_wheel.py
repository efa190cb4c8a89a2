"""The wheel works outside the checkout: it carries every preset, suite and dashboard file, and its
``skyloom`` runs render -> caption -> train -> eval suites from a folder holding a user's own
``model.py`` and ``eval/`` (decoys that raise on import), loading skyloom only from the wheel.

Installed as ``skyloom[all]`` it runs the whole pipeline; installed alone (the core) it captions,
trains and lists suites, and each backend whose extra is missing stops with one line naming it.

For speed the fresh venv sees the third-party dependencies already installed (torch, ray, ...)
through a ``.pth`` line naming this interpreter's site-packages folders; skyloom itself is
installed from the wheel into the venv and nowhere else on its path. So the wheel's declared
requirements (core, each extra) are checked against what is installed here, and "the core alone"
hides the optional backends from the venv's interpreter (an import hook), as if never installed.
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


# Written into the core-only venv's site-packages: the optional backends are not there for its interpreter.
HIDE_EXTRAS = '''
import sys

HIDDEN = {HIDDEN!r}


class _NotInstalled:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in HIDDEN:
            raise ModuleNotFoundError(f"No module named {{name!r}}", name=name)
        return None


sys.meta_path.insert(0, _NotInstalled())
'''

# The import names each extra adds (pyproject.toml [project.optional-dependencies]).
EXTRA_MODULES = {"render": ["mujoco"], "ray": ["ray"], "dashboard": ["fastapi", "uvicorn"], "unreal": ["unrealcv"],
                 "vlm": ["transformers"], "diffusers": ["diffusers", "accelerate", "sentencepiece"], "faiss": ["faiss"],
                 "trackers": ["wandb", "mlflow"], "postgres": ["psycopg"]}


def _requirements(wheel: Path, extra: str | None) -> list:
    """The wheel's Requires-Dist for the core (``extra=None``) or for one extra, as packaging Requirements."""
    from email.parser import Parser

    from packaging.requirements import Requirement

    with zipfile.ZipFile(wheel) as z:
        meta = Parser().parsestr(z.read(next(n for n in z.namelist() if n.endswith(".dist-info/METADATA"))).decode())
    out = []
    for line in meta.get_all("Requires-Dist") or []:
        r = Requirement(line)
        env = {"extra": extra or ""}
        if (r.marker is None and extra is None) or (r.marker is not None and extra and r.marker.evaluate(env)):
            out.append(r)
    return out


def _unsatisfied(reqs: list) -> list[str]:
    """Requirements that the distributions installed here do not satisfy (name missing or version outside)."""
    bad = []
    for r in reqs:
        if r.name == "skyloom":
            continue
        try:
            version = metadata.version(r.name)
        except metadata.PackageNotFoundError:
            bad.append(f"{r} (not installed)")
            continue
        if not r.specifier.contains(version, prereleases=True):
            bad.append(f"{r} (installed {version})")
    return bad


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


def _clean_env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "SKYLOOM_CONFIGS", "RAY_ADDRESS")}


def _build_wheel(tmp_path: Path) -> Path:
    """The wheel, built from a copy of the sources."""
    src = _source_tree(tmp_path / "src")
    dist = tmp_path / "dist"
    _run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(dist), str(src)],
         env={**_clean_env(), "PYTHONPATH": _build_path()})
    (wheel,) = dist.glob("skyloom-*.whl")
    return wheel


def _venv_with_wheel(venv: Path, wheel: Path, env: dict[str, str]) -> tuple[Path, Path]:
    """A fresh venv that sees this interpreter's third-party packages and skyloom from ``wheel`` only."""
    _run([sys.executable, "-m", "venv", "--without-pip", str(venv)], env=env)
    py = venv / "bin" / "python"
    purelib = "import sysconfig; print(sysconfig.get_paths()['purelib'])"
    site = Path(_run([str(py), "-c", purelib], env=env).stdout.strip())
    deps = [p for p in sys.path if p.endswith("site-packages") and Path(p).is_dir()]
    assert sysconfig.get_paths()["purelib"] in deps
    (site / "_deps_from_test_runner.pth").write_text("\n".join(deps) + "\n")
    _run([sys.executable, "-m", "pip", "--python", str(py), "install", "--no-deps", "--no-index", "-q", str(wheel)],
         env=env)
    return py, site


@pytest.mark.slow
def test_core_install_runs_without_backends_and_names_each_missing_extra(tmp_path):
    """`pip install skyloom`: core requirements only; caption, train and eval suites work; a backend says its extra."""
    wheel = _build_wheel(tmp_path)
    core = {r.name.lower() for r in _requirements(wheel, None)}
    optional = {"mujoco", "ray", "fastapi", "uvicorn", "unrealcv", "transformers", "diffusers", "faiss-cpu", "psycopg"}
    assert core & optional == set(), f"optional backends among the core requirements: {core & optional}"
    assert {"torch", "open-clip-torch", "sqlalchemy", "typer"} <= core
    all_extra = {r.name.lower() for e in EXTRA_MODULES for r in _requirements(wheel, e)}
    assert optional <= all_extra | {"skyloom"}
    (everything,) = _requirements(wheel, "all")
    assert everything.name == "skyloom" and everything.extras == set(EXTRA_MODULES)
    assert _unsatisfied(_requirements(wheel, None)) == []

    env = _clean_env()
    py, site = _venv_with_wheel(tmp_path / "venv", wheel, env)
    hidden = sorted(m for mods in EXTRA_MODULES.values() for m in mods)
    (site / "_hide_extras.py").write_text(HIDE_EXTRAS.format(HIDDEN=hidden))
    (site / "_hide_extras.pth").write_text("import _hide_extras\n")
    exe = tmp_path / "venv" / "bin" / "skyloom"
    r = subprocess.run([str(py), "-c", "import mujoco"], capture_output=True, text=True, env=env)
    assert r.returncode == 1 and "No module named 'mujoco'" in r.stderr  # the backends are gone for this venv

    from tests.model.helpers import make_square_corpus

    work = tmp_path / "work"
    make_square_corpus(work / "corpus", n=2, captions=False)
    run_env = {**env, "SKYLOOM_NO_PROGRESS": "1", "HOME": str(work / "home")}

    def skyloom(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([str(exe), *args], cwd=work, env=run_env, capture_output=True, text=True, timeout=300)

    for args in (["eval", "suites"], ["caption", "corpus", "--captioner", "heuristic", "--set", "executor=auto"],
                 ["train", "corpus", "--out", "run", "--steps", "1", "--set", "dit.depth=1", "--set", "num_threads=1",
                  "--set", "data.buckets=[{height: 16, width: 16, num_frames: 8, batch_size: 2}]",
                  "--allow-uncaptioned"],  # heuristic captions are not a kind the text model trains on
                 ["report", "--runs", "run", "--out", "report.html"]):
        r = skyloom(*args)
        assert r.returncode == 0 and "Traceback" not in r.stderr, f"{args}: {r.stderr[-2000:]}"
    missing = [(["datagen", "render", "-n", "1", "--out", "c2"], "render"),
               (["dashboard", "--runs", "run"], "dashboard"),
               (["caption", "corpus", "--set", "executor=ray", "--set", "overwrite=true"], "ray"),
               (["train", "corpus", "--out", "run2", "--num-workers", "2", "--allow-uncaptioned"], "ray"),
               (["eval", "--suite", "physics", "--ckpt", "run"], "render"),
               (["caption", "corpus", "--captioner", "vlm-local", "--set", "vlm_local.model_path=x",
                 "--set", "overwrite=true"], "vlm"),
               (["leaderboard", "--db", "postgresql://skyloom@127.0.0.1:9/results"], "postgres")]
    for args, extra in missing:
        r = skyloom(*args)
        errors = [ln for ln in r.stderr.splitlines() if ln.startswith("error:")]
        assert r.returncode == 2 and len(errors) == 1 and f"pip install 'skyloom[{extra}]'" in errors[0] \
            and "Traceback" not in r.stderr, f"{args}: rc={r.returncode} {r.stderr[-1500:]}"


@pytest.mark.slow
def test_wheel_installs_and_runs_the_pipeline_outside_the_checkout(tmp_path):
    # 1. build the wheel from a copy of the sources; `skyloom[all]`'s requirements are what is installed here
    wheel = _build_wheel(tmp_path)
    env = _clean_env()
    for extra in ("all", *EXTRA_MODULES):
        assert _unsatisfied(_requirements(wheel, extra)) == [], extra

    # 2. it carries every YAML preset and suite, and the dashboard's static files
    names = set(zipfile.ZipFile(wheel).namelist())
    presets = sorted(p.relative_to(REPO / "configs").as_posix() for p in (REPO / "configs").rglob("*.yaml"))
    assert len(presets) >= 20
    assert [p for p in presets if f"skyloom/configs/{p}" not in names] == []
    static = sorted(p.name for p in (REPO / "dashboards" / "static").iterdir() if p.suffix in (".html", ".js", ".css"))
    assert {"index.html", "app.js", "app.css"} <= set(static)
    assert [s for s in static if f"skyloom/dashboards/static/{s}" not in names] == []

    # 3. a fresh venv outside the checkout; skyloom only from the wheel, every extra's backend importable
    venv = tmp_path / "venv"
    py, site = _venv_with_wheel(venv, wheel, env)
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
