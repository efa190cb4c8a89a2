"""The simulator beside the model: reference videos and per-scene numbers of a physics suite.

A physics suite stores, per checkpoint, the model's continuation of each probe scene and its
scores; the simulator's own clips live only in memory during the evaluation. The dashboard asks
eval to re-create them from the suite config stored with the evaluation (``config.suite.physics``):
:func:`skyloom.eval.harness.probes.probe_specs` gives each item's scene spec and
:func:`skyloom.eval.harness.probes.probe_reference` renders it (deterministic, so these are the frames
the evaluation compared against) with the perturbed re-simulation and the *physical variance*
(take 0); :func:`skyloom.eval.harness.probes.continuation_numbers` gives a checkpoint's numbers. This
module only caches and serves them: no physics here.

Rendering takes seconds per scene, so it runs as a :class:`~skyloom.dashboards.jobs.JobQueue`
job and is cached on disk under ``<cache>/physics/<key>/``, the key hashing the spec and the
settings (given frames, perturbation scale and seed):

- ``given.mp4``: the given frames, the last one held to the clip's length (so it plays in sync),
- ``simulator.mp4``, ``perturbed.mp4``: the simulator's clip and the perturbed re-simulation,
- ``simulator.npy``: the simulator's frames, uncompressed, to score checkpoint videos against,
- ``numbers.json``: the Physics-IQ raw metrics of the perturbed take against the simulator.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from pathlib import Path
from typing import Any

import numpy as np

from skyloom.dashboards.jobs import JobQueue

log = logging.getLogger(__name__)

FILES = ("given.mp4", "simulator.mp4", "perturbed.mp4", "simulator.npy", "numbers.json")
VERSION = 1  # bump when what is written changes


def physics_spec(ev: dict[str, Any]) -> Any | None:
    """The :class:`skyloom.eval.harness.suites.PhysicsSpec` stored with an evaluation, or None (no probe scenes)."""
    from skyloom.config import from_dict
    from skyloom.eval.harness.suites import PhysicsSpec

    d = ((ev.get("config") or {}).get("suite") or {}).get("physics")
    if not d:
        return None
    try:
        ph = from_dict(PhysicsSpec, {k: tuple(v) if k == "overrides" else v for k, v in d.items()})
    except (ValueError, TypeError) as e:
        log.warning("evaluation %s: unreadable physics settings (%s)", ev.get("eval_id"), e)
        return None
    return ph if ph.num_scenes > 0 else None


def ref_key(spec: dict[str, Any], ph: Any) -> str:
    """Cache key of one scene's reference videos: the spec and every setting they depend on."""
    from skyloom.datagen.scenes import spec_sha256

    blob = json.dumps({"v": VERSION, "spec": spec_sha256(spec), "cond_frames": ph.cond_frames,
                       "scale": ph.perturb_scale, "seed": ph.seed}, sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()[:24]


def _write_mp4(path: Path, frames: np.ndarray, fps: float) -> None:
    from skyloom.video import write_video

    tmp = path.with_name(f".{path.name}.tmp.mp4")
    write_video(tmp, frames, fps)
    os.replace(tmp, path)


def render_refs(spec: dict[str, Any], ph: Any, dest: Path) -> None:
    """Write eval's reference of ``spec`` (:func:`skyloom.eval.harness.probes.probe_reference`) into ``dest``."""
    from skyloom.eval.harness.probes import probe_reference
    from skyloom.fsutil import atomic_write_text

    dest.mkdir(parents=True, exist_ok=True)
    ref = probe_reference(spec, ph)
    frames, k = ref.frames, ref.cond_frames  # (T, H, W, 3)
    given = np.concatenate([frames[:k], np.repeat(frames[k - 1:k], frames.shape[0] - k, axis=0)])  # last one held
    tmp = dest / ".simulator.tmp.npy"
    np.save(tmp, frames)
    os.replace(tmp, dest / "simulator.npy")
    for name, v in (("given.mp4", given), ("simulator.mp4", frames), ("perturbed.mp4", ref.perturbed)):
        _write_mp4(dest / name, v, ref.fps)
    atomic_write_text(dest / "numbers.json", json.dumps({"variance": ref.variance, "cond_frames": k, "fps": ref.fps,
                                                         "perturb_scale": ph.perturb_scale, "seed": ph.seed,
                                                         "num_frames": int(frames.shape[0])}))


def checkpoint_numbers(video: str | os.PathLike, simulator: np.ndarray, cond_frames: int) -> dict[str, float]:
    """Physics-IQ raw metrics of one checkpoint's continuation against the simulator's frames: eval's
    :func:`skyloom.eval.harness.probes.continuation_numbers` (the video resized up to the probe's size, as
    the evaluation does), the numbers behind the stored score."""
    from skyloom.eval.harness.probes import continuation_numbers

    return continuation_numbers(video, simulator, cond_frames)


def shown_probes(specs: dict[str, dict[str, Any]], evals: list[dict[str, Any]], num_scenes: int
                 ) -> dict[str, dict[str, Any]]:
    """The probes an evaluation scored, from every drawn spec: the admitted ones its stored config
    records (``physics_probes.admitted``), or, for evaluations stored before probe admission, the first
    ``num_scenes`` draws."""
    records = ((e.get("config") or {}).get("physics_probes") for e in evals)
    admitted = next((d["admitted"] for d in records if d), None)
    ids = [i for i in admitted if i in specs] if admitted else list(specs)[:num_scenes]
    return {i: specs[i] for i in ids}


class PhysicsRefs:
    """Reference videos of physics items, rendered on demand through the job queue and cached."""

    def __init__(self, cache_dir: Path, jobs: JobQueue) -> None:
        self.root = cache_dir / "physics"
        self.jobs = jobs
        self._specs: dict[str, dict[str, dict[str, Any]]] = {}  # PhysicsSpec repr -> {item_id: spec}
        self._numbers: dict[tuple, dict[str, float]] = {}  # (video, mtime, size, key) -> raw metrics

    def specs(self, ph: Any) -> dict[str, dict[str, Any]]:
        from skyloom.eval.harness.probes import probe_specs

        k = repr(ph)
        if k not in self._specs:
            self._specs[k] = probe_specs(ph)
        return self._specs[k]

    def ensure(self, item_id: str, spec: dict[str, Any], ph: Any) -> tuple[str, Path, dict[str, Any]]:
        """``(key, folder, job status)``; queues the rendering when the folder is incomplete."""
        key = ref_key(spec, ph)
        dest = self.root / key

        def done() -> bool:
            return all((dest / f).is_file() for f in FILES)

        job = self.jobs.submit(f"physics-{key}", "physics", f"simulate {item_id}",
                               lambda: render_refs(spec, ph, dest), is_done=done)
        st = self.jobs.status(job.key) or job.to_dict()
        if st["status"] == "done" and not done():  # removed since it was made
            st = {**st, "status": "error", "error": "reference files were removed; reload to render them again"}
        return key, dest, st

    def numbers(self, video: str | os.PathLike, dest: Path, key: str, cond_frames: int) -> dict[str, float] | None:
        """:func:`checkpoint_numbers`, memoised by the video's size and mtime; None if it cannot be read."""
        try:
            st = os.stat(video)
        except OSError:
            return None
        mk = (str(video), st.st_mtime_ns, st.st_size, key)
        if mk not in self._numbers:
            try:
                self._numbers[mk] = checkpoint_numbers(video, np.load(dest / "simulator.npy"), cond_frames)
            except Exception as e:  # noqa: BLE001 - an undecodable video: logged, None in the payload, the page still loads
                log.warning("physics numbers of %s: %s", video, e, exc_info=True)
                return None
        return self._numbers[mk]
