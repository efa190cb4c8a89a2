"""Outputs honour the umask: a teammate in the same group can read a shared corpus, run or report.

Atomic writes go through a temporary file (mode 0600); the final file must get the mode a plain
``open(path, "w")`` gives, ``0o666 & ~umask`` (0644 under umask 022, 0640 under 027).
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest


@pytest.fixture(params=[0o022, 0o027])
def umask(request):
    old = os.umask(request.param)
    yield request.param
    os.umask(old)


def _modes(root: Path) -> dict[str, int]:
    return {str(p.relative_to(root)): stat.S_IMODE(p.stat().st_mode) for p in root.rglob("*") if p.is_file()}


@pytest.mark.slow
def test_every_output_honours_the_umask(tmp_path, umask):
    from skyloom.dashboards import Dashboard
    from skyloom.dashboards.report import build_report
    from skyloom.eval.harness.runner import EvalConfig, run_eval
    from skyloom.model.train import train
    from skyloom.trackers import LogConfig
    from tests.dashboards.fixtures import make_runs
    from tests.eval import fakes
    from tests.model.helpers import make_square_corpus, tiny_cfg

    want = 0o666 & ~umask
    corpus = make_square_corpus(tmp_path / "corpus", n=2)  # clips (mp4) + a manifest part (parquet)
    corpus.export_webdataset(tmp_path / "shards", shard_size=1)  # tar shards
    train(tiny_cfg(steps=1, log=LogConfig(report_to=())),
          corpus.root, tmp_path / "run", progress_bar=False)  # checkpoints
    fakes.register_fake_extractor()
    ref = fakes.make_reference_corpus(tmp_path / "ref")
    suite = fakes.write_suite(tmp_path / "fake.yaml", reference=ref)
    ck = fakes.make_checkpoint(tmp_path / "runs", "modes", 10, noise=8.0)
    run_eval(EvalConfig(suite=str(suite), checkpoints=(str(ck),), cache_dir=str(tmp_path / "cache"),
                        pipeline_loader=fakes.LOADER, n_boot=50, set_boot=5), metrics=fakes.FAKE_METRICS)
    world = make_runs(tmp_path / "world")
    dash = Dashboard([world["runs"]])
    try:
        build_report(dash, tmp_path / "report.html")
    finally:
        dash.close()

    modes = _modes(tmp_path)
    kinds = {".mp4", ".parquet", ".tar", ".safetensors", ".json", ".html", ".yaml"}
    assert kinds <= {Path(k).suffix for k in modes}, sorted(modes)
    assert any(k.endswith("results.json") for k in modes) and any("checkpoints" in k for k in modes)
    wrong = {k: oct(m) for k, m in modes.items() if Path(k).suffix in kinds and m != want}
    assert not wrong, f"expected {oct(want)} under umask {oct(umask)}: {wrong}"
