"""Run mypy over skyloom as it is installed: ``skyloom.eval`` is the folder ``eval/``, and so on.

mypy cannot follow setuptools' editable-install finder, and a folder named ``eval`` is not a module
named ``skyloom.eval``; so this lays out the package as the wheel does, as symbolic links under
``build/mypy-tree/skyloom`` (from pyproject.toml's ``package-dir``), and runs mypy there with the
``[tool.mypy]`` settings. Usage: ``python .ci/typecheck.py [extra mypy arguments]`` (``make lint``).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
TREE = REPO / "build" / "mypy-tree"


def link_tree() -> Path:
    """``build/mypy-tree/skyloom`` laid out like the installed package, as links into the checkout."""
    pyproject = tomllib.loads((REPO / "pyproject.toml").read_text())
    package_dir: dict[str, str] = pyproject["tool"]["setuptools"]["package-dir"]
    shutil.rmtree(TREE, ignore_errors=True)
    pkg = TREE / "skyloom"
    pkg.mkdir(parents=True)
    for f in sorted((REPO / package_dir["skyloom"]).glob("*.py")):
        (pkg / f.name).symlink_to(f)
    for name, folder in package_dir.items():
        if name != "skyloom":
            (pkg / name.split(".", 1)[1]).symlink_to(REPO / folder, target_is_directory=True)
    return TREE


# What `make lint` checks: every core module, and these packages (issue 22: core, eval and model at least).
CHECKED_PACKAGES = ("skyloom.eval", "skyloom.model")


def default_targets() -> list[str]:
    """``-m skyloom -m skyloom.cli ... -p skyloom.eval -p skyloom.model``."""
    targets = ["-m", "skyloom"]
    for f in sorted((REPO / "skyloom").glob("*.py")):
        if f.stem != "__init__":
            targets += ["-m", f"skyloom.{f.stem}"]
    for package in CHECKED_PACKAGES:
        targets += ["-p", package]
    return targets


def main(argv: list[str]) -> int:
    tree = link_tree()
    targets = [] if any(not a.startswith("-") for a in argv) else default_targets()
    cmd = [sys.executable, "-m", "mypy", "--config-file", str(REPO / "pyproject.toml"), *targets, *argv]
    env = {**os.environ, "MYPY_CACHE_DIR": str(REPO / ".mypy_cache")}
    return subprocess.call(cmd, cwd=tree, env=env)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
