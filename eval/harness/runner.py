"""``skyloom eval``: evaluate checkpoints on a suite: generate, score, store, write results JSON.

For each checkpoint the runner:

1. derives a deterministic ``eval_id`` (suite, version, checkpoint, its COMPLETE marker, sampler
   settings), so rerunning the same command *resumes* the same evaluation;
2. generates the suite's videos that are not on disk yet (``RUN/eval/<suite>/<eval_id>/videos/
   <item_id>.mp4``, written atomically) with one pipeline per worker: in-process, or one Ray
   actor per checkpoint (:mod:`skyloom.eval.harness.generate`);
3. scores them (:mod:`skyloom.eval.harness.scoring`): per-item metrics skip items whose value is already in the
   store, features go through the :class:`skyloom.eval.features.cache.FeatureCache` (per video hash and extractor),
   so the reference set and unchanged videos are never re-encoded;
4. writes scores with bootstrap CIs, per-item values and failure records to the results store,
   and ``results.json`` (schema in ``docs/eval.md``) beside the videos.

A checkpoint that does not load, an item whose generation fails, a video that does not decode:
each becomes a ``failures`` row (stage + reason); the other checkpoints and items go on, and
nothing already stored is lost.
"""

from __future__ import annotations

import functools
import hashlib
import json
import logging
import os
import subprocess
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from skyloom.config import REPO_ROOT, ConfigError, save_resolved, to_dict
from skyloom.errors import InvalidInputError
from skyloom.eval.harness.suites import Suite, load_suite, suite_to_dict
from skyloom.eval.results.schema import (
    RESULTS_FORMAT,
    RESULTS_FORMAT_VERSION,
    ConfidenceInterval,
    ExtractorInfo,
    Failure,
    ResultsDoc,
)
from skyloom.eval.results.store import ResultsStore, public_config, safe_url
from skyloom.fsutil import now_iso
from skyloom.rundir import (
    DEFAULT_EVAL_OUT,
    EvalDir,
    RunError,
    checkpoint_step,
    locate_store,
    resolve_checkpoint,
    run_of_checkpoint,
)

logger = logging.getLogger(__name__)

DEFAULT_OUT = DEFAULT_EVAL_OUT  # ./skyloom-eval: evaluations not tied to a run (skyloom.rundir)


@dataclass(frozen=True)
class EvalConfig:
    """Settings of one ``skyloom eval`` invocation (``configs/eval/default.yaml``)."""

    suite: str = "smoke"
    checkpoints: tuple[str, ...] = ()
    db: str | None = None  # SQLAlchemy URL or path; default: the first checkpoint's RUN/results.sqlite
    out: str | None = None  # default: each checkpoint's RUN/eval (or ./skyloom-eval outside a run)
    cache_dir: str | None = None  # default: $SKYLOOM_CACHE_DIR or ~/.cache/skyloom/features
    use_cache: bool = True
    executor: str = "auto"  # auto (Ray when >= 2 checkpoints need videos or a cluster is given) | local | ray
    ray_address: str | None = None
    device: str = "cpu"
    pipeline_loader: str = "skyloom.model:load_pipeline"
    n_boot: int = 1000  # bootstrap resamples for per-item metrics
    set_boot: int = 200  # resamples of set-level intervals (FVD, KVD): 95% quantiles need ~200
    level: float = 0.95
    seed: int = 0  # bootstrap seed
    score_batch: int = 8
    suite_overrides: tuple[str, ...] = ()


@dataclass
class EvalSummary:
    """What one checkpoint's evaluation produced."""

    eval_id: str
    checkpoint: str
    checkpoint_name: str
    status: str
    scores: dict[str, float | None]
    failures: int
    results_path: str
    generated: int = 0


@dataclass
class EvalResult:
    suite: str
    db: str
    evals: list[EvalSummary] = field(default_factory=list)
    seconds: float = 0.0
    cache_stats: dict[str, int] = field(default_factory=dict)


@dataclass
class _Ctx:
    eval_id: str
    checkpoint: str  # as given, resolved when possible
    checkpoint_name: str
    run_name: str | None
    step: int | None
    folder: EvalDir  # BASE/<suite>/<eval_id>: videos, results.json, config.yaml (the run contract)
    load_error: str | None = None

    @property
    def eval_dir(self) -> Path:
        return self.folder.root

    @property
    def video_dir(self) -> Path:
        return self.folder.videos

    def video_path(self, item_id: str) -> Path:
        return self.folder.video(item_id)


