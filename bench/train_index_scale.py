"""Training index and dashboard corpus views at 1k-1M clips (issue 29): time and peak memory, against main.

World: a corpus of ``N`` manifest rows and no clip files (what these reads touch is the manifest),
each clip with a short (8 words) and a dense (40 words) caption, four resolutions, two quality
scores. Rows are written column-wise with pyarrow as one part file of corpus format 2 (main's:
``manifest/part-<rev>-<uid>.parquet``, schema :data:`skyloom.manifest.MANIFEST_SCHEMA`), which the
baseline reads as it is; this tree reads a hard-linked copy that it opened once (the migration to
its own format, timed as ``migrate_s``).

Each operation runs in a fresh subprocess twice: the first run gives ``cold_seconds`` and the memory
figure ``mem_mb`` (peak RSS during it, ``VmHWM`` reset just before, minus RSS before it; imports of
skyloom done),
the next three the time ``seconds`` (their median; warm: first imports and Arrow kernel set-up
excluded). Operations:

* ``index``: the training index of split train (this tree: :func:`skyloom.model.data_index.build_index`;
  baseline: main's ``CorpusVideoDataset``, which builds its index from ``Corpus.records``);
* ``index_write``/``shard_read``: the Ray driver writing the index for 8 workers; one worker
  reading its shard (this tree only);
* ``corpus_api``: the dashboard's ``/api/corpus`` payload (summary + first 5000 rows), cold;
  ``corpus_api_warm``: the same request again (this tree caches it on ``Corpus.stamp()``);
* ``clip_page``: one 100-row page of ``/api/corpus/clips`` in the middle of the corpus (this tree);
* ``clip_api``: ``/api/clip`` of one clip (the clip inspector).

With ``--cache-clips N`` it measures the clip cache instead: N real 32x32 clips of 64 frames, two
epochs of batches (bucket 32x32x16, batch 8) with ``data.cache_mb`` 1024, 16 and 0; RSS growth after
the first batch and what the cache holds.

Usage: ``.venv/bin/python -m bench.train_index_scale [--sizes 1000 10000 100000 1000000]
[--baseline-python /path/to/main/.venv/bin/python --baseline-max 100000]``;
``.venv/bin/python -m bench.train_index_scale --cache-clips 1500``
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

OUT = Path(__file__).resolve().parent / "out" / "train_index_scale.json"
OPS_NEW = ("index", "index_write", "shard_read", "corpus_api", "corpus_api_warm", "clip_page", "clip_api")
OPS_BASE = ("index", "corpus_api", "clip_api")
WORDS = "a red ball rolls left then bounces off the blue cube while the camera pans slowly over grey floor".split()


def build_corpus(root: Path, n: int) -> None:
    """A corpus of ``n`` rows (no clip files), written column-wise as one manifest part."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.parquet as pq

    from skyloom.manifest import MANIFEST_SCHEMA

    for sub in ("manifest", "clips", "gt"):
        (root / sub).mkdir(parents=True, exist_ok=True)
    (root / "corpus.json").write_text(json.dumps({"format": "skyloom-corpus", "version": 2, "name": root.name,
                                                  "created_at": "2026-12-06T00:00:00Z", "corpus_id": f"bench{n}"}))
    rng = np.random.default_rng(0)
    ids = [f"clip-{i:08d}" for i in range(n)]
    res = np.array([(32, 32), (64, 36), (36, 64), (128, 72)])[rng.integers(0, 4, n)]

    def arr(values, type_=None) -> pa.Array:  # pa.array may chunk a large NumPy string array
        a = pa.array(values, type_) if type_ is not None else pa.array(values)
        return a.combine_chunks() if isinstance(a, pa.ChunkedArray) else a

    def text(k: int) -> np.ndarray:
        return np.array([" ".join(WORDS[(i + j) % len(WORDS)] for j in range(k)) for i in range(97)])[
            np.arange(n) % 97]

    short, dense = text(8), text(40)
    cap = pa.StructArray.from_arrays
    n2 = 2 * n
    flat = cap([arr(np.repeat(["scene-graph"], n2)), arr(np.tile(["short", "dense"], n)),
                arr(np.column_stack([short, dense]).ravel()), arr(np.repeat([""], n2)),
                arr(np.repeat([""], n2)), arr(np.repeat(["v1"], n2)), arr(np.zeros(n2)),
                arr(np.repeat(["2026-12-06T00:00:00Z"], n2))],
               fields=list(MANIFEST_SCHEMA.field("captions").type.value_type))
    captions = pa.ListArray.from_arrays(arr(np.arange(0, n2 + 1, 2), pa.int32()), flat)
    quality = pa.MapArray.from_arrays(arr(np.arange(0, n2 + 1, 2), pa.int32()),
                                      arr(np.tile(["aesthetic", "motion"], n)), arr(rng.random(n2)))
    split = np.where(rng.random(n) < 0.05, "val", "train")
    rev = time.time_ns()
    cols = {
        "id": ids, "path": [f"clips/{i}.mp4" for i in ids], "source_kind": np.repeat(["synthetic"], n),
        "duration_s": rng.uniform(1, 8, n), "fps": np.full(n, 8.0), "width": res[:, 0].astype(np.int32),
        "height": res[:, 1].astype(np.int32), "num_frames": np.full(n, 16, np.int32),
        "license_id": np.repeat(["CC0-1.0"], n), "source_url": [f"skyloom://bench/{i}" for i in range(n)],
        "author": np.repeat(["skyloom"], n), "attribution": np.repeat([""], n), "sha256": np.repeat(["0" * 64], n),
        "source_sha256": np.repeat([""], n), "source_page": np.repeat([""], n), "parent_id": pa.nulls(n, pa.string()),
        "shot_start_s": pa.nulls(n, pa.float64()), "shot_end_s": pa.nulls(n, pa.float64()), "captions": captions,
        "split": split, "quality": quality, "gt_path": pa.nulls(n, pa.string()), "meta": np.repeat(["{}"], n),
        "created_at": np.repeat(["2026-12-06T00:00:00Z"], n), "rev": np.full(n, rev, np.int64),
        "deleted": np.zeros(n, bool),
    }
    table = pa.table({f.name: arr(cols[f.name], f.type) if not isinstance(cols[f.name], pa.Array)
                      else cols[f.name].cast(f.type) for f in MANIFEST_SCHEMA}, schema=MANIFEST_SCHEMA)
    pq.write_table(table.replace_schema_metadata({"skyloom.manifest_version": "2"}),
                   root / "manifest" / f"part-{rev:020d}-bench0000.parquet", compression="zstd")


