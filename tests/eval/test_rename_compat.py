"""Evaluations stored before the stages moved under ``skyloom.`` stay valid.

Eval ids hash the pipeline loader string. Stores written before the rename hold ids made with the
default loader spelled ``model:load_pipeline``; the new default ``skyloom.model:load_pipeline`` must
give the same ids (so a rerun resumes instead of re-generating), and the old spelling must still
load skyloom's pipeline, never a user's own top-level ``model`` module.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import subprocess
import sys

from skyloom.eval.harness.runner import EvalConfig, _context, _id_loader
from skyloom.eval.harness.suites import load_suite
from tests.eval import fakes


def test_eval_ids_hash_the_pre_rename_loader_spelling(tmp_path):
    suite = load_suite(fakes.write_suite(tmp_path / "fake.yaml"), validate=False)
    ck = fakes.make_checkpoint(tmp_path / "runs", "r", 3)
    new = _context(suite, EvalConfig(), str(ck))  # default loader: skyloom.model:load_pipeline
    old = _context(suite, dataclasses.replace(EvalConfig(), pipeline_loader="model:load_pipeline"), str(ck))
    assert EvalConfig().pipeline_loader == "skyloom.model:load_pipeline"
    assert new.eval_id == old.eval_id and new.eval_dir == old.eval_dir
    # the id is the one the pre-rename code computed: sha256 of this identity, loader spelled the old way
    ident = {"ckpt": str(ck.resolve()), "marker": (ck / "COMPLETE").read_text(), "suite": suite.content_hash(),
             "loader": "model:load_pipeline"}
    h = hashlib.sha256(json.dumps(ident, sort_keys=True).encode()).hexdigest()[:10]
    assert new.eval_id.endswith(h)
    # other loaders are hashed as given
    assert _id_loader(fakes.LOADER) == fakes.LOADER and _id_loader("skyloom.eval.x:f") == "eval.x:f"


def test_old_loader_spelling_loads_skyloom_not_a_users_model_module(tmp_path):
    (tmp_path / "model.py").write_text("raise ImportError('the user module was imported')\n")
    code = ("from skyloom.eval.harness.generate import LEGACY_LOADERS; from skyloom.registry import resolve; "
            "f = resolve(LEGACY_LOADERS['model:load_pipeline']); print(f.__module__)")
    out = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, check=False)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip().startswith("skyloom.model")
