"""Feature cache: evaluating a second checkpoint with a warm cache against a cold run.

Scenario (what a team does every day): checkpoint A has been evaluated on a suite with FVD/KVD
against a reference corpus; now checkpoint B is evaluated on the same suite. Cold = B with an
empty cache (every reference clip decoded and encoded again); warm = B with the cache A left
(reference features read from disk through their file-hash alias: no decode, no encode).
Also: re-running B unchanged (everything cached). Extractors: random-init I3D (the FVD
architecture, real cost; weights do not change the cost) and the weight-free ``pixels``; a tiny
random-init CLIP for CLIPSIM. A deterministic in-bench pipeline stands in for the model so the
timings measure evaluation, not sampling.

    .venv/bin/python -m bench.eval_cache [--ref 32] [--prompts 4] [--seeds 2]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from skyloom.colours import BALL_COLOURS, RENDER_RGB

OUT = Path(__file__).resolve().parent / "out"
# The four ball colours of the one vocabulary, as uint8 RGB.
COLOURS = {n: tuple(round(255 * c) for c in RENDER_RGB[n]) for n in BALL_COLOURS}
# A randomly initialised 2-layer CLIP (no weights downloaded): the suite's text_video extractor.
TINY_CLIP = ("clip?random_init=true&model_cfg={embed_dim: 64, vision_cfg: {image_size: 32, layers: 2, width: 64, "
             "patch_size: 8, head_width: 32}, text_cfg: {context_length: 32, vocab_size: 49408, width: 64, heads: 2, "
             "layers: 2}}")


def _video(rgb, seed: int, T: int = 16, S: int = 32, noise: float = 4.0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    v = np.full((T, S, S, 3), 110.0)
    y = int(rng.integers(4, S - 12))
    for t in range(T):
        x = 2 + int(t * (S - 12) / (T - 1))
        v[t, y:y + 8, x:x + 8] = rgb
    v += rng.normal(0, noise, v.shape)
    return np.clip(v, 0, 255).astype(np.uint8)  # (T, S, S, 3)


class BenchPipeline:
    """Deterministic stand-in for a model: the prompt's colour as a moving square; the
    checkpoint's ``noise.txt`` sets the noise level."""

    fps, num_frames, height, width = 8.0, 16, 32, 32

    def __init__(self, ckpt: str) -> None:
        self.noise = float((Path(ckpt) / "noise.txt").read_text())
        self.name = Path(ckpt).name

    def generate(self, prompts, seeds, *, cond_frames=None, steps=None, guidance=None, num_frames=None):
        rgb = [next((c for n, c in COLOURS.items() if n in p), (200, 200, 200)) for p in prompts]
        return np.stack([_video(c, 1000 + s, T=int(num_frames or 16), noise=self.noise) for c, s in zip(rgb, seeds)])


def load_bench_pipeline(ckpt: str, device: str = "cpu") -> BenchPipeline:
    return BenchPipeline(ckpt)


def _setup(root: Path, n_ref: int, prompts: int, seeds: int) -> tuple[Path, list[Path]]:
    from skyloom.corpus import ClipRecord, Corpus
    from skyloom.fsutil import sha256_file
    from skyloom.rundir import RunDir
    from skyloom.video import write_video

    c = Corpus.create(root / "ref")
    recs = []
    for i in range(n_ref):
        cid = f"ref-{i:04d}"
        p = write_video(c.clip_path(cid), _video(list(COLOURS.values())[i % 4], i), fps=8)
        recs.append(ClipRecord(id=cid, path=f"clips/{cid}.mp4", source_kind="synthetic", duration_s=2.0, fps=8.0,
                               width=32, height=32, num_frames=16, license_id="CC0-1.0",
                               source_url=f"skyloom://bench/{i}", author="skyloom", attribution="",
                               sha256=sha256_file(p)))
    c.append(recs)
    run = RunDir.create(root / "run")
    cks = []
    for step, noise in ((0, 40.0), (100, 4.0)):
        with run.begin_checkpoint(step) as d:
            (d / "noise.txt").write_text(str(noise))
        cks.append(run.checkpoint_dir(step))
    names = list(COLOURS)
    plist = "\n".join(f'  - {{id: p{i}, text: "a {names[i % 4]} square moves right"}}' for i in range(prompts))
    suite = root / "bench-suite.yaml"
    suite.write_text(f"""format: skyloom-suite
name: bench
version: 1
primary_metric: clipsim
seeds: {list(range(seeds))}
generation: {{num_frames: 16, batch_size: 8}}
prompts:
{plist}
extractors:
  text_video: "{TINY_CLIP}"
reference: {{corpus: {root / 'ref'}, num_frames: 16, max_clips: {n_ref}}}
metrics:
  - {{name: clipsim, extractor: text_video}}
  - {{name: fvd, id: fvd_i3d, extractor: "i3d?random_init=true", settings: {{num_frames: 16}}}}
  - {{name: kvd, id: kvd_pixels, extractor: pixels, settings: {{num_frames: 16}}}}
""")
    return suite, cks


