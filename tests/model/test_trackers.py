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
