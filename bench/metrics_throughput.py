"""Metric throughput on CPU (videos/s) and the Fréchet step against ``scipy.linalg.sqrtm``.

1. Fréchet distance on N=2048 random features at 400-d (I3D logits) and 1408-d (VideoMAE-v2):
   skyloom's Cholesky + eigenvalues formulation vs the StyleGAN-V reference
   (``scipy.linalg.sqrtm`` of Σ₁Σ₂, real part): median wall and CPU time, speed-up, relative
   difference of the values. Target: >= 5x faster, same value (1e-6 relative).
2. Each metric's throughput on 16-frame 64×64 clips (I3D resizes to 224, CLIP to 224): models are
   random-init of the real architectures (I3D Inception-V1, open_clip ViT-B-32); weights do not
   change the cost. Physics-IQ is measured with the physical variance given, plus the cost of one
   re-simulation (``skyloom.datagen.render_spec``) separately.

Writes ``bench/out/metrics_throughput.json``.

Usage: ``.venv/bin/python -m bench.metrics_throughput [--repeats 3] [--quick] [--frechet-only]``
(prefix ``OPENBLAS_NUM_THREADS=1`` for the single-thread comparison, fairer on a shared machine).
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

OUT = Path(__file__).resolve().parent / "out" / "metrics_throughput.json"


def _time(fn: Callable[[], Any], repeats: int) -> tuple[float, float, float, Any]:
    """(median wall, best wall, median CPU seconds, value) over ``repeats`` calls."""
    walls, cpus, val = [], [], None
    for _ in range(repeats):
        c0, t0 = time.process_time(), time.perf_counter()
        val = fn()
        walls.append(time.perf_counter() - t0)
        cpus.append(time.process_time() - c0)
    return statistics.median(walls), min(walls), statistics.median(cpus), val


def bench_frechet(repeats: int, dims: tuple[int, ...]) -> list[dict[str, Any]]:
    from skyloom.eval.functional import frechet

    rows = []
    rng = np.random.default_rng(0)
    for d in dims:
        mix = rng.normal(size=(d, d)) / np.sqrt(d)
        x = rng.normal(size=(2048, d)) @ mix
        y = rng.normal(size=(2048, d)) @ (mix + 0.05 * rng.normal(size=(d, d)) / np.sqrt(d)) + 0.1
        s1, s2 = frechet.gaussian_stats(x), frechet.gaussian_stats(y)
        w_o, b_o, c_o, v_o = _time(lambda s1=s1, s2=s2: frechet.frechet_distance(*s1, *s2), repeats)
        w_s, b_s, c_s, v_s = _time(lambda s1=s1, s2=s2: frechet.frechet_distance_sqrtm(*s1, *s2), repeats)
        rows.append({"dim": d, "n": 2048, "skyloom_s": w_o, "skyloom_best_s": b_o, "skyloom_cpu_s": c_o,
                     "sqrtm_s": w_s, "sqrtm_best_s": b_s, "sqrtm_cpu_s": c_s, "speedup_wall": w_s / w_o,
                     "speedup_best": b_s / b_o, "speedup_cpu": c_s / c_o, "value": v_o, "value_sqrtm": v_s,
                     "rel_diff": abs(v_o - v_s) / abs(v_s)})
    return rows


def _clips(n: int, seed: int = 0) -> np.ndarray:
    from tests.conftest import moving_square_video

    return np.stack([moving_square_video(16, 64, 64, seed=seed + i) for i in range(n)])


def bench_metrics(quick: bool) -> list[dict[str, Any]]:
    from skyloom.eval.features.base import get_extractor
    from skyloom.eval.metrics import METRICS

    i3d = get_extractor("i3d", random_init=True)
    clip = get_extractor("clip", random_init=True)  # full ViT-B-32 architecture
    k = 1 if quick else 2
    vids = _clips(40)
    ref = vids[::-1].copy()
    var = {"spatial_iou": 0.9, "spatiotemporal_iou": 0.8, "weighted_spatial_iou": 0.8, "mse": 1e-3}
    objs = [{"name": "obj0", "rgb": [255, 40, 40]}]
    cases: list[tuple[str, int, dict[str, Any], Callable[[Any, np.ndarray], None]]] = [
        ("fvd", 2 * k, {"extractor": i3d}, lambda m, v: m.update(v)),
        ("kvd", 2 * k, {"extractor": i3d}, lambda m, v: m.update(v)),
        ("clipsim", k, {"extractor": clip}, lambda m, v: m.update(v, prompts=["a red square"] * len(v))),
        ("subject_consistency", k, {"extractor": clip}, lambda m, v: m.update(v)),
        ("background_consistency", k, {"extractor": clip}, lambda m, v: m.update(v)),
        ("clip_temp", k, {"extractor": clip}, lambda m, v: m.update(v)),
        ("temporal_flickering", 40, {}, lambda m, v: m.update(v)),
        ("warping_error", 4 * k, {"flow": "dis"}, lambda m, v: m.update(v)),
        ("warping_error[farneback]", 4 * k, {"flow": "farneback"}, lambda m, v: m.update(v)),
        ("physics_iq", 20, {"cond_frames": 4},
         lambda m, v: m.update(v, reference=list(ref[: len(v)]), variance=[var] * len(v))),
        ("physics_trajectory", 20, {"cond_frames": 4},
         lambda m, v: m.update(v, reference=list(ref[: len(v)]), ground_truth=[{"objects": objs, "fps": 8}] * len(v))),
    ]
    rows = []
    for name, n, kw, upd in cases:
        options = {k: v for k, v in kw.items() if k != "extractor"}
        runtime = {"extractor": kw["extractor"]} if "extractor" in kw else {}
        m = METRICS.build(name.split("[")[0], options=options, **runtime)
        batch = vids[:n]
        t0 = time.perf_counter()
        upd(m, batch)
        dt = time.perf_counter() - t0
        rows.append({"metric": name, "videos": n, "seconds": dt, "videos_per_s": n / dt,
                     "extractor": m.identity()["extractor"]})
    try:  # one re-simulation of a physics probe (the physical variance costs this per take)
        from skyloom import config, datagen
        from skyloom.datagen.render import RenderConfig

        spec = datagen.sample_specs(config.load(RenderConfig, "physics-probe", [], group="datagen"), 1, 0)[0]
        datagen.render_spec(spec)  # warm-up (model compile, EGL context)
        t0 = time.perf_counter()
        datagen.render_spec(datagen.perturb_spec(spec, 0.01, 0))
        dt = time.perf_counter() - t0
        rows.append({"metric": "physics_iq variance (1 re-simulation, 32x32x16)", "videos": 1, "seconds": dt,
                     "videos_per_s": 1 / dt, "extractor": "datagen.render_spec"})
    except Exception as e:  # noqa: BLE001 - report, do not hide the other figures
        rows.append({"metric": "physics_iq variance", "error": f"{type(e).__name__}: {e}"})
    return rows


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--quick", action="store_true", help="fewer videos, 400-d Fréchet only")
    ap.add_argument("--frechet-only", action="store_true", help="only the Fréchet comparison")
    args = ap.parse_args(argv)
    import torch

    res = {"machine": f"CPU, torch threads={torch.get_num_threads()}",
           "frechet": bench_frechet(args.repeats, (400,) if args.quick else (400, 1408)),
           "metrics": [] if args.frechet_only else bench_metrics(args.quick)}
    print(f"{'Fréchet N=2048':<16}{'skyloom s':>11}{'best':>8}{'sqrtm s':>10}{'best':>8}{'x med':>7}{'x best':>8}"
          f"{'x cpu':>7}{'rel diff':>10}")
    for r in res["frechet"]:
        print(f"{r['dim']:>6}-d{'':<8}{r['skyloom_s']:>11.4f}{r['skyloom_best_s']:>8.4f}{r['sqrtm_s']:>10.3f}"
              f"{r['sqrtm_best_s']:>8.3f}{r['speedup_wall']:>7.1f}{r['speedup_best']:>8.1f}{r['speedup_cpu']:>7.1f}"
              f"{r['rel_diff']:>10.1e}")
    print(f"\n{'metric':<50}{'videos':>7}{'s':>8}{'videos/s':>10}")
    for r in res["metrics"]:
        if "error" in r:
            print(f"{r['metric']:<50} error: {r['error']}")
        else:
            print(f"{r['metric']:<50}{r['videos']:>7}{r['seconds']:>8.2f}{r['videos_per_s']:>10.2f}")
    import os

    res["blas_threads_env"] = {k: os.environ.get(k) for k in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS")}
    out = OUT.with_name("metrics_throughput_frechet.json") if args.frechet_only else OUT
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(res, indent=2))
    print(f"\nwrote {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
