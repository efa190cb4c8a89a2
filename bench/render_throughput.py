"""Render throughput: the full ``datagen render`` job vs a bare MuJoCo render loop, 1 vs 2 workers.

    .venv/bin/python -m bench.render_throughput [--preset balls-bounce] [--scenes 48]

Same scenes on both sides (the preset's first N specs, seed 123). The bare loop is the least a
MuJoCo user can do for these clips in one process: compile the MJCF, step the physics, one
``mjr_render`` + ``mjr_readPixels`` of RGB per frame, one GL context reused for every scene (it
also reports the loop with the second, segment-id pass our ground truth needs). The job is
``run_render`` end to end on a warm local Ray instance: render (RGB + segmentation/depth pass),
H.264 encode, ground truth (JSON + npz), files and manifest rows. Both sides rasterise in the
calling thread (``LP_NUM_THREADS=0``), so one worker is one core.

Prints a table and writes ``bench/out/render_throughput.json``.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import shutil
import tempfile
import time
from pathlib import Path

os.environ.setdefault("MUJOCO_GL", "egl")
os.environ.setdefault("LP_NUM_THREADS", "0")
os.environ.setdefault("SKYLOOM_NO_PROGRESS", "1")

OUT = Path(__file__).resolve().parent / "out"


def bare_loop(specs: list[dict], seg_pass: bool) -> dict:
    """frames/s of: MJCF -> step -> render RGB (-> segment pass) -> read pixels, nothing else."""
    import mujoco
    import numpy as np
    from mujoco import gl_context

    from skyloom.datagen.scenes import camera_frames
    from skyloom.datagen.simulate import load_model, steps_per_frame

    gl = gl_context.GLContext(64, 64)
    gl.make_current()
    frames = 0
    t0, c0 = time.perf_counter(), time.process_time()
    for spec in specs:
        r = spec["render"]
        W, H = r["width"], r["height"]
        model, data = load_model(spec)
        ctx = mujoco.MjrContext(model, mujoco.mjtFontScale.mjFONTSCALE_100.value)
        mujoco.mjr_setBuffer(mujoco.mjtFramebuffer.mjFB_OFFSCREEN.value, ctx)
        scene, opt, cam = mujoco.MjvScene(model, maxgeom=100), mujoco.MjvOption(), mujoco.MjvCamera()
        rect = mujoco.MjrRect(0, 0, W, H)
        rgb, depth = np.empty((H, W, 3), np.uint8), np.empty((H, W), np.float32)
        n = steps_per_frame(spec)
        for i, c in enumerate(camera_frames(spec)):
            if i:
                for _ in range(n):
                    mujoco.mj_step(model, data)
            cam.lookat[:] = c["lookat"]
            cam.distance, cam.azimuth, cam.elevation = c["distance"], c["azimuth"], c["elevation"]
            mujoco.mjv_updateScene(model, data, opt, None, cam, mujoco.mjtCatBit.mjCAT_ALL.value, scene)
            mujoco.mjr_render(rect, scene, ctx)
            mujoco.mjr_readPixels(rgb, None, rect, ctx)
            if seg_pass:
                scene.flags[mujoco.mjtRndFlag.mjRND_SEGMENT] = scene.flags[mujoco.mjtRndFlag.mjRND_IDCOLOR] = True
                mujoco.mjr_render(rect, scene, ctx)
                mujoco.mjr_readPixels(rgb, depth, rect, ctx)
                scene.flags[mujoco.mjtRndFlag.mjRND_SEGMENT] = scene.flags[mujoco.mjtRndFlag.mjRND_IDCOLOR] = False
            frames += 1
        ctx.free()
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    gl.free()
    return {"frames": frames, "wall_s": wall, "cpu_s": cpu, "fps": frames / wall, "f_per_cpu_s": frames / cpu}


def job(cfg, workers: int, tmp: Path) -> dict:
    """The full render job on a fresh local Ray instance with ``workers`` CPUs (after a warm-up)."""
    from skyloom.datagen.render import run_render
    from skyloom.raytools import init_ray, shutdown_ray

    shutdown_ray()
    init_ray("local", num_cpus=workers)
    warm = dataclasses.replace(cfg, out=str(tmp / f"warm{workers}"), num_scenes=2 * workers, seed=cfg.seed + 1,
                               scenes_per_task=1)
    run_render(warm, show_progress=False)
    out = tmp / f"job{workers}"
    c0 = time.process_time()
    res = run_render(dataclasses.replace(cfg, out=str(out)), show_progress=False)
    driver_cpu = time.process_time() - c0
    shutdown_ray()
    assert res.failed == 0 and res.rendered == cfg.num_scenes, res
    cpu = res.worker_cpu_seconds + driver_cpu
    return {"workers": workers, "frames": res.frames, "wall_s": res.seconds, "fps": res.frames / res.seconds,
            "fps_per_worker": res.frames / res.seconds / workers, "worker_cpu_s": res.worker_cpu_seconds,
            "driver_cpu_s": driver_cpu, "f_per_cpu_s": res.frames / cpu}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--preset", default="balls-bounce")
    ap.add_argument("--scenes", type=int, default=48)
    args = ap.parse_args()

    from skyloom.config import load
    from skyloom.datagen.render import RenderConfig, sample_specs

    cfg = load(RenderConfig, args.preset, [], group="datagen")
    cfg = dataclasses.replace(cfg, num_scenes=args.scenes, seed=123)
    specs = sample_specs(cfg, args.scenes, cfg.seed)
    load0 = os.getloadavg()[0]
    bare_loop(specs[:2], False)  # warm-up (EGL, shader compilation)
    rgb = bare_loop(specs, False)
    seg = bare_loop(specs, True)
    tmp = Path(tempfile.mkdtemp(prefix="skyloom-bench-render-"))
    try:
        j1 = job(cfg, 1, tmp)
        j2 = job(cfg, 2, tmp)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    load1 = os.getloadavg()[0]
    r = {
        "preset": args.preset, "scenes": args.scenes, "size": [cfg.scene.width, cfg.scene.height],
        "frames_per_clip": cfg.scene.num_frames, "quality": dataclasses.asdict(cfg.scene.quality),
        "bare_rgb": rgb, "bare_rgb_seg": seg, "job_1_worker": j1, "job_2_workers": j2,
        "job_vs_bare_rgb_per_worker": j1["fps"] / rgb["fps"], "job_vs_bare_seg_per_worker": j1["fps"] / seg["fps"],
        "job_vs_bare_rgb_per_cpu_s": j1["f_per_cpu_s"] / rgb["f_per_cpu_s"],
        "speedup_2_workers": j2["fps"] / j1["fps"], "loadavg_1min": [load0, load1], "cpus": os.cpu_count(),
    }
    print(f"\nrender throughput, preset {args.preset}: {args.scenes} scenes x {cfg.scene.num_frames} frames, "
          f"{cfg.scene.width}x{cfg.scene.height}, load avg {load0:.1f} -> {load1:.1f}\n")
    print(f"{'what':40s} {'frames/s':>9s} {'frames/CPU-s':>13s} {'cores used':>11s}")
    for name, d in (("bare loop, RGB only", rgb), ("bare loop, RGB + segment/depth pass", seg),
                    ("full job, 1 worker", j1), ("full job, 2 workers", j2)):
        cores = d["frames"] / d["f_per_cpu_s"] / d["wall_s"]  # CPU-s per wall-s: how much CPU we got
        d["cores_used"] = cores
        print(f"{name:40s} {d['fps']:9.1f} {d['f_per_cpu_s']:13.1f} {cores:11.2f}")
    print(f"\njob / bare RGB loop per worker: {r['job_vs_bare_rgb_per_worker']:.2f}x (wall), "
          f"{r['job_vs_bare_rgb_per_cpu_s']:.2f}x (per CPU-s); "
          f"vs bare RGB+seg loop: {r['job_vs_bare_seg_per_worker']:.2f}x")
    print(f"2 workers / 1 worker: {r['speedup_2_workers']:.2f}x")
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "render_throughput.json").write_text(json.dumps(r, indent=2))


if __name__ == "__main__":
    main()
