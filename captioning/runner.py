"""The captioning job: route clips to captioners, caption them on a Ray actor pool, write the corpus.

Each captioner runs in a pool of Ray actors (``ray.util.ActorPool``), one model load per actor;
the driver sends batches of clip ids, the actors read the clips (ground truth or frames) from the
corpus themselves and return captions or per-clip errors, and the driver writes finished
batches with :meth:`Corpus.add_captions` (one manifest revision per ``write_every`` clips) and records failures
with :meth:`Corpus.quarantine`. A rerun skips clips that already hold every caption kind of that
captioner, so a crashed job resumes without duplicates.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import time
from dataclasses import dataclass, field
from typing import Any

from skyloom.captioning.base import CAPTIONERS, ClipInput, Outcome, build_captioner, captioner_options
from skyloom.captioning.config import CaptionConfig
from skyloom.config import ConfigError
from skyloom.corpus import Caption, Corpus
from skyloom.errors import require_extra
from skyloom.fsutil import file_stamp, now_iso

logger = logging.getLogger(__name__)

STAGE = "caption"


@dataclass
class CaptionResult:
    """What one job did, per captioner."""

    corpus: str
    captioned: dict[str, int] = field(default_factory=dict)
    skipped: dict[str, int] = field(default_factory=dict)
    failed: dict[str, int] = field(default_factory=dict)
    failures: list[dict[str, str]] = field(default_factory=list)
    seconds: float = 0.0
    config_path: str = ""
    nodes: dict[str, int] = field(default_factory=dict)  # Ray node id -> actors placed there ("driver": in-process)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def captioner_kinds(name: str, cfg: CaptionConfig) -> tuple[str, ...]:
    """Caption kinds ``name`` writes under ``cfg`` (without loading its model)."""
    return CAPTIONERS.get(name).caption_kinds(cfg)


def available_fallback(cfg: CaptionConfig) -> str:
    """First captioner of ``cfg.auto_fallback`` that ``cfg`` makes available, for clips without ground truth."""
    for name in cfg.auto_fallback:
        if CAPTIONERS.get(name).available(cfg):
            return name
    raise ConfigError(f"auto_fallback {list(cfg.auto_fallback)}: none is available (vlm-local needs "
                      "vlm_local.model_path, vlm-endpoint needs endpoint.base_url); add 'heuristic'")


def check_config(cfg: CaptionConfig) -> None:
    """Validate names and per-captioner options before any work (unknown names get "did you mean")."""
    if cfg.captioner != "auto":
        CAPTIONERS.get(cfg.captioner)
    for name in cfg.options:
        captioner_options(name, cfg)


def plan(corpus: Corpus, cfg: CaptionConfig) -> tuple[dict[str, list[tuple[str, float]]], dict[str, int]]:
    """Route each clip to a captioner; drop clips that already have its captions (unless overwrite).

    Returns ``({captioner: [(clip id, fps), ...]}, {captioner: clips skipped})``. Streams the manifest's
    ``captions`` and ``fps`` columns in batches and tests "has every caption kind of its captioner" with
    column operations: memory holds one batch and the work to do, whatever the corpus's size."""
    import numpy as np
    import pyarrow.compute as pc

    check_config(cfg)
    fallback = available_fallback(cfg) if cfg.captioner == "auto" else ""
    kinds: dict[str, list[str]] = {}
    todo: dict[str, list[tuple[str, float]]] = {}
    skipped: dict[str, int] = {}
    left = cfg.limit or None
    for t in corpus.iter_tables(["fps", "captions"], 8192):
        ids, fps = t.column("id").to_pylist(), t.column("fps").to_pylist()
        if cfg.captioner == "auto":  # scene-graph where the clip has ground truth
            names = ["scene-graph" if corpus.gt_path(cid).exists() else fallback for cid in ids]
        else:
            names = [cfg.captioner] * len(ids)
        caps = t.column("captions").combine_chunks()
        parent = pc.list_parent_indices(caps).to_numpy()
        flat = pc.list_flatten(caps)
        who, kind = pc.struct_field(flat, "captioner"), pc.struct_field(flat, "kind")
        done = {}
        for name in set(names):
            kinds.setdefault(name, list(captioner_kinds(name, cfg)))
            has_all = np.ones(len(ids), bool)
            for k in kinds[name]:
                has = np.zeros(len(ids), bool)
                has[parent[pc.and_(pc.equal(who, name), pc.equal(kind, k)).to_numpy(zero_copy_only=False)]] = True
                has_all &= has
            done[name] = has_all
        for i, (cid, name) in enumerate(zip(ids, names)):
            if not cfg.overwrite and done[name][i]:
                skipped[name] = skipped.get(name, 0) + 1
            elif left is None or left > 0:  # over the limit: counted neither as done nor as skipped
                todo.setdefault(name, []).append((cid, float(fps[i])))
                left = None if left is None else left - 1
    return {k: v for k, v in todo.items() if v}, skipped


class CaptionWorker:
    """Holds one captioner (one model load) and captions batches of clip ids read from the corpus."""

    def __init__(self, root: str, name: str, cfg: CaptionConfig) -> None:
        self.corpus = Corpus(root)
        self.captioner = build_captioner(name, cfg)

    def provenance(self) -> dict[str, str]:
        c = self.captioner
        return {"model_id": c.model_id, "weights_hash": c.weights_hash, "template_version": c.template_version}

    def run_batch(self, clips: list[tuple[str, float]]) -> list[Outcome]:
        items, failed = [], []
        for cid, fps in clips:
            t0 = time.perf_counter()
            try:
                if self.captioner.needs == "gt":
                    items.append(ClipInput(cid, fps, gt=self.corpus.read_ground_truth(cid)))
                else:
                    items.append(ClipInput(cid, fps, frames=self.corpus.read_clip(cid)))
            except Exception as e:  # noqa: BLE001 - unreadable clip or gt: recorded, the batch goes on
                failed.append(Outcome(cid, {}, f"unreadable input: {type(e).__name__}: {e}", time.perf_counter() - t0))
        return failed + (self.captioner.caption_batch(items) if items else [])


