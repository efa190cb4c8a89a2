"""Captioning throughput: scene-graph captions per second per core, and the local VLM path.

1. scene-graph, captioner only: ``caption_gt`` over N synthetic ground-truth dicts (from
   ``skyloom.captioning.fake_gt``, made before timing), one core; baseline in the same run: one fixed
   f-string template per clip (what a naive captioner costs).
2. scene-graph, whole job: ``skyloom.captioning.run`` over a corpus of N clips that hold ground truth only
   (no video files are read by this captioner): routing, JSON reads, actor pool, manifest writes;
   ``executor=local`` (1 core) and ``executor=ray`` (2 actors, 2 cores).
3. vlm-local with a tiny random LLaVA (CLIP + Llama, hidden 32) on random 8-frame clips:
   ``generate_batch=1`` (no batching) vs ``generate_batch=8``.

Run: ``.venv/bin/python -m bench.caption_throughput [--clips 1000] [--vlm-clips 32]``.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import tempfile
import time
from pathlib import Path

import numpy as np

OUT = Path(__file__).resolve().parent / "out"


def _corpus_with_gt(root: Path, gts: list[dict]):
    from skyloom.corpus import ClipRecord, Corpus

    c = Corpus.create(root)
    recs = []
    for i, gt in enumerate(gts):
        cid = f"syn-{i:05d}"
        c.write_ground_truth(cid, gt)
        recs.append(ClipRecord(id=cid, path=f"clips/{cid}.mp4", source_kind="synthetic", duration_s=2.0, fps=8.0,
                               width=64, height=64, num_frames=16, license_id="CC0-1.0",
                               source_url=f"skyloom://render/fake/{i}", author="skyloom", attribution="",
                               sha256=hashlib.sha256(cid.encode()).hexdigest(), gt_path=f"gt/{cid}.json"))
    c.append(recs)
    return c


def bench_scene_graph(n: int) -> list[dict]:
    from skyloom.captioning.config import CaptionConfig
    from skyloom.captioning.fake_gt import make_gt
    from skyloom.captioning.runner import run
    from skyloom.captioning.scene_graph import caption_gt

    gts = [make_gt(i) for i in range(n)]
    rows = []
    t0, c0 = time.perf_counter(), time.process_time()
    for i, gt in enumerate(gts):
        caption_gt(gt, f"syn-{i:05d}")
    dt, cpu = time.perf_counter() - t0, time.process_time() - c0
    rows.append({"what": "scene-graph caption_gt (short+dense), in-process", "clips": n, "cores": 1,
                 "seconds": dt, "clips_per_s": n / dt, "clips_per_s_per_core": n / dt, "clips_per_cpu_s": n / cpu})
    t0 = time.perf_counter()
    for gt in gts:
        o = gt["objects"][0]
        _ = f"A {o['colour']} {o['shape']} on a floor."
    dt = time.perf_counter() - t0
    rows.append({"what": "baseline: one fixed f-string template", "clips": n, "cores": 1, "seconds": dt,
                 "clips_per_s": n / dt, "clips_per_s_per_core": n / dt})
    os.environ.setdefault("SKYLOOM_NO_PROGRESS", "1")
    for executor, cores in (("local", 1), ("ray", 2)):
        if executor == "ray":  # start Ray outside the timing (reported separately); actor start-up is timed
            from skyloom.raytools import init_ray

            t0 = time.perf_counter()
            init_ray("local", num_cpus=cores)
            rows.append({"what": "  (ray.init of a local 2-CPU instance, not in the job's time)", "clips": 0,
                         "cores": cores, "seconds": time.perf_counter() - t0, "clips_per_s": 0.0,
                         "clips_per_s_per_core": 0.0})
        with tempfile.TemporaryDirectory() as d:
            c = _corpus_with_gt(Path(d) / "corpus", gts)
            cfg = CaptionConfig(corpus=str(c.root), captioner="scene-graph", executor=executor, num_actors=cores,
                                batch_size=64)
            t0, c0 = time.perf_counter(), time.process_time()
            res = run(cfg)
            dt, cpu = time.perf_counter() - t0, time.process_time() - c0
            assert res.captioned.get("scene-graph") == n, res
            row = {"what": f"scene-graph job, executor={executor} (reads gt, writes manifest)", "clips": n,
                   "cores": cores, "seconds": dt, "clips_per_s": n / dt, "clips_per_s_per_core": n / dt / cores}
            if executor == "local":
                row["clips_per_cpu_s"] = n / cpu  # driver process only: the whole job runs in it
            rows.append(row)
    return rows


def bench_vlm(n: int) -> list[dict]:
    import torch

    from skyloom.captioning.base import ClipInput, build_captioner
    from skyloom.captioning.config import CaptionConfig, FramesConfig, VLMLocalConfig
    from skyloom.captioning.tiny_vlm import build_tiny_llava

    torch.set_num_threads(1)
    rng = np.random.default_rng(0)
    items = [ClipInput(f"c{i}", 8, frames=rng.integers(0, 255, (8, 64, 64, 3), np.uint8)) for i in range(n)]
    rows = []
    with tempfile.TemporaryDirectory() as d:
        path = build_tiny_llava(d)
        for gb in (1, 8):
            cap = build_captioner("vlm-local", CaptionConfig(vlm_local=VLMLocalConfig(
                model_path=str(path), max_new_tokens=16, generate_batch=gb,
                frames=FramesConfig(num_frames=4, layout="grid", tile_size=32))))
            cap.caption_batch(items[:2])  # warm-up
            t0, c0 = time.perf_counter(), time.process_time()
            outs = cap.caption_batch(items)
            dt, cpu = time.perf_counter() - t0, time.process_time() - c0
            rows.append({"what": f"vlm-local tiny LLaVA, generate_batch={gb}, 16 new tokens", "clips": n, "cores": 1,
                         "seconds": dt, "clips_per_s": n / dt, "clips_per_s_per_core": n / dt,
                         "clips_per_cpu_s": n / cpu, "failed": sum(1 for o in outs if o.error)})
    return rows


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--clips", type=int, default=1000)
    ap.add_argument("--vlm-clips", type=int, default=32)
    args = ap.parse_args(argv)
    load0 = os.getloadavg()[0]
    rows = bench_scene_graph(args.clips) + bench_vlm(args.vlm_clips)
    print(f"{'what':72s} {'clips':>6s} {'cores':>5s} {'s':>8s} {'clips/s':>9s} {'/core':>9s} {'/CPU-s':>9s}")
    for r in rows:
        cpu = f"{r['clips_per_cpu_s']:9.1f}" if "clips_per_cpu_s" in r else f"{'-':>9s}"
        print(f"{r['what']:72s} {r['clips']:6d} {r['cores']:5d} {r['seconds']:8.2f} {r['clips_per_s']:9.1f} "
              f"{r['clips_per_s_per_core']:9.1f} {cpu}")
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "caption_throughput.json").write_text(json.dumps({"machine": f"{os.cpu_count()}-core CPU",
                                                             "load_avg_1min": [load0, os.getloadavg()[0]],
                                                             "rows": rows},
                                                            indent=2))
    print(f"1-min load average {load0:.1f} -> {os.getloadavg()[0]:.1f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