def git_hash() -> str | None:
    """The commit of skyloom's own source checkout, or None for an installed wheel.

    Only asks git when the package sits in a checkout of skyloom (its ``pyproject.toml`` names
    the project), never in whatever folder holds site-packages.
    """
    root = REPO_ROOT
    try:
        if 'name = "skyloom"' not in (root / "pyproject.toml").read_text():
            return None
        out = subprocess.run(["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True, timeout=5,
                             check=False)
        return out.stdout.strip() or None
    except (OSError, subprocess.SubprocessError):
        return None


def _id_loader(loader: str) -> str:
    """The loader as it entered eval ids before the stages moved under ``skyloom.``.

    Eval ids hash the loader string; hashing the pre-rename spelling keeps every stored eval id
    (and its video folder) valid, so a rerun resumes instead of re-generating.
    """
    for stage in ("datagen", "captioning", "model", "eval", "dashboards"):
        if loader.startswith(f"skyloom.{stage}:") or loader.startswith(f"skyloom.{stage}."):
            return loader.removeprefix("skyloom.")
    return loader


def _safe(s: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "-" for c in s).strip("-")[:60] or "ckpt"


DIFFUSERS_PREFIX = "diffusers:"
DIFFUSERS_LOADER = "skyloom.eval.harness.diffusers_adapter:load_diffusers_pipeline"


def loader_for(cfg: EvalConfig, given: str) -> tuple[str, str]:
    """(pipeline loader, checkpoint path) of one ``--ckpt``: ``diffusers:PATH`` selects the diffusers loader."""
    if given.startswith(DIFFUSERS_PREFIX):
        return DIFFUSERS_LOADER, given[len(DIFFUSERS_PREFIX):]
    return cfg.pipeline_loader, given


def _context(suite: Suite, cfg: EvalConfig, given: str) -> _Ctx:
    loader, given = loader_for(cfg, given)
    if loader == DIFFUSERS_LOADER:
        return _diffusers_context(suite, cfg, given)
    load_error = None
    try:
        ck = resolve_checkpoint(given)
    except RunError as e:
        if _id_loader(cfg.pipeline_loader) != _id_loader(DEFAULT_LOADER) and Path(given).expanduser().exists():
            return _loader_context(suite, cfg, given)  # the third way: weights only the user's loader reads
        ck, load_error = Path(given), str(e)
    ck = ck.resolve() if ck.exists() else ck
    run = run_of_checkpoint(ck) if ck.exists() else None
    try:
        step: int | None = checkpoint_step(ck)
    except RunError:
        step = None
    run_name = run.name if run is not None else None
    name = f"{run_name}/{ck.name}" if run_name else ck.name
    marker = ck / "COMPLETE"
    ident = {"ckpt": str(ck), "marker": marker.read_text() if marker.exists() else None,
             "suite": suite.content_hash(), "loader": _id_loader(cfg.pipeline_loader)}
    h = hashlib.sha256(json.dumps(ident, sort_keys=True).encode()).hexdigest()[:10]
    eval_id = f"{suite.name}-v{suite.version}-{_safe(name)}-{h}"
    if cfg.out:
        folder = EvalDir(Path(cfg.out), suite.name, eval_id)
    elif run is not None:
        folder = run.evaluation(suite.name, eval_id)
    else:
        folder = EvalDir(Path(DEFAULT_OUT), suite.name, eval_id)
    return _Ctx(eval_id, str(ck), name, run_name, step, folder, load_error)


DEFAULT_LOADER = "skyloom.model:load_pipeline"


def _loader_context(suite: Suite, cfg: EvalConfig, given: str) -> _Ctx:
    """Weights that only a user's ``pipeline_loader`` reads (no skyloom checkpoint): an entry of its own, named
    after the folder and the loader, with no run or step (the Training view never plots it as a run's)."""
    folder = Path(given).expanduser()
    folder = folder.resolve() if folder.exists() else folder
    stamp = [(p.relative_to(folder).as_posix(), p.stat().st_size, p.stat().st_mtime_ns)
             for p in sorted(folder.rglob("*")) if p.is_file()][:1000] if folder.is_dir() else \
        ([folder.stat().st_size, folder.stat().st_mtime_ns] if folder.is_file() else None)
    ident = {"ckpt": str(folder), "files": stamp, "suite": suite.content_hash(), "loader": cfg.pipeline_loader}
    h = hashlib.sha256(json.dumps(ident, sort_keys=True).encode()).hexdigest()[:10]
    name = f"{folder.name} ({cfg.pipeline_loader})"
    eval_id = f"{suite.name}-v{suite.version}-{_safe(folder.name)}-{h}"
    base = Path(cfg.out) if cfg.out else Path(DEFAULT_OUT)
    return _Ctx(eval_id, str(folder), name, None, None, EvalDir(base, suite.name, eval_id))


def _diffusers_context(suite: Suite, cfg: EvalConfig, given: str) -> _Ctx:
    """A diffusers pipeline folder: named after the folder, identified by its model_index.json."""
    folder = Path(given).expanduser()
    folder = folder.resolve() if folder.exists() else folder
    index = folder / "model_index.json"
    load_error = None if index.is_file() else f"{folder}: not a diffusers pipeline folder (no model_index.json)"
    ident = {"ckpt": str(folder), "index": index.read_text() if index.is_file() else None,
             "suite": suite.content_hash(), "loader": DIFFUSERS_LOADER, "device": cfg.device}
    h = hashlib.sha256(json.dumps(ident, sort_keys=True).encode()).hexdigest()[:10]
    name = f"diffusers/{folder.name}"
    eval_id = f"{suite.name}-v{suite.version}-{_safe(name)}-{h}"
    base = Path(cfg.out) if cfg.out else Path(DEFAULT_OUT)
    return _Ctx(eval_id, DIFFUSERS_PREFIX + str(folder), name, None, None, EvalDir(base, suite.name, eval_id),
                load_error)


def _default_db(cfg: EvalConfig, ctxs: list[_Ctx]) -> str:
    """The store this evaluation writes to (:func:`skyloom.rundir.locate_store`): the first checkpoint's run's."""
    return locate_store(cfg.db, out=cfg.out, near=[c.checkpoint for c in ctxs if c.run_name])[0]


def run_eval(cfg: EvalConfig, *, metrics: Any = None, suite: Suite | None = None,
             store: ResultsStore | None = None,
             on_progress: Callable[[str, str, int, int], None] | None = None) -> EvalResult:
    """Evaluate ``cfg.checkpoints`` on ``cfg.suite``; see the module docstring.

    Args:
        cfg: the run's settings.
        metrics: metric registry (default ``skyloom.eval.metrics.METRICS``; tests pass their own).
        suite: an already loaded suite (default: load ``cfg.suite`` with ``cfg.suite_overrides``).
        store: an open results store (default: from ``cfg.db``).
        on_progress: ``(checkpoint_name, "generate" | "score", done, total)`` as videos are written
            and metrics scored (the CLI's progress bars).

    Raises:
        eval.suites.SuiteError: the suite file is invalid (nothing is generated).
        ValueError: no checkpoints, or an unknown executor.
    """
    from skyloom.devices import torch_device
    from skyloom.eval.features.cache import FeatureCache
    from skyloom.eval.harness import probes, scoring
    from skyloom.eval.harness.generate import GenBatch, GenJob, generate_all
    from skyloom.video import write_video

    t0 = time.perf_counter()
    if not cfg.checkpoints:
        raise InvalidInputError("no checkpoints to evaluate: pass --ckpt PATH (a checkpoint folder or a run)")
    if cfg.executor not in ("auto", "local", "ray"):
        raise ConfigError(f"executor {cfg.executor!r} is not one of: auto, local, ray")
    torch_device(cfg.device)  # `--device cuda` on a machine without one: a user error before any work
    if metrics is None:
        from skyloom.eval.metrics import METRICS as metrics
    if suite is None:
        suite = load_suite(cfg.suite, cfg.suite_overrides, metric_names=metrics.names())
    else:
        suite.validate(metric_names=metrics.names())
    ctxs = [_context(suite, cfg, c) for c in cfg.checkpoints]
    dup = {c.eval_id for c in ctxs if sum(d.eval_id == c.eval_id for d in ctxs) > 1}
    if dup:
        raise InvalidInputError(f"the same checkpoint is given twice: {sorted(dup)}")
    db = _default_db(cfg, ctxs)
    store = store or ResultsStore(db)
    cache = FeatureCache(cfg.cache_dir, enabled=cfg.use_cache)
    githash = git_hash()
    items = suite.items() + scoring.physics_items(suite)
    by_id = {it["item_id"]: it for it in items}
    gen = suite.generation
    gen_kwargs = {k: v for k, v in (("steps", gen.steps), ("guidance", gen.guidance), ("num_frames", gen.num_frames),
                                    ("width", gen.width), ("height", gen.height), ("fps", gen.fps)) if v is not None}
    record = {"suite": {**suite_to_dict(suite), "primary_metric": suite.primary}, "eval": public_config(to_dict(cfg))}
    draw = probes.draw_record(items)
    if draw is not None:  # which probe scenes were admitted, and why the others were not
        record["physics_probes"] = draw

    jobs = []
    for c in ctxs:
        store.begin_eval(c.eval_id, suite=suite.name, suite_version=suite.version_tag, checkpoint=c.checkpoint,
                         checkpoint_name=c.checkpoint_name, run_name=c.run_name, step=c.step, git_hash=githash,
                         config=record, status="running")
        save_resolved(replace(cfg, db=safe_url(cfg.db)) if cfg.db else cfg, c.folder.config_path)  # no password
        todo = [it for it in items if not c.video_path(it["item_id"]).exists()]
        for it in todo:  # retrying: forget the old generation failures of these items
            store.clear_failures(c.eval_id, it["item_id"])
        if c.load_error:
            store.add_failure(c.eval_id, "*", "load", c.load_error)
            continue
        if todo or not c.video_dir.exists():
            loader, path = loader_for(cfg, c.checkpoint)
            jobs.append(GenJob(c.eval_id, path, todo, gen_kwargs, suite.generation.batch_size, loader))
    ctx_by_id = {c.eval_id: c for c in ctxs}
    generated: dict[str, int] = {c.eval_id: 0 for c in ctxs}
    to_generate = {j.eval_id: len(j.items) for j in jobs}
    attempted: dict[str, int] = {c.eval_id: 0 for c in ctxs}

    def report(c: _Ctx, stage: str, done: int, total: int) -> None:
        if on_progress is not None:
            on_progress(c.checkpoint_name, stage, done, total)

    for j in jobs:
        report(ctx_by_id[j.eval_id], "generate", 0, to_generate[j.eval_id])
    fps_by_eval: dict[str, float] = {}

    def on_batch(b: GenBatch) -> None:
        c = ctx_by_id[b.eval_id]
        fps = suite.generation.fps or (b.info or {}).get("fps") or 8.0
        fps_by_eval[b.eval_id] = fps
        for item_id, video in b.videos.items():
            it = by_id[item_id]
            write_video(c.video_path(item_id), video, fps=fps,
                        metadata={"prompt": it["prompt"], "seed": it["seed"], "item_id": item_id,
                                  "checkpoint": c.checkpoint, "eval_id": c.eval_id})
            generated[b.eval_id] += 1
        for item_id, (stage, reason) in b.failures.items():
            store.add_failure(b.eval_id, item_id, stage, reason)
        attempted[b.eval_id] += len(b.videos) + len(b.failures)
        report(c, "generate", attempted[b.eval_id], to_generate[b.eval_id])

    if jobs:
        infos = generate_all(jobs, on_batch, loader=cfg.pipeline_loader, device=cfg.device,
                             use_ray=_use_ray(cfg, len(jobs)), ray_address=cfg.ray_address)
        for eid, info in infos.items():
            if info.get("error"):
                ctx_by_id[eid].load_error = info["error"]
                store.add_failure(eid, "*", "load", info["error"])

    scorer = make_scorer(suite, cfg, metrics, cache)
    result = EvalResult(suite=suite.name, db=store.url)
    for c in ctxs:
        result.evals.append(finish_eval(store, scorer, suite, cfg, c, items, t0, generated[c.eval_id],
                                        on_metric=functools.partial(report, c, "score")))
    result.seconds = time.perf_counter() - t0
    result.cache_stats = {**cache.stats, **scorer.stats}
    return result


def make_scorer(suite: Suite, cfg: EvalConfig, metrics: Any, cache: Any) -> Any:
    """The :class:`skyloom.eval.harness.scoring.Scorer` of one invocation (bootstrap settings from ``cfg``)."""
    from skyloom.eval.harness import scoring

    return scoring.Scorer(suite, metrics, cache, n_boot=cfg.n_boot, set_boot=cfg.set_boot, level=cfg.level,
                          seed=cfg.seed, batch=cfg.score_batch)


def finish_eval(store: ResultsStore, scorer: Any, suite: Suite, cfg: EvalConfig, c: _Ctx,
                items: Sequence[Mapping[str, Any]],
                t0: float, generated: int = 0,
                on_metric: Callable[[int, int], None] | None = None) -> EvalSummary:
    """Score one evaluation's videos, set its status, write its results.json; its summary.

    Shared by checkpoints, submissions (:mod:`skyloom.eval.harness.submissions`) and calibration rows
    (:mod:`skyloom.eval.harness.calibration`): every kind of entry is scored by the same code.
    ``on_metric(done, total)`` reports scoring progress.
    """
    if c.load_error and not any(c.video_path(i["item_id"]).exists() for i in items):
        store.set_status(c.eval_id, "failed")
        summary_scores: dict[str, float | None] = {}
    else:
        summary_scores = scorer.score_eval(store, c.eval_id, items, c.video_path, on_metric=on_metric)
        fails = store.failures(c.eval_id)
        # A metric with no value and a recorded failure (an extractor that does not load, every item
        # failing) fails the evaluation: a board without one of the suite's metrics is not a result.
        dead = [k for k, v in summary_scores.items() if v is None and any(f["stage"].endswith(":" + k) for f in fails)]
        store.set_status(c.eval_id, "failed" if dead else "partial" if fails else "complete")
    path = write_results_json(store, c.eval_id, c.folder, suite, cfg, n_items=len(items),
                              seconds=time.perf_counter() - t0)
    _to_training_tensorboard(c, suite, summary_scores, items)
    return EvalSummary(c.eval_id, c.checkpoint, c.checkpoint_name, store.get_eval(c.eval_id)["status"],
                       summary_scores, len(store.failures(c.eval_id)), str(path), generated)


def _to_training_tensorboard(c: _Ctx, suite: Suite, scores: dict[str, float | None],
                             items: Sequence[Mapping[str, Any]]) -> None:
    """A checkpoint of a skyloom run: its scores (at the checkpoint's step) and a few of its videos go to the
    run's TensorBoard beside the training curves (:func:`skyloom.trackers.log_evaluation`)."""
    if c.step is None or not c.run_name:
        return
    run = run_of_checkpoint(c.checkpoint) if Path(c.checkpoint).exists() else None
    if run is None:
        return
    from skyloom.trackers import log_evaluation

    videos = [c.video_path(it["item_id"]) for it in items if c.video_path(it["item_id"]).exists()]
    try:
        log_evaluation(run.root, c.step, suite.name, scores, videos, fps=suite.generation.fps or 8.0)
    except (OSError, ImportError) as e:  # a read-only run folder, no tensorboard: the scores are stored anyway
        logger.warning("TensorBoard of %s not updated: %s", run.root, e)


def _use_ray(cfg: EvalConfig, n_jobs: int) -> bool:
    """``ray``: always; ``local``: never; ``auto``: one actor per checkpoint when two or more
    checkpoints need videos or a cluster address is given (a single local job skips Ray's start-up)."""
    if cfg.executor != "auto":
        return cfg.executor == "ray"
    return n_jobs > 1 or bool(cfg.ray_address or os.environ.get("RAY_ADDRESS"))


def build_results(store: ResultsStore, eval_id: str, suite: Suite, cfg: EvalConfig | None = None,
                  n_items: int | None = None, seconds: float | None = None) -> ResultsDoc:
    """The results document of one evaluation (lm-evaluation-harness-like; see docs/eval.md)."""
    e = store.get_eval(eval_id)
    scores = store.scores(eval_ids=[eval_id])
    # `results` holds exactly what lm-evaluation-harness's tools read (value and stderr per
    # "<metric>,<filter>"); anything else there would show up as an extra metric row in its make_table.
    task: dict[str, Any] = {"alias": suite.name}
    cis: dict[str, ConfidenceInterval] = {}
    hib: dict[str, bool] = {}
    mver: dict[str, int] = {}
    n: dict[str, int] = {}
    extractors: dict[str, ExtractorInfo] = {}
    details: dict[str, dict[str, Any]] = {}
    cfg_level = (e.get("config", {}).get("eval", {}) or {}).get("level")
    for s in scores:
        m = s["metric"]
        task[f"{m},none"] = s["value"]
        task[f"{m}_stderr,none"] = s["stderr"] if s["stderr"] is not None else "N/A"
        cis[f"{m},none"] = {"low": s["ci_low"], "high": s["ci_high"], "level": cfg_level}
        hib[m] = s["higher_is_better"]
        mver[m] = s["metric_version"]
        n[m] = s["n"]
        extractors[m] = {"extractor": s["extractor"], "weights": s["weights"],
                         "preprocessing": (s["details"] or {}).get("preprocessing")}
        details[m] = {k: v for k, v in (s["details"] or {}).items() if k != "preprocessing"}
    fails = store.failures(eval_id)
    scored = {r["item_id"] for r in store.items(eval_id)}
    cfgd = e.get("config", {}).get("eval", {})
    items = suite.items()
    return {
        "format": RESULTS_FORMAT, "format_version": RESULTS_FORMAT_VERSION,
        "results": {suite.name: task},
        "confidence_intervals": {suite.name: cis},
        "groups": {},
        "group_subtasks": {suite.name: []},
        "n-shot": {suite.name: 0},  # generation from a prompt: no few-shot examples
        "configs": {suite.name: {**suite_to_dict(suite), "primary_metric": suite.primary}},
        "versions": {suite.name: e["suite_version"]},
        "metric_versions": mver,
        "higher_is_better": {suite.name: hib},
        "n-samples": {suite.name: {"original": n_items if n_items is not None else len(items),
                                   "effective": len(scored)}},
        "n": n,
        "extractors": extractors,
        "details": details,
        "kind": e["kind"], "meta": e["meta"],
        "config": {"model": _model_name(e), "model_args": f"checkpoint={e['checkpoint']}",
                   "checkpoint": e["checkpoint"], "checkpoint_name": e["checkpoint_name"], "run_name": e["run_name"],
                   "step": e["step"], "device": cfgd.get("device"), "batch_size": suite.generation.batch_size,
                   "pipeline_loader": cfgd.get("pipeline_loader"), "generation": to_dict(suite.generation),
                   "bootstrap": {"n_boot": cfgd.get("n_boot"), "set_boot": cfgd.get("set_boot"),
                                 "level": cfgd.get("level"), "seed": cfgd.get("seed")}},
        "seeds": {"suite": list(suite.seeds),
                  "prompts": {p.id: list(p.seeds if p.seeds is not None else suite.seeds) for p in suite.prompts},
                  "physics_scene_seed": suite.physics.seed if suite.physics.num_scenes else None,
                  "bootstrap": cfgd.get("seed")},
        "eval_id": eval_id, "suite": suite.name, "status": e["status"],
        "failures": [Failure(item_id=f["item_id"], stage=f["stage"], reason=f["reason"]) for f in fails],
        "git_hash": e["git_hash"],
        "eval_created_at": e["created_at"],  # when the evaluation was first created in the store (ISO 8601, UTC)
        "results_written_at": now_iso(),  # when this document was written (ISO 8601, UTC)
        "skyloom_version": _version(),
        "total_evaluation_time_seconds": None if seconds is None else str(round(seconds, 2)),
    }


def _model_name(e: dict[str, Any]) -> str:
    """The results document's ``config.model``: skyloom, diffusers, the submission's model, or calibration."""
    if e["kind"] == "submission":
        return str(e["meta"].get("model") or "submission")
    if e["kind"] == "calibration":
        return "calibration"
    return "diffusers" if str(e.get("checkpoint") or "").startswith(DIFFUSERS_PREFIX) else "skyloom"


def write_results_json(store: ResultsStore, eval_id: str, folder: EvalDir, suite: Suite,
                       cfg: EvalConfig | None = None, n_items: int | None = None, seconds: float | None = None) -> Path:
    from skyloom.fsutil import atomic_write_json

    doc = build_results(store, eval_id, suite, cfg, n_items=n_items, seconds=seconds)
    return atomic_write_json(folder.results_json, doc)


def _version() -> str:
    import skyloom

    return skyloom.__version__
