"""Render a preset's scenes into a corpus as a Ray job, and render single specs in-process.

``run_render(cfg)`` samples ``num_scenes`` seeded specs (or reads them from ``specs_file``),
skips the scenes the corpus already has, and renders the rest in Ray tasks (``scenes_per_task``
scenes each, ``max_retries`` retries when a worker dies). Workers return bytes (mp4, npz) and
the ground-truth dict; the driver writes the files and appends the manifest rows through
:class:`skyloom.corpus.Corpus` in batches. A clip exists only once its manifest row is written.
What the corpus "already has" is keyed on the scene spec's hash (the clip's ``source_sha256``),
not on the preset name: a copy of a preset with other colours renders its own scenes into a
corpus holding the originals, while identical specs are skipped. A clip's id is derived from
(preset, seed, scene index), with ``-<spec hash[:8]>`` appended when a different scene already
holds that id, so a rerun after a crash renders exactly the missing clips and yields the same
corpus, byte for byte, as an uninterrupted run. A scene that fails (invalid spec, simulation
blow-up, a worker that keeps dying) is quarantined with its reason and the job goes on.

The scene specs come from the job's scene kind (``scene_kind``, see
:mod:`skyloom.datagen.scene_kinds`; ``objects`` by default) or from ``specs_file``.

Example:
    >>> from skyloom.datagen.render import RenderConfig, sample_specs
    >>> len(sample_specs(RenderConfig(), num=2, seed=0))
    2
"""

from __future__ import annotations

import dataclasses
import functools
import io
import json
import logging
import os
import re
import tempfile
import threading
import time
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from skyloom.config import ConfigError
from skyloom.datagen.scenes import (
    SceneConfig,
    SpecError,
    perturb_spec,
    sample_spec,
    scene_seed,
    spec_sha256,
    validate_spec,
)
from skyloom.errors import InputNotFoundError, require_extra

logger = logging.getLogger(__name__)

__all__ = [
    "RenderConfig",
    "RenderResult",
    "clip_id",
    "perturb_spec",
    "render_spec",
    "run_render",
    "sample_specs",
]

STAGE = "render"


@dataclass(frozen=True)
class RenderConfig:
    """``skyloom datagen render``: what to render, with which renderer, into which corpus."""

    preset: str = "balls-bounce"
    renderer: str = "mujoco"  # a name in skyloom.datagen.renderers.RENDERERS (plug-ins included)
    renderer_options: dict[str, Any] = field(default_factory=dict)  # the backend's Options (e.g. unrealcv: host, port)
    scene_kind: str = "objects"  # a name in skyloom.datagen.scene_kinds.SCENE_KINDS (plug-ins included)
    scene_options: dict[str, Any] = field(default_factory=dict)  # the scene kind's own config_class fields
    seed: int = 0
    num_scenes: int = 16
    out: str = ""
    val_fraction: float = 0.1
    test_fraction: float = 0.0
    crf: int = 18
    scenes_per_task: int = 2
    max_retries: int = 2
    num_cpus: int = 0  # local Ray instance size (0 = all cores)
    executor: str = "auto"  # auto (in-process below ray_min_scenes, Ray from there or with --ray-address) | local | ray
    ray_min_scenes: int = 64  # the auto executor's threshold (measured in docs/benchmarks.md)
    flush_every: int = 32  # manifest rows per append
    specs_file: str = ""  # JSON-lines scene specs to render instead of sampling
    retry_quarantined: bool = False  # rerender scenes that failed deterministically before
    scene: SceneConfig = field(default_factory=SceneConfig)


@dataclass
class RenderResult:
    """What a render job did."""

    corpus: str
    requested: int
    existing: int
    rendered: int
    failed: int
    frames: int
    seconds: float
    worker_seconds: float
    worker_cpu_seconds: float = 0.0
    failures: list[dict[str, str]] = field(default_factory=list)
    nodes: dict[str, int] = field(default_factory=dict)  # Ray node id (or "driver") -> scenes rendered there

    @property
    def frames_per_s(self) -> float:
        return self.frames / self.seconds if self.seconds else 0.0


