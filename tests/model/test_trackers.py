"""Training metrics in TensorBoard (default), W&B or MLflow, as Hugging Face's Trainer does with ``report_to``."""

from __future__ import annotations

import json
import struct
import sys
from pathlib import Path

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
def test_missing_tracker_package_is_a_clear_error(tmp_path, monkeypatch, name, module):
    from skyloom.trackers import LogConfig, Trackers

    monkeypatch.setitem(sys.modules, module, None)  # as if not installed (the real runs are tested below)

    with pytest.raises(ConfigError, match=f"pip install {module}"):
        Trackers(LogConfig(report_to=(name,)), tmp_path, "run")


def _wandb_records(path: Path) -> list[bytes]:
    """The records of an offline ``run-*.wandb`` file: W&B's LevelDB-style log (a 7-byte ``:W&B`` header, 32 KiB
    blocks, each record chunk led by crc32 (4), length (2) and type (1: full, 2: first, 3: middle, 4: last))."""
    data = path.read_bytes()
    assert data[:4] == b":W&B", data[:8]
    pos, block, pending, out = 7, 32768, b"", []
    while pos + 7 <= len(data):
        left = block - pos % block
        if left < 7:  # a block's tail too short for a header is zero padding
            pos += left
            continue
        _crc, length, kind = struct.unpack("<IHB", data[pos:pos + 7])
        chunk = data[pos + 7:pos + 7 + length]
        pos += 7 + length
        if kind == 1:
            out.append(chunk)
        elif kind == 2:
            pending = chunk
        elif kind == 3:
            pending += chunk
        elif kind == 4:
            out.append(pending + chunk)
            pending = b""
    return out


def test_wandb_offline_run_is_written_and_reads_back(tmp_path, monkeypatch):
    """A real offline W&B run in RUN/wandb (no network, no account): its history has every logged step with its
    value, and the run carries the flattened config."""
    pytest.importorskip("wandb", reason="the [trackers] extra (in [dev]) installs wandb")
    from wandb.proto import wandb_internal_pb2 as pb

    from skyloom.trackers import LogConfig, Trackers

    monkeypatch.setenv("WANDB_SILENT", "true")
    t = Trackers(LogConfig(report_to=("wandb",)), tmp_path, "tiny-run", {"optim": {"lr": 1e-3}})
    for step in (1, 2, 3):
        t.log(step, "train", {"loss": 1.0 / step, "note": "not a number"})
    t.close()
    import wandb

    wandb.teardown()  # W&B's service writes the file asynchronously; at process exit this happens by itself
    (f,) = sorted((tmp_path / "wandb").glob("offline-run-*/run-*.wandb"))
    history, config = [], {}
    for data in _wandb_records(f):
        rec = pb.Record()
        rec.ParseFromString(data)
        kind = rec.WhichOneof("record_type")
        if kind == "history":
            history.append({i.key or "/".join(i.nested_key): json.loads(i.value_json) for i in rec.history.item})
        elif kind == "run":
            config.update({i.key: json.loads(i.value_json) for i in rec.run.config.update})
            assert rec.run.display_name == "tiny-run"
    assert [(h["_step"], h["train/loss"]) for h in history] == [(1, 1.0), (2, 0.5), (3, pytest.approx(1 / 3))]
    assert all("train/note" not in h for h in history)  # only numbers are logged
    assert config["optim.lr"] == 1e-3


def test_mlflow_file_store_is_written_and_reads_back(tmp_path):
    """A real MLflow file store in RUN/mlruns, read back with MLflow's own client: the metric history has every
    step, the parameters are the flattened config."""
    pytest.importorskip("mlflow", reason="the [trackers] extra (in [dev]) installs mlflow-skinny")
    from mlflow.tracking import MlflowClient

    from skyloom.trackers import LogConfig, Trackers

    t = Trackers(LogConfig(report_to=("mlflow",), project="skyloom-test"), tmp_path, "tiny-run",
                 {"optim": {"lr": 1e-3}})
    for step in (1, 2, 3):
        t.log(step, "train", {"loss": 1.0 / step})
    t.close()
    client = MlflowClient(tracking_uri=(tmp_path / "mlruns").resolve().as_uri())
    (run,) = client.search_runs([client.get_experiment_by_name("skyloom-test").experiment_id])
    assert run.info.run_name == "tiny-run" and run.info.status == "FINISHED"
    hist = [(m.step, m.value) for m in client.get_metric_history(run.info.run_id, "train_loss")]
    assert sorted(hist) == [(1, 1.0), (2, 0.5), (3, pytest.approx(1 / 3))]
    assert run.data.params["optim.lr"] == "0.001"


def test_tensorboard_has_step_zero_and_every_step(tmp_path):
    """With ``log_every`` above 1 the averaged ``train/loss`` keeps its points, and ``train/step_loss`` has every
    optimizer step from step 0 (the untrained weights' loss), as metrics.jsonl's first line would not."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    from skyloom.model.train import train

    corpus = make_square_corpus(tmp_path / "corpus", n=3)
    out = tmp_path / "run"
    res = train(tiny_cfg(steps=5, log_every=3), corpus.root, out, progress_bar=False)
    acc = EventAccumulator(str(out))
    acc.Reload()
    assert [e.step for e in acc.Scalars("train/loss")] == [3, 5]
    steps = {e.step: e.value for e in acc.Scalars("train/step_loss")}
    assert sorted(steps) == [0, 1, 2, 3, 4]
    assert [steps[s - 1] for s, _ in res.losses] == pytest.approx([v for _, v in res.losses], rel=1e-6)


def test_evaluation_scalars_and_videos_reach_the_runs_tensorboard(tmp_path):
    """An evaluated checkpoint of a run: ``eval/<suite>/<metric>`` at the checkpoint's step, and a few of its videos
    as animated images, in the run's TensorBoard."""
    import numpy as np
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    from skyloom.rundir import RunDir
    from skyloom.trackers import EVAL_VIDEOS_PER_CHECKPOINT, log_evaluation
    from skyloom.video import write_video

    rd = RunDir.create(tmp_path / "run", preset="vdit-tiny")
    (rd.root / "config.yaml").write_text("log:\n  report_to: [tensorboard]\n")
    videos = []
    for i in range(EVAL_VIDEOS_PER_CHECKPOINT + 2):
        v = np.full((4, 16, 16, 3), 40 * i, np.uint8)
        videos.append(write_video(tmp_path / "videos" / f"item{i}.mp4", v, fps=8))
    for step, value in ((0, 0.1), (40, 0.3)):
        log_evaluation(rd.root, step, "smoke", {"clipsim": value, "fvd": None}, videos)
    acc = EventAccumulator(str(rd.root), size_guidance={"images": 0})
    acc.Reload()
    assert [(e.step, round(e.value, 6)) for e in acc.Scalars("eval/smoke/clipsim")] == [(0, 0.1), (40, 0.3)]
    assert "eval/smoke/fvd" not in acc.Tags()["scalars"]  # no value, no point
    shown = sorted(t for t in acc.Tags()["images"] if t.startswith("eval/smoke/video/"))
    assert shown == [f"eval/smoke/video/item{i}" for i in range(EVAL_VIDEOS_PER_CHECKPOINT)]
    img = acc.Images(shown[0])[-1]
    assert img.step == 40 and img.encoded_image_string[:6] in (b"GIF87a", b"GIF89a")
    # a run that turned TensorBoard off gets nothing
    (rd.root / "config.yaml").write_text("log:\n  report_to: []\n")
    assert log_evaluation(rd.root, 80, "smoke", {"clipsim": 0.5}, videos) is None
