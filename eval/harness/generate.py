"""Video generation for evaluations: one pipeline per worker, in-process or one Ray actor per checkpoint.

A :class:`GeneratorWorker` loads one checkpoint with a pipeline loader (``skyloom.model:load_pipeline``
by default; any ``"module:function"`` with the same contract) and generates batches of items.
Loading errors are kept, not raised, so that a checkpoint that does not load becomes a failure
record of that evaluation instead of a crash of the whole job. :func:`generate_all` drives the
workers (in-process, or Ray actors with a GPU each when the cluster has GPUs) and hands every
finished batch to a callback as soon as it arrives, so a kill loses only the batches in flight.
"""

from __future__ import annotations

import logging
import traceback
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from skyloom.registry import resolve

logger = logging.getLogger(__name__)


@dataclass
class GenJob:
    """Everything one worker must generate for one evaluation."""

    eval_id: str
    checkpoint: str
    items: Sequence[Mapping[str, Any]]  # each: item_id, prompt, seed, (cond_frames uint8 (k, H, W, 3)), num_frames
    kwargs: dict[str, Any] = field(default_factory=dict)  # steps, guidance, num_frames, width, height, fps
    batch_size: int = 4
    loader: str | None = None  # this job's pipeline loader (None: generate_all's)


@dataclass
class GenBatch:
    """A finished batch: videos by item id, or failures by item id (stage, reason)."""

    eval_id: str
    videos: dict[str, np.ndarray]
    failures: dict[str, tuple[str, str]]
    info: dict[str, Any]


class GeneratorWorker:
    """Holds one loaded pipeline (or the reason it did not load)."""

    def __init__(self, loader: str, checkpoint: str, device: str = "cpu") -> None:
        self.checkpoint = checkpoint
        self.error: str | None = None
        self.pipeline: Any = None
        try:
            self.pipeline = resolve(LEGACY_LOADERS.get(loader, loader))(checkpoint, device=device)
        except Exception as e:  # noqa: BLE001 - any load error (user loader code) becomes a failure record
            self.error = f"{type(e).__name__}: {e}"
            logger.warning("checkpoint %s does not load: %s", checkpoint, self.error)
            logger.debug("%s", traceback.format_exc())

    def info(self) -> dict[str, Any]:
        if self.pipeline is None:
            return {"error": self.error}
        p = self.pipeline
        return {"error": None, "name": getattr(p, "name", None), "fps": float(getattr(p, "fps", 8) or 8),
                "num_frames": getattr(p, "num_frames", None), "height": getattr(p, "height", None),
                "width": getattr(p, "width", None)}

    def _call(self, items: Sequence[Mapping[str, Any]], kwargs: dict[str, Any]) -> np.ndarray:
        cond = None
        if items[0].get("cond_frames") is not None:
            cond = np.stack([it["cond_frames"] for it in items])  # (B, k, H, W, 3)
        kw = _accepted(self.pipeline.generate, kwargs)
        if items[0].get("num_frames") is not None:
            kw["num_frames"] = items[0]["num_frames"]
            if items[0].get("height") is not None and "height" in kw:  # physics items: the render's size
                kw["height"], kw["width"] = items[0]["height"], items[0]["width"]
        out = self.pipeline.generate([it["prompt"] for it in items], [int(it["seed"]) for it in items],
                                     cond_frames=cond, **kw)
        arr = np.asarray(out)
        if arr.ndim != 5 or arr.shape[0] != len(items) or arr.shape[-1] != 3 or arr.dtype != np.uint8:
            raise ValueError(f"pipeline returned {arr.dtype} {arr.shape}; expected uint8 ({len(items)}, T, H, W, 3)")
        return arr  # (B, T, H, W, 3)

    def generate(self, eval_id: str, items: Sequence[Mapping[str, Any]], kwargs: dict[str, Any]) -> GenBatch:
        """Generate a batch; if it fails, retry item by item so one bad item fails alone."""
        if self.pipeline is None:
            return GenBatch(eval_id, {}, {it["item_id"]: ("load", self.error or "not loaded") for it in items},
                            self.info())
        videos, failures = {}, {}
        try:
            arr = self._call(items, kwargs)
            videos = {it["item_id"]: arr[i] for i, it in enumerate(items)}
        except Exception as e:  # noqa: BLE001 - user pipeline code: retried item by item, failures recorded
            if len(items) == 1:
                failures[items[0]["item_id"]] = ("generate", f"{type(e).__name__}: {e}")
            else:
                for it in items:
                    one = self.generate(eval_id, [it], kwargs)
                    videos.update(one.videos)
                    failures.update(one.failures)
        return GenBatch(eval_id, videos, failures, self.info())