def clip_id(preset: str, seed: int, index: int) -> str:
    """Deterministic clip id of scene ``index`` of a job (so reruns resume without duplicates)."""
    safe = re.sub(r"[^A-Za-z0-9_-]", "-", preset).strip("-_") or "scene"
    return f"{safe}-s{int(seed)}-{int(index):05d}"


def sample_specs(cfg: RenderConfig | SceneConfig, num: int, seed: int) -> list[dict[str, Any]]:
    """``num`` seeded scene specs from a preset (scene ``i`` uses :func:`scene_seed` (seed, i)),
    drawn by the config's scene kind (a bare :class:`SceneConfig`: the ``objects`` kind)."""
    if not isinstance(cfg, RenderConfig):
        return [sample_spec(cfg, scene_seed(seed, i), preset="custom", index=i) for i in range(int(num))]
    from skyloom.datagen.scene_kinds import build_scene_kind

    kind = build_scene_kind(cfg.scene_kind, cfg.scene_options)
    return [kind.sample(cfg.scene, scene_seed(seed, i), cfg.preset, i) for i in range(int(num))]


# -- one scene, in-process ----------------------------------------------------------------------

def _backend(name: str, settings_json: str):
    """One backend per (renderer, settings) per thread: keeps the GL context / connection.

    A resource cache, not state: backends render any spec independently. Per thread because a
    GL context is current in one thread only (EGL_BAD_ACCESS when another thread renders with it,
    e.g. the dashboard's job thread after a render in the main thread).
    """
    return _thread_backend(name, settings_json, threading.get_ident())


@functools.lru_cache(maxsize=8)
def _thread_backend(name: str, settings_json: str, thread_id: int):
    from skyloom.datagen.renderers import RENDERERS

    return RENDERERS.build(name, options=json.loads(settings_json), where="renderer_options")


def renderer_options(renderer: str, options: dict[str, Any]) -> dict[str, Any]:
    """A backend's options, checked against its ``config_class`` and completed with its defaults.

    Raises:
        RegistryError: unknown renderer (with "did you mean").
        ConfigError: an unknown option or a value of the wrong type (naming ``renderer_options.<key>``).
    """
    from skyloom.datagen.renderers import RENDERERS

    return dataclasses.asdict(RENDERERS.options(renderer, options, where="renderer_options"))


def _settings(cfg: RenderConfig) -> str:
    return json.dumps(renderer_options(cfg.renderer, cfg.renderer_options), sort_keys=True)


def render_spec(spec: dict[str, Any], renderer: str = "mujoco", **options: Any) -> tuple[np.ndarray, dict[str, Any]]:
    """Render one scene spec without a corpus: ``(frames uint8 (T, H, W, 3), gt dict)``.

    ``options`` are the renderer's (its ``config_class``, e.g. ``port=9001`` for unrealcv).
    Deterministic (same spec -> same frames). The gt dict also carries the arrays under
    ``gt["arrays_data"]``: ``segmentation`` uint8 (T, H, W) and ``depth`` float32 (T, H, W).

    Raises:
        SpecError: the spec is invalid (the message names the field).
        ConfigError: an unknown renderer option.
        skyloom.datagen.simulate.SimulationError: the simulation blew up.
    """
    validate_spec(spec)
    out = _backend(renderer, json.dumps(renderer_options(renderer, options), sort_keys=True)).render(spec)
    gt = dict(out.gt)
    gt["arrays_data"] = {"segmentation": out.segmentation, "depth": out.depth}
    return out.frames, gt


def encode_clip(frames: np.ndarray, fps: float, crf: int, metadata: dict[str, Any]) -> bytes:
    """H.264 mp4 bytes of uint8 (T, H, W, 3) frames (single-threaded x264: deterministic)."""
    from skyloom.video import write_video

    with tempfile.TemporaryDirectory(prefix="skyloom-enc-") as d:
        p = Path(d) / "clip.mp4"
        write_video(p, frames, fps, crf=crf, metadata=metadata)
        return p.read_bytes()


