"""When does Ray pay for itself? Wall time of small jobs through the installed CLI, per executor.

For ``datagen ingest`` (synthetic textured pans, 2 s at 16 fps) and ``datagen render``
(balls-bounce at its preset size), runs the same job of N items as a user would, in a fresh
process each time: ``local`` (in-process), ``ray`` (a local Ray instance started for the job) and
``auto`` (the default). From the 1-item and the largest job it derives Ray's fixed start-up cost
S and the per-item costs (local w_l, Ray w_r), hence the break-even job size S / (w_l - w_r)
that the ``auto`` thresholds are set from (docs/benchmarks.md).

Usage: ``.venv/bin/python -m bench.auto_executor [--sizes 1 4 10 40]``; JSON in
``bench/out/auto_executor.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

SKYLOOM = str(Path(sys.executable).with_name("skyloom"))


def _sources(d: Path, n: int) -> Path:
    from skyloom.datagen.sources import write_sources_csv
    from skyloom.video import write_video

    for k in range(n):
        base = np.random.default_rng(k).integers(0, 256, (10, 40, 3), dtype=np.uint8).repeat(8, 0).repeat(8, 1)
        write_video(d / f"v{k}.mp4", np.stack([base[:, 3 * t:3 * t + 96] for t in range(32)]), fps=16)
    return write_sources_csv(d / f"s{n}.csv", [{"url": f"v{k}.mp4", "license": "CC0-1.0", "author": "t"}
                                               for k in range(n)])


def _run(args: list[str]) -> float:
    env = {**os.environ, "SKYLOOM_NO_PROGRESS": "1", "RAY_AUTH_MODE": "disabled"}
    env.pop("RAY_ADDRESS", None)
    t0 = time.perf_counter()
    r = subprocess.run([SKYLOOM, *args], check=False, capture_output=True, text=True, env=env)
    if r.returncode != 0:
        raise RuntimeError(r.stderr[-2000:])
    return time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--sizes", type=int, nargs="+", default=[1, 4, 10, 40])
    a = ap.parse_args()
    tmp = Path(tempfile.mkdtemp())
    rows = []
    try:
        for n in a.sizes:
            src = _sources(tmp, n)
            for stage in ("ingest", "render"):
                for ex in ("local", "ray", "auto"):
                    out = tmp / f"{stage}-{n}-{ex}"
                    if stage == "ingest":
                        args = ["datagen", "ingest", str(src), "--out", str(out), "--set", f"engine={ex}",
                                "--set", f"fetch.allowed_roots=[{tmp}]", "--set", "shots.clip_seconds=1.0"]
                    else:
                        args = ["datagen", "render", "--out", str(out), "-n", str(n), "--set", f"executor={ex}"]
                    load = os.getloadavg()[0]
                    wall = _run(args)
                    rows.append({"stage": stage, "items": n, "executor": ex, "wall_s": round(wall, 2),
                                 "load1": round(load, 2)})
                    print(json.dumps(rows[-1]), flush=True)
                    shutil.rmtree(out, ignore_errors=True)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    out = Path(__file__).parent / "out" / "auto_executor.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps({"rows": rows, "cpus": os.cpu_count()}, indent=2))


if __name__ == "__main__":
    main()