def _accepted(fn: Callable[..., Any], kwargs: dict[str, Any]) -> dict[str, Any]:
    """The ``kwargs`` that ``fn`` takes: the suite's width/height/fps reach pipelines that accept them
    (diffusers adapters); skyloom's own pipeline generates at its trained size."""
    import inspect

    params = inspect.signature(fn).parameters
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values()):
        return dict(kwargs)
    return {k: v for k, v in kwargs.items() if k in params}


def _group(items: Sequence[Mapping[str, Any]], batch_size: int) -> list[list[Mapping[str, Any]]]:
    """Batches of items that can share one ``generate`` call (same conditioning kind and length)."""
    groups: dict[tuple, list[Mapping[str, Any]]] = {}
    for it in items:
        c = it.get("cond_frames")
        groups.setdefault((None if c is None else c.shape, it.get("num_frames")), []).append(it)
    out = []
    for g in groups.values():
        out += [g[i:i + batch_size] for i in range(0, len(g), batch_size)]
    return out


# Loader spellings stored by skyloom before its stages moved under ``skyloom.``: resolved to the
# package, never to a user's own top-level ``model`` module.
LEGACY_LOADERS = {"model:load_pipeline": "skyloom.model:load_pipeline"}


def generate_all(jobs: Sequence[GenJob], on_batch: Callable[[GenBatch], None], *, loader: str,
                 device: str = "cpu", use_ray: bool = False, ray_address: str | None = None,
                 cpus_per_actor: float = 1.0) -> dict[str, dict[str, Any]]:
    """Generate every job's items; call ``on_batch`` for each finished batch (in the driver).

    Args:
        jobs: one per (evaluation, checkpoint); jobs with no items still load the pipeline
            (to report its info and a load failure).
        on_batch: called with each :class:`GenBatch` as it completes.
        loader: ``"module:function"`` loading a pipeline from a checkpoint path.
        use_ray: one Ray actor per checkpoint (``num_gpus=1`` each when the cluster has GPUs),
            running concurrently; else one checkpoint after the other in this process.

    Returns:
        pipeline info per eval id (fps, size, name, or ``error`` if it did not load).
    """
    infos: dict[str, dict[str, Any]] = {}
    if not use_ray:
        for job in jobs:
            w = GeneratorWorker(job.loader or loader, job.checkpoint, device)
            infos[job.eval_id] = w.info()
            for batch in _group(job.items, job.batch_size):
                on_batch(w.generate(job.eval_id, batch, job.kwargs))
            del w
        return infos

    from skyloom.raytools import init_ray

    ray = init_ray(ray_address)
    gpus = ray.cluster_resources().get("GPU", 0)
    actor_cls = ray.remote(num_cpus=cpus_per_actor, num_gpus=1 if gpus >= 1 else 0)(GeneratorWorker)
    actors, pending = [], {}
    try:
        for job in jobs:
            a = actor_cls.remote(job.loader or loader, job.checkpoint, "cuda" if gpus >= 1 else device)
            actors.append(a)
            pending[a.info.remote()] = ("info", job.eval_id)
            for batch in _group(job.items, job.batch_size):
                pending[a.generate.remote(job.eval_id, batch, job.kwargs)] = ("batch", job.eval_id)
        while pending:
            done, _ = ray.wait(list(pending), num_returns=1)
            kind, eid = pending.pop(done[0])
            try:
                res = ray.get(done[0])
            except Exception as e:  # noqa: BLE001 - the actor died (out of memory, ...): its remaining items fail
                logger.error("generation worker for %s died: %s", eid, e)
                if kind == "info":
                    infos[eid] = {"error": f"worker died: {type(e).__name__}: {e}"}
                continue
            if kind == "info":
                infos[eid] = res
            else:
                on_batch(res)
    finally:
        for a in actors:
            ray.kill(a)
    return infos