def _batches(pairs: list[tuple[str, float]], size: int) -> list[list[tuple[str, float]]]:
    return [pairs[i:i + size] for i in range(0, len(pairs), max(1, size))]


def _write(corpus: Corpus, name: str, prov: dict[str, str], outs: list[Outcome], result: CaptionResult) -> None:
    now = now_iso()
    caps: dict[str, list[Caption]] = {}
    for o in outs:
        if o.error or not o.captions:
            reason = o.error or "captioner returned no caption"
            corpus.quarantine(STAGE, o.clip_id, reason, captioner=name)
            result.failed[name] = result.failed.get(name, 0) + 1
            result.failures.append({"clip": o.clip_id, "captioner": name, "reason": reason})
            continue
        caps[o.clip_id] = [Caption(captioner=name, kind=k, text=t, seconds=round(o.seconds, 6), created_at=now, **prov)
                           for k, t in o.captions.items()]
    if caps:
        corpus.add_captions(caps)
        corpus.clear_quarantine(STAGE, caps)  # a clip that failed before and is captioned now
        result.captioned[name] = result.captioned.get(name, 0) + len(caps)


class _Sink:
    """Collects outcomes on the driver and writes them every ``every`` clips (and on flush)."""

    def __init__(self, corpus: Corpus, name: str, every: int, result: CaptionResult, advance) -> None:
        self.corpus, self.name, self.every, self.result, self.advance = corpus, name, max(1, every), result, advance
        self.prov: dict[str, str] = {}
        self.pending: list[Outcome] = []

    def add(self, outs: list[Outcome]) -> None:
        self.pending.extend(outs)
        if len(self.pending) >= self.every:
            self.flush()
        self.advance(len(outs))

    def flush(self) -> None:
        if self.pending:
            _write(self.corpus, self.name, self.prov, self.pending, self.result)
            self.pending = []


def _actor_node(actor: Any) -> str:
    """Run on an actor (``__ray_call__``): the id of the Ray node it was placed on."""
    from skyloom.raytools import node_id

    return node_id()


def run(cfg: CaptionConfig, wait: bool = False) -> CaptionResult:
    """Caption ``cfg.corpus`` (see :class:`CaptionConfig`); resumable, failures recorded per clip.

    Holds the corpus's writer lock (one ingest, render or caption job at a time): with another job
    writing, raises :class:`skyloom.corpus.CorpusBusyError` naming it, or with ``wait`` queues.
    """
    if not cfg.corpus:
        raise ConfigError("config field 'corpus' is empty: give the corpus directory")
    corpus = Corpus(cfg.corpus)
    with corpus.writer("caption", wait=wait):
        return _run_locked(cfg, corpus)


def _run_locked(cfg: CaptionConfig, corpus: Corpus) -> CaptionResult:
    from skyloom.cli_common import progress
    from skyloom.config import save_resolved
    from skyloom.raytools import init_ray, use_ray

    if cfg.batch_size < 1 or cfg.num_actors < 1:
        raise ConfigError(f"batch_size and num_actors must be >= 1, got {cfg.batch_size} and {cfg.num_actors}")
    t0 = time.perf_counter()
    todo, skipped = plan(corpus, cfg)
    result = CaptionResult(corpus=str(corpus.root), skipped=skipped)
    stamp = file_stamp()
    out_dir = corpus.root / "caption_runs"
    result.config_path = str(save_resolved(cfg, out_dir / f"{stamp}-{cfg.captioner}.yaml"))
    total = sum(len(v) for v in todo.values())
    with progress() as bar:
        task = bar.add_task("captioning", total=total)
        for name, recs in todo.items():
            batches = _batches(recs, cfg.batch_size)
            logger.info("%s: %d clips in %d batches (%s)", name, len(recs), len(batches), cfg.executor)
            sink = _Sink(corpus, name, cfg.write_every, result, lambda k: bar.advance(task, k))
            if not use_ray(cfg.executor, len(recs), cfg.ray_min_clips, cfg.ray_address):
                result.nodes["driver"] = 1
                worker = CaptionWorker(str(corpus.root), name, cfg)
                sink.prov = worker.provenance()
                try:
                    for b in batches:
                        sink.add(worker.run_batch(b))
                finally:  # on an interrupt too: keep what is done
                    sink.flush()
                continue
            require_extra("ray", what="Ray execution")
            from ray.util import ActorPool

            ray = init_ray(cfg.ray_address)
            remote = ray.remote(num_cpus=cfg.cpus_per_actor)(CaptionWorker)
            actors = [remote.remote(str(corpus.root), name, cfg) for _ in range(min(cfg.num_actors, len(batches)))]
            for nid in ray.get([a.__ray_call__.remote(_actor_node) for a in actors]):
                result.nodes[nid] = result.nodes.get(nid, 0) + 1
            try:
                sink.prov = ray.get(actors[0].provenance.remote())
                pool = ActorPool(actors)
                for outs in pool.map_unordered(lambda a, b: a.run_batch.remote(b), batches):
                    sink.add(outs)
            finally:  # on an interrupt too: keep what is done
                sink.flush()
                for a in actors:
                    ray.kill(a)
    result.seconds = time.perf_counter() - t0
    (out_dir / f"{stamp}-{cfg.captioner}.json").write_text(json.dumps(result.to_dict(), indent=2))
    return result
