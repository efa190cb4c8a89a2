"""Dashboard API latency at a realistic scale, against the raw contract reads it is built on.

World (made in a temp folder): ``--runs`` runs with ``--steps`` metric lines each, one results
store per run (merged by the dashboard) holding ``--evals`` evaluations x ``--prompts`` prompts x
3 per-item metrics, and a corpus manifest of ``--clips`` clips (no clip files: the manifest is
what the Corpus view reads). Each endpoint is timed through FastAPI's TestClient (JSON encoding
included), median of ``--repeats`` after one warm-up; the baseline is the bare read of the same
inputs through the contracts (``skyloom.eval.results.stats.leaderboard`` + ``store.scores``, ``RunDir.metrics``,
``Corpus.records``, ``store.items``), i.e. what any tool would have to pay anyway.

Usage: ``.venv/bin/python -m bench.dashboard_latency [--runs 4 --steps 20000 --evals 20 --prompts 100 --clips 5000]``
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

OUT = Path(__file__).resolve().parent / "out" / "dashboard_latency.json"
METRICS = ("clipsim", "flicker", "subject")


def _time(fn: Callable[[], object], repeats: int) -> float:
    fn()
    ts = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        ts.append(time.perf_counter() - t0)
    return statistics.median(ts)


def build_world(root: Path, runs: int, steps: int, evals: int, prompts: int, clips: int) -> dict:
    from skyloom.corpus import Caption, ClipRecord, Corpus
    from skyloom.eval.results.store import ResultsStore
    from skyloom.rundir import RunDir

    rng = np.random.default_rng(0)
    run_dirs = []
    for r in range(runs):
        run = RunDir.create(root / "runs" / f"run{r}")
        lines = [json.dumps({"step": s, "time": 0.0, "kind": "train", "loss": 1 / (1 + s), "lr": 1e-3,
                             "samples_per_s": 10.0, "grad_norm": 1.0}) for s in range(steps)]
        run.metrics_path.write_text("\n".join(lines) + "\n")
        run_dirs.append(run)
    for e in range(evals):
        run = run_dirs[e % runs]
        with ResultsStore(run.results_store) as st:
            eid = f"e{e}"
            st.begin_eval(eid, suite="standard", checkpoint=str(run.checkpoint_dir(e * 100)), run_name=run.name,
                          checkpoint_name=f"{run.name}/step-{e * 100}", step=e * 100, status="complete",
                          config={"suite": {"primary_metric": "clipsim"}})
            items, scores = [], []
            for m in METRICS:
                v = rng.normal(0.3 + 0.002 * e, 0.05, prompts)
                items += [{"item_id": f"p{i:04d}", "metric": m, "value": float(v[i]), "seed": 0,
                           "prompt": f"prompt {i}", "category": f"c{i % 5}",
                           "video_path": str(run.evaluation("standard", eid).video(f"p{i:04d}"))}
                          for i in range(prompts)]
                scores.append({"metric": m, "value": float(v.mean()), "ci_low": float(v.mean() - 0.01),
                               "ci_high": float(v.mean() + 0.01), "n": prompts, "higher_is_better": True})
            st.put_items(eid, items)
            st.put_scores(eid, scores)
    corpus = Corpus.create(root / "corpus")
    corpus.append([ClipRecord(
        id=f"c{i:06d}", path=f"clips/c{i:06d}.mp4", source_kind="synthetic" if i % 3 else "licensed",
        duration_s=2.0 + i % 7, fps=8.0, width=64, height=64, num_frames=16,
        license_id="CC0-1.0" if i % 3 else "CC-BY-4.0",
        source_url=f"skyloom://render/x/{i}", author="skyloom", attribution="", sha256="0" * 64,
        captions=(Caption("scene-graph", "short", f"a red ball number {i} falls"),), quality={"aesthetic": i % 10 / 10})
        for i in range(clips)])
    return {"runs": root / "runs", "corpus": corpus.root, "run_dirs": run_dirs}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--runs", type=int, default=4)
    ap.add_argument("--steps", type=int, default=20000)
    ap.add_argument("--evals", type=int, default=20)
    ap.add_argument("--prompts", type=int, default=100)
    ap.add_argument("--clips", type=int, default=5000)
    ap.add_argument("--repeats", type=int, default=5)
    args = ap.parse_args(argv)

    from fastapi.testclient import TestClient

    from skyloom.corpus import Corpus
    from skyloom.dashboards import Dashboard, build_report, create_app
    from skyloom.eval.results.stats import leaderboard
    from skyloom.eval.results.store import ResultsStore

    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        w = build_world(Path(tmp), args.runs, args.steps, args.evals, args.prompts, args.clips)
        print(f"world built in {time.perf_counter() - t0:.1f} s")
        dash = Dashboard(w["runs"], corpora=[w["corpus"]])
        stores = [r.results_store for r in w["run_dirs"]]
        four = ",".join(f"e{i}" for i in range(4))

        def raw_leaderboard() -> None:
            with ResultsStore.merged(stores) as st:
                leaderboard(st, "standard")
                st.scores(suite="standard")

        def raw_compare() -> None:
            with ResultsStore.merged(stores) as st:
                for i in range(4):
                    st.items(f"e{i}")

        rows = []
        with TestClient(create_app(dash)) as c:
            cases = [
                ("leaderboard", lambda: c.get("/api/leaderboard"), raw_leaderboard),
                ("compare (4 ckpts)", lambda: c.get("/api/compare", params={"suite": "standard", "evals": four}),
                 raw_compare),
                ("training (cached)", lambda: c.get("/api/training"), lambda: [r.metrics() for r in w["run_dirs"]]),
                ("training (cold)", lambda: (dash._series_cache.clear(), c.get("/api/training")),
                 lambda: [r.metrics() for r in w["run_dirs"]]),
                ("corpus", lambda: c.get("/api/corpus"), lambda: Corpus(w["corpus"]).records()),
            ]
            for name, api, raw in cases:
                size = len(api().content) if name != "training (cold)" else len(c.get("/api/training").content)
                a, b = _time(api, args.repeats), _time(raw, args.repeats)
                rows.append({"endpoint": name, "api_s": a, "raw_read_s": b, "ratio": a / b if b else None,
                             "payload_kb": size / 1024})
        t0 = time.perf_counter()
        info = build_report(dash, Path(tmp) / "report.html", max_paired_evals=4)
        rows.append({"endpoint": "report (no videos, 4x3 paired x 3 metrics)", "api_s": time.perf_counter() - t0,
                     "raw_read_s": None, "ratio": None, "payload_kb": info.bytes / 1024})

    print(f"\n{'endpoint':<44} {'dashboard s':>11} {'raw read s':>11} {'ratio':>6} {'payload KB':>11}")
    for r in rows:
        raw = f"{r['raw_read_s']:.3f}" if r["raw_read_s"] is not None else "–"
        ratio = f"{r['ratio']:.2f}" if r["ratio"] is not None else "–"
        print(f"{r['endpoint']:<44} {r['api_s']:>11.3f} {raw:>11} {ratio:>6} {r['payload_kb']:>11.0f}")
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps({"args": vars(args), "rows": rows}, indent=2))
    print(f"\nwrote {OUT}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