def npz_bytes(arrays: dict[str, np.ndarray]) -> bytes:
    """An .npz (as ``numpy.load`` reads it) with fixed zip timestamps, so bytes are reproducible."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for name, arr in arrays.items():
            info = zipfile.ZipInfo(f"{name}.npy", date_time=(1980, 1, 1, 0, 0, 0))
            info.compress_type = zipfile.ZIP_DEFLATED
            b = io.BytesIO()
            np.lib.format.write_array(b, np.ascontiguousarray(arr), allow_pickle=False)
            zf.writestr(info, b.getvalue())
    return buf.getvalue()


def _render_one(item: dict[str, Any], renderer: str, settings: str, crf: int) -> dict[str, Any]:
    """Render + encode + ground truth for one scene; failures become a result, not an exception."""
    from skyloom.datagen.simulate import SimulationError

    t0, c0 = time.perf_counter(), time.process_time()
    cid, spec = item["id"], item["spec"]
    try:
        validate_spec(spec)
        out = _backend(renderer, settings).render(spec)
    except SpecError as e:
        return {"id": cid, "ok": False, "kind": "invalid_spec", "reason": f"invalid scene spec: {e}"}
    except SimulationError as e:
        return {"id": cid, "ok": False, "kind": "simulation", "reason": str(e)}
    except (ConnectionError, TimeoutError):
        raise  # transient (e.g. the game restarted): Ray retries the task
    except Exception as e:  # noqa: BLE001 - a backend bug in one scene must not stop the job; recorded per scene
        logger.exception("scene %s failed", cid)
        return {"id": cid, "ok": False, "kind": "error", "reason": f"{type(e).__name__}: {e}"}
    r = spec["render"]
    mp4 = encode_clip(out.frames, float(r["fps"]), crf, {"clip_id": cid, "renderer": renderer,
                                                         "spec_sha256": item["spec_sha256"]})
    arrays = npz_bytes({"segmentation": out.segmentation.astype(np.uint8),  # (T, H, W)
                        "depth": out.depth.astype(np.float16)})  # (T, H, W)
    from skyloom.video import frames_sha256

    return {"id": cid, "ok": True, "mp4": mp4, "npz": arrays, "gt": out.gt, "frames_sha256": frames_sha256(mp4),
            "seconds": time.perf_counter() - t0,
            "cpu_seconds": time.process_time() - c0, "renderer_version": out.gt.get("renderer_version", "")}


def _render_shard(items: list[dict[str, Any]], renderer: str, settings: str, crf: int,
                  fault_marker: str | None = None) -> list[dict[str, Any]]:
    """Ray task body: render a few scenes in one worker (reusing its backend)."""
    # One CPU per task: Mesa's llvmpipe rasterises in the calling thread instead of spawning a
    # thread per core (measured ~15% more frames per CPU-second at 32-64 px).
    os.environ.setdefault("LP_NUM_THREADS", "0")
    if fault_marker and not os.path.exists(fault_marker):  # test hook: die once, like an OOM-killed worker
        Path(fault_marker).touch()
        os._exit(1)
    from skyloom.raytools import node_id

    nid = node_id()
    return [{**_render_one(it, renderer, settings, crf), "node_id": nid} for it in items]


# -- the job --------------------------------------------------------------------------------------

def _load_specs_file(path: str) -> list[dict[str, Any] | str]:
    p = Path(path)
    if not p.exists():
        raise InputNotFoundError(f"specs_file {p} does not exist")
    out: list[dict[str, Any] | str] = []
    for n, line in enumerate(p.read_text().splitlines(), 1):
        if line.strip():
            try:
                out.append(json.loads(line))
            except json.JSONDecodeError as e:
                out.append(f"{p}:{n}: not valid JSON ({e})")
    return out


def _items(cfg: RenderConfig) -> list[dict[str, Any]]:
    """(id, spec) of every scene the job should contain, in order."""
    if cfg.specs_file:
        items = []
        for i, s in enumerate(_load_specs_file(cfg.specs_file)):
            if isinstance(s, str):
                items.append({"index": i, "id": clip_id(cfg.preset, cfg.seed, i), "spec": None, "error": s})
                continue
            sha = spec_sha256(s) if isinstance(s, dict) else ""
            items.append({"index": i, "id": clip_id(cfg.preset, cfg.seed, i), "spec": s, "spec_sha256": sha})
        return items
    return [{"index": i, "id": clip_id(cfg.preset, cfg.seed, i), "spec": s, "spec_sha256": spec_sha256(s)}
            for i, s in enumerate(sample_specs(cfg, cfg.num_scenes, cfg.seed))]


def _check(cfg: RenderConfig) -> None:
    if not cfg.out:
        raise ConfigError("render: no output corpus given (--out CORPUS or --set out=PATH)")
    renderer_options(cfg.renderer, cfg.renderer_options)  # unknown renderer or option: an error naming it
    if cfg.num_scenes < 0:
        raise ConfigError(f"render: --num-scenes (num_scenes) must be >= 0, got {cfg.num_scenes}")
    if cfg.executor not in ("auto", "local", "ray"):
        raise ConfigError(f"render: executor {cfg.executor!r} is not one of: auto, local, ray")
    if cfg.scenes_per_task < 1:
        raise ConfigError(f"render: scenes_per_task must be >= 1, got {cfg.scenes_per_task}")
    require_extra("mujoco", what="datagen render (every scene is simulated in MuJoCo)")  # before any work starts
    if not cfg.specs_file:
        from skyloom.datagen.scene_kinds import build_scene_kind

        build_scene_kind(cfg.scene_kind, cfg.scene_options).check(cfg.scene)


def _record(cfg: RenderConfig, item: dict[str, Any], res: dict[str, Any], corpus) -> Any:
    from skyloom.corpus import ClipRecord, assign_split
    from skyloom.fsutil import sha256_bytes

    spec, cid = item["spec"], item["id"]
    r = spec["render"]
    n, fps = int(r["num_frames"]), float(r["fps"])
    return ClipRecord(
        id=cid, path=f"clips/{cid}.mp4", source_kind="synthetic", duration_s=n / fps, fps=fps,
        width=int(r["width"]), height=int(r["height"]), num_frames=n, license_id="CC0-1.0",
        source_url=f"skyloom://render/{spec.get('preset', cfg.preset)}/{spec.get('seed', cfg.seed)}",
        author="skyloom", attribution="Synthetic render by skyloom (CC0-1.0)", sha256=sha256_bytes(res["mp4"]),
        source_sha256=item["spec_sha256"], split=assign_split(cid, cfg.val_fraction, cfg.test_fraction),
        gt_path=f"gt/{cid}.json",
        meta={"preset": cfg.preset, "renderer": cfg.renderer, "renderer_version": res["renderer_version"],
              "seed": spec.get("seed"), "job_seed": cfg.seed, "index": item["index"], "probe": spec.get("probe"),
              "render_quality": r.get("quality", {}), "num_objects": len(spec["objects"]),
              "camera_motion": spec["camera"]["motion"], "spec_version": spec.get("spec_version"),
              "frames_sha256": res.get("frames_sha256", "")},  # the content hash `corpus validate --repair` trusts
    )


def _write_files(corpus, cid: str, res: dict[str, Any]) -> None:
    from skyloom.fsutil import atomic_write_bytes

    atomic_write_bytes(corpus.clip_path(cid), res["mp4"])
    atomic_write_bytes(corpus.gt_path(cid, ".npz"), res["npz"])
    gt = dict(res["gt"])
    gt["arrays"] = f"gt/{cid}.npz"
    corpus.write_ground_truth(cid, gt)


def _resume(cfg: RenderConfig, corpus, items: list[dict[str, Any]]) -> tuple[list[dict[str, Any]],
                                                                            list[dict[str, Any]]]:
    """(all items, the ones to render): a scene whose spec hash the corpus holds is done, whatever
    the preset's name; a new scene whose id another scene took gets ``-<spec hash[:8]>`` appended."""
    # Through the corpus's id index: only the clips of these scenes' spec hashes and ids are read.
    shas = {it.get("spec_sha256") or "" for it in items} - {""}
    by_spec = corpus.spec_of(spec=shas)
    done_sha = {sha for cid, sha in by_spec.items() if sha and corpus.clip_path(cid).exists()
                and corpus.gt_path(cid).exists()}
    holder = corpus.spec_of(ids=[*(it["id"] for it in items),  # id -> the spec hash it holds
                                 *(f"{it['id']}-{it['spec_sha256'][:8]}" for it in items if it.get("spec_sha256"))])
    bad_ids, bad_sha = set(), set()
    if not cfg.retry_quarantined:
        for q in corpus.quarantined(STAGE):
            if q.get("kind") not in ("invalid_spec", "simulation"):
                continue
            if q.get("spec_sha256"):
                bad_sha.add(q["spec_sha256"])
            else:  # quarantined before spec hashes were recorded
                bad_ids.add(q["item"])
    todo = []
    for it in items:
        sha = it.get("spec_sha256") or ""
        if sha in done_sha or sha in bad_sha:
            continue
        if it["id"] in holder and holder[it["id"]] != sha:
            # another scene (e.g. of a copy of this preset with other colours) holds the id
            if not sha:
                continue  # an unreadable line of a specs_file: nothing to compare, keep the old clip
            it = {**it, "id": f"{it['id']}-{sha[:8]}"}
            if holder.get(it["id"], sha) != sha:
                continue
        if it["id"] in bad_ids:
            continue
        todo.append(it)
    return items, todo


