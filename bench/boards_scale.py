"""Boards at scale: ``leaderboard``, ``/api/leaderboard``, ``report`` and store merge at 10, 100, 1,000 evaluations.

World (made once per size under ``--work``, reused by later calls): evaluations of the ``standard`` suite
(64 items: 16 prompts x 4 seeds; 7 per-item metrics, FVD and KVD set-level without saved features)
written through :class:`skyloom.eval.results.store.ResultsStore` the way the runner writes them
(``begin_eval`` with the suite's recorded config, ``put_items`` per metric with prompt, seed, category
and video path, ``put_scores`` with the scorer's details and coverage, ``add_failure`` for failed
items, ``set_status``), spread over run folders of 100 evaluations each (``RUN/results.sqlite``), plus
one store holding all of them (``all.sqlite``, for ``--db``, made by merging the runs' stores). 4
calibration rows; 5% of the entries are partial (1-3 items failed); 10% are of an older suite version.

Each case runs in a fresh child process of ``--python`` (default: this interpreter), so a baseline
is this same script run with another checkout's interpreter (``--python /tmp/base/.venv/bin/python``,
docs/benchmarks.md); time is the case's wall clock inside the child, memory the child's peak RSS
(``wait4``). Cases:

- ``leaderboard``: ``board(store, "standard")`` on ``all.sqlite`` (what ``skyloom leaderboard`` computes);
  ``leaderboard-cli``: the installed ``skyloom leaderboard --db all.sqlite`` end to end (start-up included);
- ``api``: ``/api/leaderboard`` through FastAPI's TestClient with ``--db all.sqlite``, first request and
  then the median of 3 more (``api-warm``);
- ``api-runs``: the same without ``--db`` (the dashboard merges the runs' stores), first request;
- ``merge``: ``ResultsStore.merged`` of the runs' stores (what ``--runs`` commands do);
- ``report``: ``build_report`` with ``--db all.sqlite`` (no videos on disk), its size.

Usage: ``.venv/bin/python -m bench.boards_scale [--sizes 10 100 1000] [--work DIR] [--python PY]``
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import subprocess
import sys
import time
from pathlib import Path

OUT = Path(__file__).resolve().parent / "out" / "boards_scale.json"
PER_ITEM = ("clipsim", "clip_temp", "subject_consistency", "background_consistency", "temporal_flickering",
            "dynamic_degree", "warping_error")
SET_LEVEL = ("fvd", "kvd")
LOWER_BETTER = {"warping_error", "fvd", "kvd"}
EVALS_PER_RUN = 100
CASES = ("leaderboard", "leaderboard-cli", "api", "api-runs", "merge", "report")


def build_world(root: Path, n: int, seed: int = 0) -> None:
    """``root/runs/run<k>/results.sqlite`` (100 evaluations each) and ``root/all.sqlite`` (every evaluation)."""
    from skyloom.eval.harness.suites import load_suite, suite_to_dict
    from skyloom.eval.results.store import ResultsStore
    from skyloom.rundir import RunDir

    suite = load_suite("standard", validate=False)
    items = suite.items()
    record = {"suite": {**suite_to_dict(suite), "primary_metric": suite.primary_metric},
              "eval": {"suite": "standard", "n_boot": 1000, "set_boot": 200, "level": 0.95, "seed": 0,
                       "score_batch": 8, "executor": "auto", "device": "cpu", "use_cache": True}}
    rng = random.Random(seed)
    tag, old_tag = suite.version_tag, "1+00000000"
    stores: dict[Path, ResultsStore] = {}
    entries = [("calibration", name) for name in ("ground_truth", "frozen", "shuffled", "noise")]
    entries += [("model", f"e{i:05d}") for i in range(n)]
    for k, (kind, name) in enumerate(entries):
        run = RunDir.create(root / "runs" / f"run{k // EVALS_PER_RUN:03d}").root
        st = stores.get(run) or stores.setdefault(run, ResultsStore(RunDir(run).results_store))
        eid = f"{name}-{k:05d}"
        quality = {"ground_truth": 1.0, "frozen": 0.8, "shuffled": 0.5, "noise": 0.0}.get(name, rng.random())
        version = old_tag if kind == "model" and rng.random() < 0.10 else tag
        failed = rng.sample(range(len(items)), rng.randint(1, 3)) if kind == "model" and rng.random() < 0.05 else []
        step = 1000 * k
        ck = f"/runs/{run.name}/checkpoints/step-{step:08d}" if kind == "model" else f"calibration:{name}"
        st.begin_eval(eid, suite="standard", suite_version=version, checkpoint=ck,
                     checkpoint_name=f"{run.name}/step-{step:08d}" if kind == "model" else name,
                     run_name=run.name if kind == "model" else None, step=step if kind == "model" else None,
                     config=record, status="running", created_at=f"2026-12-01T{k // 3600 % 24:02d}:"
                     f"{k // 60 % 60:02d}:{k % 60:02d}Z", kind=kind, git_hash="0" * 40)
        for i in failed:
            st.add_failure(eid, items[i]["item_id"], "generate", "CUDA out of memory (synthetic)")
        ok = [it for j, it in enumerate(items) if j not in failed]
        for m in PER_ITEM:
            base = 0.2 + 0.1 * quality
            vals = [base + rng.gauss(0.0, 0.03) for _ in ok]
            if m in LOWER_BETTER:
                vals = [1.0 - v for v in vals]
            rows = [{"item_id": it["item_id"], "metric": m, "value": v, "prompt": it["prompt"], "seed": it["seed"],
                     "category": it["category"],
                     "video_path": str(RunDir(run).evaluation("standard", eid).video(it["item_id"]))}
                    for it, v in zip(ok, vals)]
            mean = sum(vals) / len(vals)
            score = {"metric": m, "value": mean, "stderr": 0.004, "ci_low": mean - 0.008, "ci_high": mean + 0.008,
                     "n": len(items), "higher_is_better": m not in LOWER_BETTER, "metric_version": "1",
                     "extractor": "clip?pretrained=openai", "weights": "openai",
                     "details": {"metric": m, "settings": {}, "preprocessing": "vbench", "aggregate": "mean over items",
                                 "level": 0.95, "n_scored": len(ok), "n_failed": len(failed),
                                 "failed_items": {items[i]["item_id"]: "generate: CUDA out of memory" for i in failed},
                                 "ci": "percentile bootstrap, 1000 resamples"}}
            st.put_items(eid, rows)
            st.put_scores(eid, [score])
        for m in SET_LEVEL:
            v = 400.0 * (1.2 - quality) + rng.gauss(0.0, 20.0)
            score = {"metric": m, "value": v, "stderr": None, "ci_low": v - 30, "ci_high": v + 30, "n": len(items),
                     "higher_is_better": False, "metric_version": "1", "extractor": "i3d", "weights": "i3d-400",
                     "details": {"metric": m, "settings": {"num_frames": 16}, "n_scored": len(ok),
                                 "n_failed": len(failed), "features": None}}
            st.put_scores(eid, [score])
        st.set_status(eid, "partial" if failed else "complete")
    everything = ResultsStore(root / "all.sqlite")  # the runs' stores in one, for --db
    for s in stores.values():
        s.copy_into(everything)
        s.close()
    everything.close()


def run_case(case: str, world: Path) -> dict:
    """One case in this process; returns its figures: ``s`` wall seconds and ``cpu_s`` CPU seconds of the
    measured part (this process and its children: what load on a shared machine does not inflate much);
    the parent adds the peak RSS."""
    import resource

    def cpu() -> float:
        me, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
        return me.ru_utime + me.ru_stime + kids.ru_utime + kids.ru_stime

    t0, c0 = time.perf_counter(), cpu()
    out: dict = {}
    db = str(world / "all.sqlite")
    runs = sorted((world / "runs").glob("run*/results.sqlite"))
    if case == "leaderboard":
        from skyloom.eval.results.boards import board
        from skyloom.eval.results.store import ResultsStore

        t0, c0 = time.perf_counter(), cpu()
        with ResultsStore(db) as st:
            bd = board(st, "standard")
        out["rows"] = len(bd["rows"])
        out["groups"] = len({r["tie_group"] for r in bd["rows"] if r["tie_group"] is not None})
    elif case == "leaderboard-cli":
        exe = Path(sys.executable).parent / "skyloom"
        t0, c0 = time.perf_counter(), cpu()
        p = subprocess.run([str(exe), "leaderboard", "--db", db, "--suite", "standard", "--format", "json"],
                           capture_output=True, check=True)
        out["bytes"] = len(p.stdout)
    elif case in ("api", "api-runs"):
        from fastapi.testclient import TestClient

        from skyloom.dashboards import Dashboard, create_app

        dash = Dashboard([world / "runs"], db=db if case == "api" else None)
        with TestClient(create_app(dash), base_url="http://localhost") as c:
            t0, c0 = time.perf_counter(), cpu()
            r = c.get("/api/leaderboard")
            out["first_s"], out["first_cpu_s"] = time.perf_counter() - t0, cpu() - c0
            out["bytes"] = len(r.content)
            out["rows"] = sum(len(t["rows"]) for t in r.json()["suites"])
            warm = []
            for _ in range(int(os.environ.get("BOARDS_SCALE_WARM", "3"))):
                t1 = time.perf_counter()
                c.get("/api/leaderboard")
                warm.append(time.perf_counter() - t1)
            out["warm_s"] = statistics.median(warm) if warm else None
        dash.close()
    elif case == "merge":
        from skyloom.eval.results.store import ResultsStore

        t0, c0 = time.perf_counter(), cpu()
        with ResultsStore.merged([str(p) for p in runs]) as st:
            out["evals"] = len(st.evals())
    elif case == "report":
        from skyloom.dashboards import Dashboard, build_report

        dash = Dashboard([world / "runs"], db=db, max_clips=1)
        t0, c0 = time.perf_counter(), cpu()
        info = build_report(dash, world / "report.html")
        out["bytes"] = info.bytes
        out["paired"] = info.paired
        dash.close()
    else:
        raise SystemExit(f"unknown case {case!r}; cases: {', '.join(CASES)}")
    out["s"], out["cpu_s"] = time.perf_counter() - t0, cpu() - c0
    return out


def _child(python: str, case: str, world: Path, timeout: float | None = None) -> dict:
    """Run one case in a fresh child; its JSON figures plus its peak RSS in MiB (``timeout``: killed after)."""
    import signal
    import tempfile
    import threading

    with tempfile.TemporaryFile() as fo, tempfile.TemporaryFile() as fe:
        p = subprocess.Popen([python, str(Path(__file__).resolve()), "--case", case, "--world", str(world)],
                             stdout=fo, stderr=fe, env={**os.environ, "OMP_NUM_THREADS": "1"})
        timer = threading.Timer(timeout, os.kill, (p.pid, signal.SIGKILL)) if timeout else None
        if timer is not None:
            timer.start()
        _, status, usage = os.wait4(p.pid, 0)  # reaped here, with the child's own peak RSS
        if timer is not None:
            timer.cancel()
        if os.WIFSIGNALED(status):
            return {"error": f"killed after the {timeout:g} s timeout"}
        fo.seek(0)
        fe.seek(0)
        out, err = fo.read(), fe.read()
    if os.waitstatus_to_exitcode(status):
        return {"error": err.decode()[-400:]}
    res = json.loads(out.decode().strip().splitlines()[-1])
    res["peak_mib"] = usage.ru_maxrss / 1024
    return res


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[10, 100, 1000])
    ap.add_argument("--work", type=Path, default=Path("/tmp/skyloom-boards-scale"),
                    help="Where the worlds are built (kept and reused).")
    ap.add_argument("--python", default=sys.executable, help="Interpreter of the checkout to measure.")
    ap.add_argument("--cases", nargs="*", default=list(CASES))
    ap.add_argument("--label", default="now", help="Name of this side in the JSON (now / baseline).")
    ap.add_argument("--timeout", type=float, default=None, help="Seconds a case may take (then recorded as such).")
    ap.add_argument("--case", help=argparse.SUPPRESS)
    ap.add_argument("--world", type=Path, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.case:
        print(json.dumps(run_case(args.case, args.world)))
        return 0
    results: dict = {}
    for n in args.sizes:
        world = args.work / f"n{n}"
        if not (world / "all.sqlite").exists():
            t0 = time.perf_counter()
            world.mkdir(parents=True, exist_ok=True)
            build_world(world, n)
            print(f"world n={n}: built in {time.perf_counter() - t0:.1f} s, all.sqlite "
                  f"{(world / 'all.sqlite').stat().st_size / 2**20:.1f} MB", flush=True)
        for case in args.cases:
            r = _child(args.python, case, world, args.timeout)
            results.setdefault(args.label, {}).setdefault(str(n), {})[case] = r
            print(f"{args.label:>8} n={n:<5} {case:<16} " + " ".join(
                f"{k}={v:.3f}" if isinstance(v, float) else f"{k}={v}" for k, v in r.items()), flush=True)
    with os.popen("uptime") as f:
        load = f"{args.label}: {f.read().strip()}"
    OUT.parent.mkdir(parents=True, exist_ok=True)
    old = json.loads(OUT.read_text()) if OUT.exists() else {}  # read now: another side may have written meanwhile
    for label, sizes in results.items():
        for n, cases in sizes.items():
            old.setdefault(label, {}).setdefault(n, {}).update(cases)
    old.setdefault("load", []).append(load)
    OUT.write_text(json.dumps(old, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
