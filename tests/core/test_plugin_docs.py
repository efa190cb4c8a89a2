"""The docs' tables of built-in plug-ins are generated from ``skyloom plugins``; a stale table fails here.

Regenerate with ``python -m skyloom.plugins --write-docs``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from skyloom.plugins import DOC_BLOCKS, listing, markdown_blocks, render_docs

ROOT = Path(__file__).resolve().parents[2]


def test_docs_tables_of_builtins_match_the_registries():
    rows = listing(builtin_only=True)
    stale = [doc for doc, (old, new) in render_docs(ROOT, markdown_blocks(rows)).items() if old != new]
    assert not stale, f"out of date: {stale}; run python -m skyloom.plugins --write-docs"
    text = (ROOT / "docs" / "metrics.md").read_text()
    for r in rows:  # every built-in metric and extractor is in the table, with each option
        if r["kind"] in ("metric", "feature extractor"):
            assert f"| `{r['name']}` |" in text
            for f in r["config"]:
                assert f"`{f['name']}`={json.dumps(f['default'])}" in text


def test_a_stale_table_is_found_and_rewritten(tmp_path):
    for doc in DOC_BLOCKS:
        (tmp_path / doc).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / doc).write_text((ROOT / doc).read_text())
    blocks = markdown_blocks()
    edited = (tmp_path / "docs" / "metrics.md").read_text().replace("| `fvd` |", "| `fvd-old` |")
    (tmp_path / "docs" / "metrics.md").write_text(edited)
    out = render_docs(tmp_path, blocks)
    old, new = out["docs/metrics.md"]
    assert old != new and "| `fvd` |" in new and "fvd-old" not in new
    assert out["docs/architecture.md"][0] == out["docs/architecture.md"][1]


def test_check_docs_command():
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    r = subprocess.run([sys.executable, "-m", "skyloom.plugins", "--check-docs"], capture_output=True, text=True,
                       env=env, timeout=300, cwd=ROOT)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "up to date"