def _save_config(cfg: RenderConfig, folder: Path) -> Path:
    """Save the resolved config as ``render-<preset>-s<seed>.yaml``; a different config of the same
    preset name and seed (an edited copy) gets its own ``-<hash[:8]>`` file instead of overwriting it."""
    import hashlib

    import yaml

    from skyloom.config import save_resolved, to_dict

    base = clip_id(cfg.preset, cfg.seed, 0).rsplit("-", 1)[0]
    path = folder / f"render-{base}.yaml"
    if path.exists():
        text = yaml.safe_dump(to_dict(cfg), sort_keys=False)
        if path.read_text() != text:
            path = folder / f"render-{base}-{hashlib.sha256(text.encode()).hexdigest()[:8]}.yaml"
    return save_resolved(cfg, path)


def _shard_results(cfg: RenderConfig, shards: list[list[dict[str, Any]]], settings: str,
                   ray_address: str | None, fault_marker: str | None):
    """Yield ``(shard, results or the exception)``: in-process, or as Ray tasks (the ``auto``
    executor picks by job size, see :func:`skyloom.raytools.use_ray`)."""
    from skyloom.raytools import init_ray, use_ray

    def payload(shard: list[dict[str, Any]]) -> list[dict[str, Any]]:
        return [{k: it[k] for k in ("id", "spec", "spec_sha256")} for it in shard]

    if not use_ray(cfg.executor, sum(map(len, shards)), cfg.ray_min_scenes, ray_address):
        for shard in shards:
            try:
                yield shard, _render_shard(payload(shard), cfg.renderer, settings, cfg.crf)
            except (ConnectionError, TimeoutError) as e:
                yield shard, e
        return
    ray = init_ray(ray_address, num_cpus=cfg.num_cpus or None)
    # max_retries: a dead worker; retry_exceptions: a transient renderer connection error
    task = ray.remote(num_cpus=1, max_retries=cfg.max_retries,
                      retry_exceptions=[ConnectionError, TimeoutError])(_render_shard)
    max_in_flight = max(2, 2 * int(ray.available_resources().get("CPU", 1) or 1))
    inflight: dict[Any, list[dict[str, Any]]] = {}
    queue = list(shards)
    while queue or inflight:
        while queue and len(inflight) < max_in_flight:
            shard = queue.pop(0)
            inflight[task.remote(payload(shard), cfg.renderer, settings, cfg.crf, fault_marker)] = shard
            fault_marker = None
        done, _ = ray.wait(list(inflight), num_returns=1)
        shard = inflight.pop(done[0])
        try:
            yield shard, ray.get(done[0])
        except Exception as e:  # noqa: BLE001 - reported per scene by the caller
            yield shard, e


