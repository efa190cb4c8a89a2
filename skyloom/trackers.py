"""Experiment trackers for training metrics: TensorBoard by default, W&B or MLflow on request.

``RUN/metrics.jsonl`` stays the source of truth (``skyloom dashboard`` reads it); a tracker is a
second copy in the tool a user already looks at, chosen with ``log.report_to`` as in Hugging Face
Transformers' ``TrainingArguments(report_to=[...])``:

- ``tensorboard``: event files beside ``metrics.jsonl`` in the run folder
  (``tensorboard --logdir RUN``), through ``torch.utils.tensorboard.SummaryWriter``;
- ``wandb``: an offline W&B run under ``RUN/wandb`` (``wandb sync RUN/wandb/offline-run-*`` uploads it);
- ``mlflow``: a local MLflow file store under ``RUN/mlruns`` (``mlflow ui --backend-store-uri RUN/mlruns``).

W&B and MLflow are imported only when requested; one that is not installed is a clear error
before training starts. Nothing here reaches the network.
"""

from __future__ import annotations

import difflib
import logging
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from skyloom.config import ConfigError

logger = logging.getLogger(__name__)

TRACKERS = ("tensorboard", "wandb", "mlflow")
_PIP = {"tensorboard": "tensorboard", "wandb": "wandb", "mlflow": "mlflow"}


@dataclass(frozen=True)
class LogConfig:
    """Where training metrics go besides ``RUN/metrics.jsonl``."""

    report_to: tuple[str, ...] = ("tensorboard",)  # any of tensorboard, wandb, mlflow (offline); [] for none
    project: str = "skyloom"  # W&B project / MLflow experiment name

    def __post_init__(self) -> None:
        check_report_to(self.report_to)


def check_report_to(names: tuple[str, ...] | list[str]) -> None:
    """Raise ConfigError for an unknown tracker name (with the closest known one)."""
    for n in names:
        if n not in TRACKERS:
            close = difflib.get_close_matches(n, TRACKERS, n=1)
            hint = f" Did you mean {close[0]!r}?" if close else ""
            raise ConfigError(f"log.report_to: unknown tracker {n!r}.{hint} Known: {', '.join(TRACKERS)}")


def _require(name: str, module: str) -> Any:
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError:
        raise ConfigError(f"log.report_to includes {name!r} but {module} is not installed: "
                          f"pip install {_PIP[name]} (or drop it: --set 'log.report_to=[]')") from None


