"""Results-store write throughput with several writer processes at once: SQLite file against PostgreSQL.

Each writer process writes ``--evals`` evaluations the way the runner does, through
:class:`skyloom.eval.results.store.ResultsStore`: ``begin_eval``, one ``put_items`` batch of
``--items`` rows per metric (``--metrics``), ``put_scores``, ``set_status``; that is
``3 + metrics`` write transactions per evaluation. All writers start together (a go file) on an
empty store; the time is from the go signal to the last writer's last commit. Baseline: the same
work from one process, on the same store kind, in the same run.

SQLite: a file in a temporary folder (WAL, ``synchronous=NORMAL``). PostgreSQL: a throw-away server
on this machine (``tests/pgserver.py``) with ``fsync`` on and ``synchronous_commit=off`` (the same
promise as SQLite's WAL with ``synchronous=NORMAL``: a crash may lose the last commits, never
corrupt), or ``--pg-url`` for an existing server (an empty database).

Usage: ``.venv/bin/python -m bench.store_writers [--procs 4 --evals 10 --items 100 --metrics 3]``
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
OUT = Path(__file__).resolve().parent / "out" / "store_writers.json"

WRITER = textwrap.dedent("""
    import sys, time
    from pathlib import Path
    from skyloom.eval.results.store import ResultsStore
    url, worker, n_evals, n_items, n_metrics, go = sys.argv[1:7]
    worker, n_evals, n_items, n_metrics = int(worker), int(n_evals), int(n_items), int(n_metrics)
    while not Path(go).exists():
        time.sleep(0.005)
    store = ResultsStore(url)
    for e in range(n_evals):
        eid = f"w{worker}-e{e}"
        store.begin_eval(eid, suite="bench", checkpoint=f"/runs/r{worker}/checkpoints/step-{e}",
                         checkpoint_name=f"r{worker}/step-{e}", run_name=f"r{worker}", step=e)
        for m in range(n_metrics):
            store.put_items(eid, [{"item_id": f"p{i}-s0", "metric": f"m{m}", "value": i / n_items, "seed": 0,
                                   "prompt": f"prompt {i}", "category": "motion",
                                   "video_path": f"/runs/r{worker}/eval/bench/{eid}/videos/p{i}-s0.mp4"}
                                  for i in range(n_items)])
        store.put_scores(eid, [{"metric": f"m{m}", "value": 0.5, "n": n_items} for m in range(n_metrics)])
        store.set_status(eid, "complete")
    store.close()
    print(time.time())
""")


def run_writers(url: str, procs: int, evals: int, items: int, metrics: int, folder: Path) -> float:
    """Seconds from the go signal to the last writer's end; every row checked afterwards."""
    from skyloom.eval.results.store import ResultsStore

    go = folder / f"go-{time.monotonic_ns()}"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))}
    ps = [subprocess.Popen([sys.executable, "-c", WRITER, url, str(w), str(evals), str(items), str(metrics), str(go)],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env) for w in range(procs)]
    time.sleep(3.0)  # let every writer import skyloom and wait at the go file
    t0 = time.time()
    go.touch()
    outs = [p.communicate(timeout=1800) for p in ps]
    bad = [err[-2000:] for p, (_, err) in zip(ps, outs) if p.returncode]
    if bad:
        raise RuntimeError(f"writer failed: {bad[0]}")
    seconds = max(float(out.strip().splitlines()[-1]) for out, _ in outs) - t0
    with ResultsStore(url) as st:
        with st.engine.connect() as c:
            n_items = c.exec_driver_sql("SELECT count(*) FROM items").scalar()
        assert len(st.evals(status="complete")) == procs * evals and n_items == procs * evals * metrics * items
    return seconds


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--procs", type=int, default=4)
    ap.add_argument("--evals", type=int, default=10, help="evaluations per writer")
    ap.add_argument("--items", type=int, default=100, help="per-item rows per metric")
    ap.add_argument("--metrics", type=int, default=3)
    ap.add_argument("--pg-url", default=None, help="an empty PostgreSQL database (default: a throw-away server)")
    args = ap.parse_args(argv)
    sys.path.insert(0, str(REPO))
    from tests.pgserver import PgServer, find_bindir

    server = None
    rows, load = [], os.getloadavg()
    with tempfile.TemporaryDirectory(prefix="skyloom-bench-store-") as tmp:
        folder = Path(tmp)
        if args.pg_url is None:
            bindir = find_bindir()
            if bindir is None:
                print("PostgreSQL server binaries not found: SQLite only")
            else:
                server = PgServer(bindir, durable=True)
        try:
            for backend in ("sqlite", "postgresql"):
                for procs in (1, args.procs):
                    if backend == "sqlite":
                        url = f"sqlite:///{folder / f'{procs}.sqlite'}"
                    elif args.pg_url:
                        if procs != args.procs:
                            continue  # one empty database given: the concurrent run only
                        url = args.pg_url
                    elif server is not None:
                        url = server.new_database()
                    else:
                        continue
                    # the same total work in both rows: one process writes what the procs write together
                    evals = args.evals * args.procs // procs
                    s = run_writers(url, procs, evals, args.items, args.metrics, folder)
                    n_eval = procs * evals
                    tx = n_eval * (3 + args.metrics)
                    rows.append({"backend": backend, "procs": procs, "evals": n_eval, "seconds": round(s, 2),
                                 "evals_per_s": round(n_eval / s, 1), "transactions_per_s": round(tx / s, 1),
                                 "item_rows_per_s": round(n_eval * args.metrics * args.items / s)})
                    print(json.dumps(rows[-1]), flush=True)
        finally:
            if server is not None:
                server.stop()
    load_after = os.getloadavg()
    print(f"\n{args.procs} writers x {args.evals} evaluations x {args.metrics} metrics x {args.items} items "
          f"(load {load[0]:.1f} before, {load_after[0]:.1f} after)")
    print("| store | writer processes | evaluations | s | evaluations/s | write transactions/s | item rows/s |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for r in rows:
        print(f"| {r['backend']} | {r['procs']} | {r['evals']} | {r['seconds']} | {r['evals_per_s']} | "
              f"{r['transactions_per_s']} | {r['item_rows_per_s']} |")
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps({"args": vars(args), "load_before": load, "load_after": load_after, "rows": rows},
                              indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
