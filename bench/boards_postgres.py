"""Boards on PostgreSQL against the same rows in SQLite: ``board()``, ``skyloom leaderboard`` and ``/api/leaderboard``.

World: ``bench/boards_scale.py``'s (``--evals`` evaluations of the ``standard`` suite, written the way the
runner writes them), or the store given by ``--from``; its rows are copied into a database on a throw-away
PostgreSQL server on this machine (``tests/pgserver.py``, fsync on, ``synchronous_commit=off``). Each case
runs on both stores in the same process, alternating, first call and the median of ``--repeats`` more.

Usage: ``.venv/bin/python -m bench.boards_postgres [--evals 1000 | --from all.sqlite] [--repeats 3]``
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
from collections.abc import Callable
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
OUT = Path(__file__).resolve().parent / "out" / "boards_postgres.json"


def _times(fn: Callable[[], object], repeats: int) -> tuple[float, float]:
    t0 = time.perf_counter()
    fn()
    first = time.perf_counter() - t0
    ts = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        ts.append(time.perf_counter() - t0)
    return first, statistics.median(ts)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--evals", type=int, default=1000)
    ap.add_argument("--from", dest="source", type=Path, default=None, help="a SQLite store to copy (read only)")
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args(argv)
    sys.path.insert(0, str(REPO))
    from fastapi.testclient import TestClient

    from skyloom.dashboards import Dashboard, create_app
    from skyloom.eval.results.boards import board
    from skyloom.eval.results.store import ResultsStore
    from tests.pgserver import PgServer, find_bindir

    bindir = find_bindir()
    if bindir is None:
        print("PostgreSQL server binaries not found")
        return 1
    load = os.getloadavg()
    rows = []
    with tempfile.TemporaryDirectory(prefix="skyloom-bench-boards-pg-") as tmp:
        root = Path(tmp)
        if args.source is not None:
            lite = root / "all.sqlite"
            shutil.copyfile(args.source, lite)
        else:
            from bench.boards_scale import build_world

            build_world(root, args.evals)
            lite = root / "all.sqlite"
        (root / "runs").mkdir(exist_ok=True)
        server = PgServer(bindir, durable=True)
        try:
            pg = server.new_database()
            t0 = time.perf_counter()
            with ResultsStore(lite) as src, ResultsStore(pg) as dst:
                src.copy_into(dst)
                n_evals = len(dst.evals())
            copy_s = time.perf_counter() - t0
            print(f"{n_evals} evaluations copied into PostgreSQL in {copy_s:.1f} s", flush=True)
            exe = Path(sys.executable).parent / "skyloom"
            for name, url in (("sqlite", str(lite)), ("postgresql", pg)):
                def lb(url: str = url) -> None:
                    with ResultsStore(url) as st:
                        board(st, "standard")

                def cli(url: str = url) -> None:
                    subprocess.run([str(exe), "leaderboard", "--db", url, "--suite", "standard", "--format", "json"],
                                   capture_output=True, check=True)

                dash = Dashboard([root / "runs"], db=url)
                with TestClient(create_app(dash), base_url="http://localhost") as c:
                    def api(c: TestClient = c) -> None:
                        assert c.get("/api/leaderboard").status_code == 200

                    for case, fn in (("board()", lb), ("skyloom leaderboard", cli), ("/api/leaderboard", api)):
                        first, warm = _times(fn, args.repeats)
                        rows.append({"store": name, "case": case, "first_s": round(first, 3),
                                     "median_s": round(warm, 3)})
                        print(json.dumps(rows[-1]), flush=True)
                dash.close()
        finally:
            server.stop()
    load_after = os.getloadavg()
    print(f"\n{n_evals} evaluations of the standard suite (load {load[0]:.1f} before, {load_after[0]:.1f} after)")
    print("| case | store | first s | median s |")
    print("|---|---|---:|---:|")
    for r in sorted(rows, key=lambda r: (r["case"], r["store"])):
        print(f"| {r['case']} | {r['store']} | {r['first_s']} | {r['median_s']} |")
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps({"evals": n_evals, "copy_s": copy_s, "load_before": load, "load_after": load_after,
                               "rows": rows}, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
