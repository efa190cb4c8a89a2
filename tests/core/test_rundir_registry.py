"""The run directory contract and the plug-in registry."""

from __future__ import annotations

import pytest

from skyloom.registry import Registry, RegistryError
from skyloom.rundir import RunDir, RunError, find_runs, resolve_checkpoint, run_of_checkpoint


def test_checkpoints_are_atomic_and_resolved(tmp_path):
    run = RunDir.create(tmp_path / "run", name="r1", preset="vdit-tiny")
    with run.begin_checkpoint(0) as d:
        (d / "dit").mkdir()
        (d / "dit" / "config.json").write_text("{}")
    with pytest.raises(RuntimeError):
        with run.begin_checkpoint(10) as d:
            (d / "half").write_text("x")
            raise RuntimeError("crash mid-write")
    assert [s for s, _ in run.checkpoints()] == [0]
    assert resolve_checkpoint(run.root) == run.checkpoint_dir(0)
    assert run_of_checkpoint(run.checkpoint_dir(0)).name == "r1"
    (run.root / "checkpoints" / "step-00000020").mkdir()
    with pytest.raises(RunError, match="incomplete"):
        resolve_checkpoint(run.root / "checkpoints" / "step-00000020")
    with pytest.raises(RunError, match="no such"):
        resolve_checkpoint(tmp_path / "nope")
    assert [r.name for r in find_runs(tmp_path)] == ["r1"]


def test_metrics_log_tolerates_a_torn_line_and_truncates_on_resume(tmp_path):
    run = RunDir.create(tmp_path / "run")
    for s in range(5):
        run.log_metrics(s, loss=1.0 / (s + 1))
    with open(run.metrics_path, "a") as f:
        f.write('{"step": 5, "lo')  # crash mid-line
    assert [m["step"] for m in run.metrics("train")] == [0, 1, 2, 3, 4]
    run.truncate_metrics(2)
    assert [m["step"] for m in run.metrics()] == [0, 1, 2]


def test_registry_duplicates_unknown_names_and_lazy_entries():
    reg: Registry = Registry("metric", configured=False)  # a plain lookup table (plug-in checks: test_plugins)

    @reg.register("fvd")
    def fvd():
        return 1

    with pytest.raises(RegistryError, match="duplicate metric name 'fvd'"):
        reg.register("fvd")(lambda: 2)
    with pytest.raises(RegistryError, match=r"unknown metric 'fdv'\. Did you mean 'fvd'\?"):
        reg.get("fdv")
    reg.register_lazy("sqrt", "math:sqrt")
    assert reg.get("sqrt")(9.0) == 3.0
    assert reg.names() == ["fvd", "sqrt"]
    with pytest.raises(RegistryError, match="module:attr"):
        reg.register_lazy("bad", "math.sqrt")