def _eval(suite: Path, ckpt: Path, out: Path, cache: Path) -> dict[str, Any]:
    from skyloom.eval.harness.runner import EvalConfig, run_eval

    cfg = EvalConfig(suite=str(suite), checkpoints=(str(ckpt),), out=str(out), cache_dir=str(cache),
                     pipeline_loader="bench.eval_cache:load_bench_pipeline", n_boot=200, set_boot=20)
    t0 = time.perf_counter()
    res = run_eval(cfg)
    wall = time.perf_counter() - t0
    cs = res.cache_stats
    return {"seconds": round(wall, 2), "encoded": cs.get("encoded", 0), "hits": cs.get("hits", 0),
            "ref_seconds": round(cs.get("reference_seconds", 0.0), 2), "ref_encoded": cs.get("reference_encoded", 0),
            "status": res.evals[0].status, "scores": res.evals[0].scores}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--ref", type=int, default=32, help="reference clips")
    ap.add_argument("--prompts", type=int, default=4)
    ap.add_argument("--seeds", type=int, default=2)
    args = ap.parse_args(argv)
    os.environ.setdefault("SKYLOOM_NO_PROGRESS", "1")
    root = Path(tempfile.mkdtemp(prefix="skyloom-bench-eval-"))
    try:
        suite, (a, b) = _setup(root, args.ref, args.prompts, args.seeds)
        n_gen = args.prompts * args.seeds
        rows = []
        # B cold: an empty cache (the baseline)
        rows.append(("B, cold cache (baseline)", _eval(suite, b, root / "out-cold", root / "cache-cold")))
        # A fills the shared cache, then B warm: only B's own videos are encoded
        rows.append(("A, cold cache (fills it)", _eval(suite, a, root / "out", root / "cache")))
        rows.append(("B, warm cache (after A)", _eval(suite, b, root / "out", root / "cache")))
        rows.append(("B again, unchanged", _eval(suite, b, root / "out", root / "cache")))
        print(f"reference clips: {args.ref}, generated videos per checkpoint: {n_gen}; "
              f"load average {os.getloadavg()[0]:.1f}")
        print(f"{'run':<28} {'wall s':>8} {'encoded':>8} {'cache hits':>10} {'reference s':>12} {'ref encoded':>12}")
        for name, r in rows:
            print(f"{name:<28} {r['seconds']:>8.2f} {r['encoded']:>8} {r['hits']:>10} {r['ref_seconds']:>12.2f} "
                  f"{r['ref_encoded']:>12}")
        cold, warm = rows[0][1], rows[2][1]
        same = all(abs((cold["scores"][k] or 0) - (warm["scores"][k] or 0)) < 1e-6 for k in cold["scores"])
        print(f"warm vs cold for checkpoint B: {cold['seconds'] / max(warm['seconds'], 1e-9):.1f}x faster overall; "
              f"reference side {cold['ref_seconds']:.2f} s -> {warm['ref_seconds']:.2f} s, "
              f"{cold['ref_encoded']} -> {warm['ref_encoded']} encodes; identical scores: {same}")
        OUT.mkdir(parents=True, exist_ok=True)
        doc = {"args": vars(args), "generated_per_checkpoint": n_gen, "loadavg": os.getloadavg(),
               "rows": [{"run": n, **r} for n, r in rows], "identical_scores": same}
        (OUT / "eval_cache.json").write_text(json.dumps(doc, indent=2, default=str))
    finally:
        shutil.rmtree(root, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
