"""Training metrics in TensorBoard (default), W&B or MLflow, as Hugging Face's Trainer does with ``report_to``."""

from __future__ import annotations

import importlib.util
import json

import pytest

from skyloom.config import ConfigError, apply_overrides
from tests.model.helpers import make_square_corpus, tiny_cfg


def test_tensorboard_events_beside_metrics_jsonl(tmp_path):
    """The default run writes TensorBoard event files in RUN; TensorBoard's own reader sees the same
    loss curve as metrics.jsonl (which the dashboard keeps reading)."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    from skyloom.model.train import train

    corpus = make_square_corpus(tmp_path / "corpus", n=3)
    out = tmp_path / "run"
    train(tiny_cfg(steps=4), corpus.root, out, progress_bar=False)
    assert list(out.glob("events.out.tfevents.*")), sorted(p.name for p in out.iterdir())
    acc = EventAccumulator(str(out))
    acc.Reload()
    assert {"train/loss", "train/lr", "train/grad_norm"} <= set(acc.Tags()["scalars"])
    tb = {e.step: e.value for e in acc.Scalars("train/loss")}
    jl = {m["step"]: m["loss"] for m in map(json.loads, (out / "metrics.jsonl").read_text().splitlines())
          if m["kind"] == "train"}
    assert sorted(tb) == sorted(jl) == [1, 2, 3, 4]
    assert all(tb[s] == pytest.approx(jl[s], rel=1e-6) for s in jl)  # float32 in the event file

    # resuming to 6 steps: no duplicated points, the curve continues
    train(tiny_cfg(steps=6), corpus.root, out, progress_bar=False)
    acc = EventAccumulator(str(out))
    acc.Reload()
    assert [e.step for e in acc.Scalars("train/loss")] == [1, 2, 3, 4, 5, 6]


def test_report_to_none_writes_no_event_files(tmp_path):
    from skyloom.model.train import train

    corpus = make_square_corpus(tmp_path / "corpus", n=3)
    cfg = apply_overrides(tiny_cfg(steps=2), ["log.report_to=[]"])
    train(cfg, corpus.root, tmp_path / "run", progress_bar=False)
    assert not list((tmp_path / "run").glob("events.out.tfevents.*"))
    assert (tmp_path / "run" / "metrics.jsonl").exists()


def test_unknown_tracker_is_a_config_error_with_a_suggestion():
    with pytest.raises(ConfigError, match="Did you mean 'tensorboard'"):
        apply_overrides(tiny_cfg(), ["log.report_to=[tensorbord]"])


@pytest.mark.parametrize("name,module", [("wandb", "wandb"), ("mlflow", "mlflow")])
def test_missing_tracker_package_is_a_clear_error(tmp_path, name, module):
    if importlib.util.find_spec(module) is not None:
        pytest.skip(f"{module} is installed here; the offline run itself is covered where it is not")
    from skyloom.trackers import LogConfig, Trackers

    with pytest.raises(ConfigError, match=f"pip install {module}"):
        Trackers(LogConfig(report_to=(name,)), tmp_path, "run")


def test_wandb_and_mlflow_are_offline_and_get_every_point(tmp_path, monkeypatch):
    """The calls Trackers makes, recorded by stand-ins for the two packages (neither is installed here):
    W&B in offline mode inside the run folder, MLflow on a file store inside it, one point per step."""
    import sys
    import types

    calls: list[tuple] = []

    class Run:
        def log(self, values, step):
            calls.append(("wandb.log", step, dict(values)))

        def finish(self):
            calls.append(("wandb.finish",))

    wandb = types.SimpleNamespace(init=lambda **kw: calls.append(("wandb.init", kw)) or Run())
    mlflow = types.SimpleNamespace(
        set_tracking_uri=lambda uri: calls.append(("mlflow.uri", uri)),
        set_experiment=lambda name: calls.append(("mlflow.experiment", name)),
        start_run=lambda run_name: calls.append(("mlflow.start", run_name)),
        log_params=lambda p: calls.append(("mlflow.params", len(p))),
        log_metrics=lambda m, step: calls.append(("mlflow.log", step, dict(m))),
        end_run=lambda: calls.append(("mlflow.end",)))
    monkeypatch.setitem(sys.modules, "wandb", wandb)
    monkeypatch.setitem(sys.modules, "mlflow", mlflow)
    from skyloom.trackers import LogConfig, Trackers

    t = Trackers(LogConfig(report_to=("wandb", "mlflow")), tmp_path, "run", {"optim": {"lr": 1e-3}})
    t.log(1, "train", {"loss": 0.5, "note": "x"})
    t.log(2, "train", {"loss": 0.25})
    t.close()
    init = next(c[1] for c in calls if c[0] == "wandb.init")
    assert init["mode"] == "offline" and init["dir"] == str(tmp_path) and init["config"] == {"optim.lr": 1e-3}
    assert ("wandb.log", 2, {"train/loss": 0.25}) in calls and ("wandb.log", 1, {"train/loss": 0.5}) in calls
    uri = next(c[1] for c in calls if c[0] == "mlflow.uri")
    assert uri.startswith("file://") and uri.endswith("/mlruns")
    assert ("mlflow.log", 1, {"train_loss": 0.5}) in calls and ("mlflow.end",) in calls and ("wandb.finish",) in calls
