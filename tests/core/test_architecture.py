"""docs/architecture.md's statements about the code, checked against the code.

- each stage package's ``__init__`` imports lazily: importing it loads none of its submodules and
  none of the heavy dependencies;
- the stages import each other only as the "Who imports whom" table lists, and the dashboards reach
  the model only through ``skyloom.model.load_pipeline``.
"""

from __future__ import annotations

import ast
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
STAGES = ("datagen", "captioning", "model", "eval", "dashboards")
HEAVY = ("torch", "numpy", "fastapi", "mujoco", "av", "ray", "open_clip", "cv2", "sqlalchemy")


@pytest.mark.parametrize("stage", STAGES)
def test_stage_init_imports_lazily(stage):
    code = (f"import sys, skyloom.{stage} as m; "
            f"print([k for k in sys.modules if k.startswith('skyloom.{stage}.') or k.split('.')[0] in {HEAVY!r}]); "
            "print(all(hasattr(m, n) for n in m.__all__))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300, check=True)
    loaded, public_ok = out.stdout.splitlines()
    assert loaded == "[]", f"import skyloom.{stage} loaded {loaded}"
    assert public_ok == "True"  # every listed public name resolves


def cross_stage_imports() -> dict[tuple[str, str], set[str]]:
    """(importer stage, imported stage) -> the imported modules, from every module's import statements."""
    out: dict[tuple[str, str], set[str]] = {}
    for stage in STAGES:
        for path in (ROOT / stage).rglob("*.py"):
            for node in ast.walk(ast.parse(path.read_text())):
                names = ([a.name for a in node.names] if isinstance(node, ast.Import) else
                         [node.module or ""] if isinstance(node, ast.ImportFrom) else [])
                for mod in names:
                    parts = mod.split(".")
                    if len(parts) > 1 and parts[0] == "skyloom" and parts[1] in STAGES and parts[1] != stage:
                        out.setdefault((stage, parts[1]), set()).add(mod)
                        if (stage, parts[1]) == ("dashboards", "model") and isinstance(node, ast.ImportFrom):
                            assert mod == "skyloom.model" and [a.name for a in node.names] == ["load_pipeline"], (
                                f"{path}: dashboards import {mod} {[a.name for a in node.names]}")
    return out


def documented_edges() -> set[tuple[str, str]]:
    text = (ROOT / "docs" / "architecture.md").read_text()
    section = text.split("### Who imports whom", 1)[1].split("\n## ", 1)[0]
    edges = set()
    for line in section.splitlines():
        m = re.match(r"\| `(\w+)` \| (.*?) \|", line)
        if m:
            edges |= {(m.group(1), s) for s in re.findall(r"`(\w+)` \(", m.group(2)) if s in STAGES}
    return edges


def test_cross_stage_imports_are_the_documented_ones():
    found = cross_stage_imports()
    documented = documented_edges()
    assert documented, "no table under '### Who imports whom'"
    undocumented = {e: sorted(m) for e, m in found.items() if e not in documented}
    assert not undocumented, f"imports missing from docs/architecture.md's 'Who imports whom': {undocumented}"
    assert not any(imp == "model" and src != "dashboards" for src, imp in found), found
