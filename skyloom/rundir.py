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
      eval/<suite>/<eval_id>/    one folder per evaluation (:class:`EvalDir`): videos/<item_id>.mp4,
                                 results.json (lm-evaluation-harness-like schema), config.yaml
      results.sqlite             the default results store (:attr:`RunDir.results_store`)

Where an evaluation's files and the results store are is part of this contract and is worked out
here only: :meth:`RunDir.evaluation` / :class:`EvalDir` (also for ``skyloom eval --out OUT``, whose
evaluations live in ``OUT/<suite>/<eval_id>``) and :func:`locate_store`.

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
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from skyloom.errors import UserError
from skyloom.fsutil import append_jsonl, atomic_write_json, now_iso, read_jsonl

RUN_FORMAT = "skyloom-run"
RUN_FORMAT_VERSION = 1
EVAL_DIRNAME = "eval"  # RUN/eval: the run's evaluations
RESULTS_DB = "results.sqlite"  # the results store of a run, or of an `--out` folder
RESULTS_DB_ENV = "SKYLOOM_RESULTS_DB"  # a shared store for every command (URL or path)
DEFAULT_EVAL_OUT = "skyloom-eval"  # where evaluations not tied to a run go when no --out is given
_STEP_RE = re.compile(r"^step-(\d+)$")


class RunError(UserError, ValueError):
    """A run directory or checkpoint that is missing or malformed."""


@dataclass(frozen=True)
class EvalDir:
    """The folder of one evaluation: ``BASE/<suite>/<eval_id>/`` with ``videos/<item_id>.mp4``,
    ``results.json`` and ``config.yaml``.

    ``base`` is ``RUN/eval`` for a run's evaluation (:meth:`RunDir.evaluation`), or the ``--out``
    folder (default ``./skyloom-eval``) of evaluations not tied to a run.

    Example:
        >>> EvalDir(Path("RUN/eval"), "smoke", "smoke-v1-run-ab12").video("p0").as_posix()
        'RUN/eval/smoke/smoke-v1-run-ab12/videos/p0.mp4'
    """

    base: Path
    suite: str
    eval_id: str

    @property
    def root(self) -> Path:
        return Path(self.base) / self.suite / self.eval_id

    @classmethod
    def of_run(cls, run_root: str | os.PathLike, suite: str, eval_id: str) -> EvalDir:
        """The folder of an evaluation of the run at ``run_root``: ``RUN/eval/<suite>/<eval_id>``."""
        return cls(Path(run_root) / EVAL_DIRNAME, suite, eval_id)

    @property
    def videos(self) -> Path:
        """The folder of the generated videos."""
        return self.root / "videos"

    def video(self, item_id: str) -> Path:
        """The generated video of one suite item."""
        return self.videos / f"{item_id}.mp4"

    @property
    def results_json(self) -> Path:
        return self.root / "results.json"

    @property
    def config_path(self) -> Path:
        return self.root / "config.yaml"

    @classmethod
    def find(cls, roots: Iterable[str | os.PathLike], suite: str, eval_id: str) -> EvalDir | None:
        """The evaluation's folder that holds its videos now, searched in ``roots`` (run directories,
        whose evaluations are under ``eval/``, or ``--out`` folders); None when none holds them."""
        for root in roots:
            for base in (Path(root) / EVAL_DIRNAME, Path(root)):
                d = cls(base, suite, eval_id)
                if d.videos.is_dir():
                    return d
        return None

    @property
    def owner(self) -> Path:
        """The run directory (for ``RUN/eval/...``) or the ``--out`` folder that holds this evaluation."""
        base = Path(self.base)
        return base.parent if base.name == EVAL_DIRNAME else base


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
            return cls(r)
        for sub in ("checkpoints", "samples", EVAL_DIRNAME):
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
        return self.root / EVAL_DIRNAME

    def evaluation(self, suite: str, eval_id: str) -> EvalDir:
        """The folder of one of this run's evaluations: ``RUN/eval/<suite>/<eval_id>``."""
        return EvalDir.of_run(self.root, suite, eval_id)

    @property
    def results_store(self) -> Path:
        """The run's own results store, ``RUN/results.sqlite`` (it may not exist yet)."""
        return self.root / RESULTS_DB

    @property
    def results_db_url(self) -> str:
        return f"sqlite:///{self.results_store.resolve()}"

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


def locate_store(db: str | os.PathLike | None = None, *, out: str | os.PathLike | None = None,
                 runs: str | os.PathLike | None = None, near: Sequence[str | os.PathLike] = (),
                 existing: bool = False) -> list[str]:
    """Where the results store is: the one rule every command and the dashboard follow.

    First match wins:

    1. ``db``: an SQLAlchemy URL or a path, as given (``--db``);
    2. ``$SKYLOOM_RESULTS_DB``;
    3. ``out``: the ``results.sqlite`` of this folder (an ``--out`` folder, or a run directory);
    4. ``runs``: the ``results.sqlite`` of every run at or below this folder (:func:`find_runs`) and of
       the folder itself, those that exist (several are read merged, one leaderboard across runs);
    5. ``near``: the ``results.sqlite`` of the run that holds the first of these checkpoint or run
       paths (:func:`run_of_checkpoint`);
    6. ``./skyloom-eval/results.sqlite`` (:data:`DEFAULT_EVAL_OUT`).

    Args:
        existing: readers pass True: steps 5 and 6 count only a store that exists, and nothing
            found is ``[]`` (a writer gets the path to create).

    Returns:
        Targets for :class:`skyloom.eval.results.store.ResultsStore` (URL or path), one unless
        ``runs`` found several; ``[]`` when ``existing`` and nothing exists.

    Example:
        >>> locate_store("sqlite:///shared.sqlite", out="elsewhere")
        ['sqlite:///shared.sqlite']
    """
    given = db or os.environ.get(RESULTS_DB_ENV)
    if given:
        return [str(given)]
    if out:
        return [str(Path(out) / RESULTS_DB)]
    if runs is not None:
        folder = Path(runs)
        found = [r.results_store for r in find_runs(folder)] + [folder / RESULTS_DB]
        return [str(p) for p in dict.fromkeys(found) if p.is_file()]
    for ref in near:
        if Path(ref).exists():
            run = run_of_checkpoint(ref)
            if run is not None and (not existing or run.results_store.is_file()):
                return [str(run.results_store)]
    default = Path(DEFAULT_EVAL_OUT) / RESULTS_DB
    return [str(default)] if not existing or default.is_file() else []