def migrated_copy(src: Path, dest: Path) -> float:
    """A hard-linked copy of a format-2 corpus opened once by this tree (which migrates it to its own
    format); returns the seconds the migration took."""
    from skyloom.corpus import Corpus

    shutil.copytree(src, dest, copy_function=os.link)
    t0 = time.perf_counter()
    Corpus(dest).count()
    return time.perf_counter() - t0


def _status_mb(field: str) -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    return float("nan")


def _reset_peak() -> float:
    """Reset this process's peak RSS (VmHWM) to its current RSS (Linux ``clear_refs`` 5); returns the RSS.

    ``ru_maxrss`` would not do: Linux carries the parent's high-water mark across fork and exec."""
    Path("/proc/self/clear_refs").write_text("5")
    return _status_mb("VmRSS")


def _peak_mb() -> float:
    return _status_mb("VmHWM")


def _op(op: str, root: Path, n: int, tmp: Path, dash) -> int:
    from skyloom.model.config import DataConfig

    cfg = DataConfig()
    if op == "index":
        try:
            from skyloom.model.data_index import build_index
        except ImportError:  # main: the index is built from Corpus.records inside the dataset
            from skyloom.model.data import CorpusVideoDataset

            return len(CorpusVideoDataset(root, cfg))
        return len(build_index(root, cfg))
    if op == "index_write":
        from skyloom.model.data_index import build_index, write_index

        write_index(build_index(root, cfg), tmp / "index.parquet", 8, cfg)
        return 0
    if op == "shard_read":
        from skyloom.model.data_index import read_index_shard

        return len(read_index_shard(tmp / "index.parquet", 3, 8, cfg)[0])
    if op in ("corpus_api", "corpus_api_warm"):
        return len(json.dumps(dash.corpus()))
    if op == "clip_page":
        return len(dash.corpus_clips(0, offset=n // 2, limit=100)["clips"])
    if op == "clip_api":
        return len(dash.clip(0, f"clip-{n // 2:08d}"))
    raise SystemExit(f"unknown op {op}")


def worker(op: str, root: Path, n: int, tmp: Path, repeats: int = 3) -> dict:
    """Run one operation in this (fresh) process, once to warm up (imports, Arrow kernels) and once timed
    (``corpus_api``: on a new Dashboard, so its payload cache is cold); return seconds, peak and base RSS."""
    import gc

    from skyloom.dashboards import Dashboard

    def new_dash():
        return Dashboard(tmp / "runs", corpora=[root])

    if op == "shard_read":  # the driver's write, in another process: this one's memory is the worker's
        subprocess.run([sys.executable, str(Path(__file__).resolve()), "--worker", "index_write", str(root), str(n),
                        str(tmp)], check=True, capture_output=True)
    dash = new_dash()
    if op == "corpus_api_warm":
        dash.corpus()
    gc.collect()
    base = _reset_peak()
    t0 = time.perf_counter()
    _op(op, root, n, tmp, dash)  # cold: first imports and Arrow kernels included; its peak RSS is the memory figure
    cold = time.perf_counter() - t0
    peak = _peak_mb()
    times = []
    for _ in range(repeats):
        if op != "corpus_api_warm":
            dash = new_dash()
        t0 = time.perf_counter()
        rows = _op(op, root, n, tmp, dash)
        times.append(time.perf_counter() - t0)
    return {"op": op, "seconds": round(statistics.median(times), 4), "cold_seconds": round(cold, 4),
            "peak_rss_mb": round(peak, 1), "base_rss_mb": round(base, 1), "mem_mb": round(peak - base, 1),
            "result": rows}


def cache_worker(root: Path, cache_mb: int, epochs: int) -> dict:
    """Draw ``epochs`` epochs of batches from a real corpus with ``data.cache_mb``; RSS growth and cache state."""
    import gc

    from skyloom.model.config import Bucket, DataConfig
    from skyloom.model.data import BatchLoader, CorpusVideoDataset

    cfg = DataConfig(buckets=(Bucket(32, 32, 16, 8),), cache_mb=cache_mb, caption_kinds=("short",))
    ds = CorpusVideoDataset(root, cfg)
    loader = BatchLoader(ds, seed=0)
    next(loader)  # imports and decoder set-up outside the figure
    gc.collect()
    base = _reset_peak()
    t0 = time.perf_counter()
    for _ in range(epochs * loader.sampler.epoch_len):
        next(loader)
    return {"cache_mb": cache_mb, "clips": len(ds), "seconds": round(time.perf_counter() - t0, 2),
            "rss_growth_mb": round(_peak_mb() - base, 1), "cache_bytes_mb": round(ds.cache.bytes / 2**20, 1),
            "cached_clips": len(ds.cache), "hits": ds.cache.hits, "misses": ds.cache.misses}


def build_clip_corpus(root: Path, n: int) -> None:
    """``n`` real 32x32 clips of 64 frames (a moving square), one short caption each."""
    import numpy as np

    from skyloom.corpus import Caption, ClipRecord, Corpus
    from skyloom.fsutil import sha256_file
    from skyloom.video import write_video

    c = Corpus.create(root)
    recs = []
    for i in range(n):
        v = np.zeros((64, 32, 32, 3), np.uint8)
        for t in range(64):
            x = (i + t) % 24
            v[t, 8:16, x:x + 8] = (255, 40 + i % 200, 40)
        cid = f"sq{i:05d}"
        write_video(c.clip_path(cid), v, fps=8)
        recs.append(ClipRecord(id=cid, path=f"clips/{cid}.mp4", source_kind="synthetic", duration_s=8.0, fps=8.0,
                               width=32, height=32, num_frames=64, license_id="CC0-1.0", source_url=f"skyloom://b/{i}",
                               author="skyloom", attribution="", sha256=sha256_file(c.clip_path(cid)),
                               captions=(Caption("bench", "short", "a red square moves right"),)))
    c.append(recs)


def run_op(python: str, op: str, root: Path, n: int) -> dict:
    with tempfile.TemporaryDirectory(prefix="skyloom-bench-op-") as tmp:
        env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": ""}
        r = subprocess.run([python, str(Path(__file__).resolve()), "--worker", op, str(root), str(n), tmp],
                           capture_output=True, text=True, env=env, cwd=tmp, timeout=3600)
    if r.returncode:
        return {"op": op, "error": (r.stderr.strip().splitlines() or ["?"])[-1]}
    return json.loads(r.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[1000, 10000, 100000, 1000000])
    ap.add_argument("--baseline-python", default="", help="python of a checkout of main (baseline); '' = none")
    ap.add_argument("--baseline-max", type=int, default=100000, help="largest size the baseline runs at")
    ap.add_argument("--ops", nargs="+", default=list(OPS_NEW), choices=OPS_NEW, help="operations to run")
    ap.add_argument("--cache-clips", type=int, default=0,
                    help="instead: the clip cache's memory on a real corpus of this many 32x32 clips")
    ap.add_argument("--worker", nargs=4, metavar=("OP", "ROOT", "N", "TMP"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker:
        op, root, n, tmp = args.worker
        if op == "cache":
            print(json.dumps(cache_worker(Path(root), int(n), int(tmp))))
        else:
            print(json.dumps(worker(op, Path(root), int(n), Path(tmp))))
        return
    if args.cache_clips:
        out = {"load": os.getloadavg(), "clips": args.cache_clips, "runs": []}
        with tempfile.TemporaryDirectory(prefix="skyloom-bench-cache-") as d:
            build_clip_corpus(Path(d) / "c", args.cache_clips)
            for mb in (1024, 16, 0):
                env = {**os.environ, "OMP_NUM_THREADS": "1"}
                r = subprocess.run([sys.executable, str(Path(__file__).resolve()), "--worker", "cache",
                                    str(Path(d) / "c"), str(mb), "2"], capture_output=True, text=True, env=env)
                out["runs"].append(json.loads(r.stdout.strip().splitlines()[-1]) if not r.returncode
                                   else {"cache_mb": mb, "error": r.stderr.strip().splitlines()[-1]})
                print(out["runs"][-1], flush=True)
        out["load_after"] = os.getloadavg()
        dest = OUT.with_name("train_cache_memory.json")
        dest.parent.mkdir(parents=True, exist_ok=True)
        dest.write_text(json.dumps(out, indent=1))
        print(f"wrote {dest}")
        return
    results = {"load": os.getloadavg(), "sizes": {}}
    with tempfile.TemporaryDirectory(prefix="skyloom-bench-index-") as d:
        for n in args.sizes:
            v2 = Path(d) / f"v2-{n}"
            t0 = time.perf_counter()
            build_corpus(v2, n)
            row = {"build_s": round(time.perf_counter() - t0, 2), "new": {}, "main": {}}
            if args.baseline_python and n <= args.baseline_max:
                for op in [o for o in OPS_BASE if o in args.ops]:
                    row["main"][op] = run_op(args.baseline_python, op, v2, n)
                    print(n, "main", row["main"][op], flush=True)
            root = Path(d) / f"c{n}"
            row["migrate_s"] = round(migrated_copy(v2, root), 2)
            for op in args.ops:
                row["new"][op] = run_op(sys.executable, op, root, n)
                print(n, "new", row["new"][op], flush=True)
            shutil.rmtree(v2)
            shutil.rmtree(root)
            results["sizes"][str(n)] = row
            results["load_after"] = os.getloadavg()
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps(results, indent=1))
    print(f"wrote {OUT}")


if __name__ == "__main__":
    main()
