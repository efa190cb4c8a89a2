"""The run directory contract: what ``skyloom train`` writes and eval/dashboards read.

Layout (format version :data:`RUN_FORMAT_VERSION`)::

    RUN/
      run.json                   format, version, name, created_at, corpus, preset
      config.yaml                the resolved training config
      metrics.jsonl              one JSON object a line: {"step", "time", "kind", <metric>: value}
      checkpoints/step-00000100/ one folder per checkpoint (complete ones only: renamed into
        COMPLETE                 place atomically after a marker file is written)
        <component>/config.json  constructor arguments of each component (dit, vae, text_encoder, ema)
        <component>/model.safetensors
        state/...                full training state (optimizer, sampler position, RNG)
      samples/                   videos written by ``skyloom sample``
      eval/                      results JSON per evaluation (lm-evaluation-harness-like schema)
      results.sqlite             the default results store

Readers never see a half-written checkpoint: :meth:`RunDir.begin_checkpoint` writes into a
hidden temporary folder and renames it into place. ``metrics.jsonl`` tolerates a torn last
line from a crash.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from skyloom.errors import UserError
from skyloom.fsutil import append_jsonl, atomic_write_json, now_iso, read_jsonl

RUN_FORMAT = "skyloom-run"
RUN_FORMAT_VERSION = 1
_STEP_RE = re.compile(r"^step-(\d+)$")


class RunError(UserError, ValueError):
    """A run directory or checkpoint that is missing or malformed."""


class RunDir:
    """Reader/writer of one run directory."""

    def __init__(self, root: str | os.PathLike) -> None:
        self.root = Path(root)
        info = self.root / "run.json"
        if not info.exists():
            raise RunError(f"{self.root}: not a skyloom run directory (no run.json)")
        try:
            self.info = json.loads(info.read_text())
        except json.JSONDecodeError as e:
            raise RunError(f"{info}: not valid JSON ({e})") from None
        if self.info.get("format") != RUN_FORMAT:
            raise RunError(f"{info}: field 'format' is {self.info.get('format')!r}, expected {RUN_FORMAT!r}")

    @classmethod
    def create(cls, root: str | os.PathLike, name: str | None = None, exist_ok: bool = True,
               **info: Any) -> RunDir:
        r = Path(root)
        if (r / "run.json").exists():
            if not exist_ok:
                raise RunError(f"{r}: run already exists")
            run = cls(r)
            have, want = run.info.get("stage"), info.get("stage")
            if have and want and have != want:  # e.g. `train --preset vae --out <a DiT run>`: would clobber it
                raise RunError(f"{r}: a {have} run (preset {run.info.get('preset', '?')}) cannot be resumed as a "
                               f"{want} run; give another --out")
            return run
        for sub in ("checkpoints", "samples", "eval"):
            (r / sub).mkdir(parents=True, exist_ok=True)
        atomic_write_json(r / "run.json", {"format": RUN_FORMAT, "version": RUN_FORMAT_VERSION,
                                           "name": name or r.name,
                                           "created_at": now_iso(),
                                           **info})
        return cls(r)

    @property
    def name(self) -> str:
        return str(self.info.get("name") or self.root.name)

    # -- paths --------------------------------------------------------------------------
    @property
    def config_path(self) -> Path:
        return self.root / "config.yaml"

    @property
    def metrics_path(self) -> Path:
        return self.root / "metrics.jsonl"

    @property
    def samples_dir(self) -> Path:
        return self.root / "samples"

    @property
    def eval_dir(self) -> Path:
        return self.root / "eval"

    @property
    def results_db_url(self) -> str:
        return f"sqlite:///{(self.root / 'results.sqlite').resolve()}"

    # -- metrics ------------------------------------------------------------------------
    def log_metrics(self, step: int, kind: str = "train", **values: Any) -> None:
        """Append one line to ``metrics.jsonl`` (e.g. loss, lr, samples_per_s)."""
        append_jsonl(self.metrics_path, {"step": int(step), "time": time.time(), "kind": kind, **values})

    def metrics(self, kind: str | None = None) -> list[dict[str, Any]]:
        return [m for m in read_jsonl(self.metrics_path) if kind is None or m.get("kind") == kind]

    def truncate_metrics(self, after_step: int) -> None:
        """Drop metric lines with step > ``after_step`` (used when resuming from a checkpoint)."""
        keep = [m for m in read_jsonl(self.metrics_path) if int(m.get("step", 0)) <= after_step]
        from skyloom.fsutil import atomic_write_text

        atomic_write_text(self.metrics_path, "".join(json.dumps(m) + "\n" for m in keep))

    # -- checkpoints --------------------------------------------------------------------
    def checkpoint_dir(self, step: int) -> Path:
        return self.root / "checkpoints" / f"step-{int(step):08d}"

    @contextlib.contextmanager
    def begin_checkpoint(self, step: int) -> Iterator[Path]:
        """Yield a temporary folder to fill; on success it becomes ``checkpoint_dir(step)``."""
        final = self.checkpoint_dir(step)
        tmp = final.parent / f".tmp-{final.name}-{os.getpid()}"
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
        try:
            yield tmp
            (tmp / "COMPLETE").write_text(json.dumps({"step": int(step), "time": time.time()}))
            if final.exists():
                old = final.parent / f".old-{final.name}-{os.getpid()}"
                os.replace(final, old)
                os.replace(tmp, final)
                shutil.rmtree(old, ignore_errors=True)
            else:
                os.replace(tmp, final)
        except BaseException:  # noqa: BLE001 - any failure, Ctrl-C included: no half-written checkpoint stays
            shutil.rmtree(tmp, ignore_errors=True)
            raise

    def checkpoints(self) -> list[tuple[int, Path]]:
        """Complete checkpoints, sorted by step."""
        d = self.root / "checkpoints"
        out = []
        if d.is_dir():
            for p in d.iterdir():
                m = _STEP_RE.match(p.name)
                if m and (p / "COMPLETE").exists():
                    out.append((int(m.group(1)), p))
        return sorted(out)

    def latest_checkpoint(self) -> Path | None:
        ck = self.checkpoints()
        return ck[-1][1] if ck else None


def is_run(path: str | os.PathLike) -> bool:
    return (Path(path) / "run.json").exists()


def find_runs(root: str | os.PathLike) -> list[RunDir]:
    """Every run directory at or below ``root`` (depth <= 3), sorted by path."""
    r = Path(root)
    if not r.exists():
        return []
    found = []
    for info in sorted(r.glob("run.json")) + sorted(r.glob("*/run.json")) + sorted(r.glob("*/*/run.json")):
        try:
            found.append(RunDir(info.parent))
        except RunError:
            continue
    return found


def checkpoint_step(ckpt: str | os.PathLike) -> int:
    m = _STEP_RE.match(Path(ckpt).name)
    if not m:
        raise RunError(f"{ckpt}: not a checkpoint folder (expected a name like step-00000100)")
    return int(m.group(1))


def resolve_checkpoint(path: str | os.PathLike) -> Path:
    """A checkpoint folder, or a run directory (-> its latest complete checkpoint)."""
    p = Path(path)
    if not p.exists():
        raise RunError(f"{p}: no such checkpoint or run directory")
    if (p / "COMPLETE").exists():
        return p
    if is_run(p):
        latest = RunDir(p).latest_checkpoint()
        if latest is None:
            raise RunError(f"{p}: run has no complete checkpoint yet")
        return latest
    if _STEP_RE.match(p.name):
        raise RunError(f"{p}: checkpoint is incomplete (no COMPLETE marker; the write was interrupted)")
    raise RunError(f"{p}: neither a checkpoint folder nor a run directory")


def run_of_checkpoint(ckpt: str | os.PathLike) -> RunDir | None:
    p = Path(ckpt).resolve()
    for parent in (p.parent.parent, p.parent, p):
        if is_run(parent):
            return RunDir(parent)
    return None