def run_render(cfg: RenderConfig, ray_address: str | None = None, show_progress: bool = True,
               _fault_marker: str | None = None, wait: bool = False) -> RenderResult:
    """Render ``cfg``'s scenes into the corpus at ``cfg.out`` (created if missing); resumable.

    Args:
        cfg: the resolved render config.
        ray_address: join this Ray cluster (default: ``$RAY_ADDRESS`` or a local instance).
        show_progress: draw a progress bar (off when SKYLOOM_NO_PROGRESS=1).
        _fault_marker: test hook; the first task kills its worker once (exercises retries).
        wait: queue behind another job writing the corpus (default: raise ``CorpusBusyError``).
    """
    from skyloom.corpus import Corpus

    _check(cfg)
    corpus = Corpus.create(cfg.out)
    with corpus.writer("render", wait=wait):
        return _render_locked(cfg, corpus, ray_address, show_progress, _fault_marker)


def _render_locked(cfg: RenderConfig, corpus, ray_address: str | None, show_progress: bool,
                   _fault_marker: str | None) -> RenderResult:
    """:func:`run_render` under the corpus's writer lock."""
    from skyloom.cli_common import progress

    t0 = time.perf_counter()
    _save_config(cfg, corpus.root / "configs")
    items, todo = _resume(cfg, corpus, _items(cfg))
    result = RenderResult(corpus=str(corpus.root), requested=len(items), existing=len(items) - len(todo),
                          rendered=0, failed=0, frames=0, seconds=0.0, worker_seconds=0.0)
    by_id = {it["id"]: it for it in todo}

    def fail(cid: str, kind: str, reason: str) -> None:
        it = by_id.get(cid, {})
        corpus.quarantine(STAGE, cid, reason, kind=kind, preset=cfg.preset, seed=cfg.seed, index=it.get("index"),
                          spec_sha256=it.get("spec_sha256"))
        result.failed += 1
        result.failures.append({"id": cid, "kind": kind, "reason": reason})
        logger.warning("scene %s quarantined: %s", cid, reason)

    ready = []
    for it in todo:
        if it.get("error"):
            fail(it["id"], "invalid_spec", it["error"])
        else:
            ready.append(it)
    pending_records: list[Any] = []

    def flush() -> None:
        if pending_records:
            corpus.append(pending_records)
            corpus.clear_quarantine(STAGE, [r.id for r in pending_records])  # failed once, rendered now
            pending_records.clear()

    if ready:
        settings = _settings(cfg)
        shards = [ready[i:i + cfg.scenes_per_task] for i in range(0, len(ready), cfg.scenes_per_task)]
        with progress(disable=None if show_progress else True) as bar:
            job = bar.add_task(f"render {cfg.preset}", total=len(ready))
            for shard, results in _shard_results(cfg, shards, settings, ray_address, _fault_marker):
                if isinstance(results, BaseException):  # worker kept dying (after max_retries) or the task raised
                    e = results
                    for it in shard:
                        fail(it["id"], "worker", f"task failed after {cfg.max_retries} retries: {type(e).__name__}: "
                                                 f"{str(e).splitlines()[0] if str(e) else ''}")
                    bar.advance(job, len(shard))
                    continue
                for it, res in zip(shard, results):
                    if not res["ok"]:
                        fail(it["id"], res["kind"], res["reason"])
                        continue
                    _write_files(corpus, it["id"], res)
                    pending_records.append(_record(cfg, it, res, corpus))
                    result.rendered += 1
                    result.frames += int(it["spec"]["render"]["num_frames"])
                    result.worker_seconds += res["seconds"]
                    result.worker_cpu_seconds += res["cpu_seconds"]
                    nid = res.get("node_id") or "driver"
                    result.nodes[nid] = result.nodes.get(nid, 0) + 1
                    if len(pending_records) >= cfg.flush_every:
                        flush()
                bar.advance(job, len(shard))
        flush()
    result.seconds = time.perf_counter() - t0
    logger.info("render %s: %d rendered, %d already present, %d failed (%.1f s)", cfg.preset, result.rendered,
                result.existing, result.failed, result.seconds)
    return result