def _flat(d: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in d.items():
        key = f"{prefix}{k}"
        if isinstance(v, Mapping):
            out.update(_flat(v, key + "."))
        else:
            out[key] = v if isinstance(v, (int, float, str, bool)) or v is None else str(v)
    return out


class Trackers:
    """The trackers of one run; :meth:`log` sends one metrics line to each of them.

    Args:
        cfg: which trackers.
        run_dir: the run folder (event files and offline stores go inside it).
        run_name: shown in the trackers' UIs.
        config: the resolved training config (recorded as hyper-parameters).
        start_step: the step training resumes from; TensorBoard drops events logged after it by an
            interrupted earlier invocation, so a resumed curve has no duplicate points.
    """

    def __init__(self, cfg: LogConfig, run_dir: str | os.PathLike, run_name: str,
                 config: Mapping[str, Any] | None = None, start_step: int = 0) -> None:
        check_report_to(cfg.report_to)
        self.run_dir = Path(run_dir)
        self._tb = self._wandb = self._mlflow = None
        params = _flat(config or {})
        if "tensorboard" in cfg.report_to:
            _require("tensorboard", "tensorboard")
            from torch.utils.tensorboard import SummaryWriter

            self._tb = SummaryWriter(log_dir=str(self.run_dir), purge_step=start_step + 1 if start_step else None)
        if "wandb" in cfg.report_to:
            wandb = _require("wandb", "wandb")
            self._wandb = wandb.init(project=cfg.project, name=run_name, dir=str(self.run_dir), mode="offline",
                                     config=params, resume="allow", id=_safe_id(run_name, self.run_dir))
        if "mlflow" in cfg.report_to:
            mlflow = _require("mlflow", "mlflow")
            # MLflow 3.x puts its file store "in maintenance mode" and refuses it unless asked; a local file store
            # in the run folder is what skyloom promises (no server, nothing to migrate), so ask for it.
            os.environ.setdefault("MLFLOW_ALLOW_FILE_STORE", "true")
            mlflow.set_tracking_uri((self.run_dir / "mlruns").resolve().as_uri())
            mlflow.set_experiment(cfg.project)
            self._mlflow = mlflow
            mlflow.start_run(run_name=run_name)
            mlflow.log_params({k: v for k, v in list(params.items())[:100]})

    def log(self, step: int, kind: str, values: Mapping[str, Any]) -> None:
        """Record numeric ``values`` at ``step`` under ``<kind>/<name>`` (e.g. ``train/loss``)."""
        scalars = {f"{kind}/{k}": float(v) for k, v in values.items()
                   if isinstance(v, (int, float)) and not isinstance(v, bool)}
        if self._tb is not None:
            for k, v in scalars.items():
                self._tb.add_scalar(k, v, global_step=step)
            self._tb.flush()
        if self._wandb is not None:
            self._wandb.log(scalars, step=step)
        if self._mlflow is not None:
            self._mlflow.log_metrics({k.replace("/", "_"): v for k, v in scalars.items()}, step=step)

    def log_step(self, step: int, values: Mapping[str, float]) -> None:
        """Per-optimizer-step scalars (``train/step_loss``), TensorBoard only: the curve starts at step 0 (the
        untrained weights' loss) and has every step, while ``metrics.jsonl`` and the other trackers keep the
        ``log_every`` averages. Flushed with the next :meth:`log` or :meth:`close`."""
        if self._tb is not None:
            for k, v in values.items():
                self._tb.add_scalar(f"train/{k}" if k != "lr" else "train/step_lr", float(v), global_step=step)

    def close(self) -> None:
        """Flush and close every tracker (safe to call twice)."""
        if self._tb is not None:
            self._tb.close()
            self._tb = None
        if self._wandb is not None:
            self._wandb.finish()
            self._wandb = None
        if self._mlflow is not None:
            self._mlflow.end_run()
            self._mlflow = None


EVAL_VIDEOS_PER_CHECKPOINT = 4  # sample videos of each evaluated checkpoint shown in TensorBoard


def run_reports_to(run_dir: str | os.PathLike, tracker: str) -> bool:
    """Whether the training run in ``run_dir`` was configured to report to ``tracker`` (its saved
    ``config.yaml``'s ``log.report_to``; the default, TensorBoard, when the file does not say)."""
    import yaml

    try:
        saved = yaml.safe_load((Path(run_dir) / "config.yaml").read_text()) or {}
    except (OSError, yaml.YAMLError):
        return False
    return tracker in tuple((saved.get("log") or {}).get("report_to", LogConfig().report_to))


def log_evaluation(run_dir: str | os.PathLike, step: int, suite: str, scores: Mapping[str, float | None],
                   videos: list[Path] | None = None, fps: float = 8.0) -> Path | None:
    """Add one evaluated checkpoint to its training run's TensorBoard: ``eval/<suite>/<metric>`` at the
    checkpoint's ``step`` and the first :data:`EVAL_VIDEOS_PER_CHECKPOINT` of its videos as animated images
    (``eval/<suite>/video/<item>``). Only for a run that reports to TensorBoard; returns the run folder then."""
    if not run_reports_to(run_dir, "tensorboard"):
        return None
    from torch.utils.tensorboard import SummaryWriter

    writer = SummaryWriter(log_dir=str(run_dir), filename_suffix=f".eval-{suite}")
    try:
        for metric, value in sorted(scores.items()):
            if value is not None:
                writer.add_scalar(f"eval/{suite}/{metric}", float(value), global_step=step)
        for video in (videos or [])[:EVAL_VIDEOS_PER_CHECKPOINT]:
            summary = _video_summary(f"eval/{suite}/video/{video.stem}", video, fps)
            if summary is not None:
                writer._get_file_writer().add_summary(summary, step)
    finally:
        writer.close()
    return Path(run_dir)


def _video_summary(tag: str, path: Path, fps: float) -> Any:
    """A TensorBoard image summary holding the video as an animated GIF (what ``add_video`` writes, without
    moviepy), or None when the file cannot be read."""
    import io

    from PIL import Image
    from tensorboard.compat.proto.summary_pb2 import Summary

    from skyloom.video import read_video

    try:
        frames = read_video(path)  # (T, H, W, 3) uint8
    except (OSError, ValueError) as e:
        logger.warning("TensorBoard: cannot read %s (%s)", path, e)
        return None
    images = [Image.fromarray(f) for f in frames]
    buf = io.BytesIO()
    images[0].save(buf, format="GIF", save_all=True, append_images=images[1:], loop=0,
                   duration=max(int(1000 / max(fps, 1e-3)), 20))
    h, w = frames.shape[1:3]
    return Summary(value=[Summary.Value(tag=tag, image=Summary.Image(
        height=h, width=w, colorspace=3, encoded_image_string=buf.getvalue()))])


def _safe_id(name: str, run_dir: Path) -> str:
    """A stable W&B run id per run folder, so a resumed training continues the same offline run."""
    import hashlib

    return hashlib.sha256(str(run_dir.resolve()).encode()).hexdigest()[:12]
