"""Run every benchmark in ``bench/`` one after another (``make bench``).

Each benchmark prints its table and writes JSON under ``bench/out/``; the figures worth keeping
go into ``docs/benchmarks.md`` together with the command that produced them.
"""

from __future__ import annotations

import importlib
import pkgutil
import sys
import time

import bench


def main(argv: list[str] | None = None) -> int:
    only = set(argv if argv is not None else sys.argv[1:])
    names = sorted(m.name for m in pkgutil.iter_modules(bench.__path__) if m.name not in ("run_all", "__init__"))
    failed = []
    for name in names:
        if only and name not in only:
            continue
        print(f"== bench.{name}", flush=True)
        t0 = time.perf_counter()
        mod = importlib.import_module(f"bench.{name}")
        try:
            rc = mod.main([]) if hasattr(mod, "main") else 0
        except Exception as e:  # noqa: BLE001 - one broken benchmark must not hide the others; it is listed as failed
            print(f"bench.{name} failed: {type(e).__name__}: {e}", flush=True)
            failed.append(name)
            continue
        if rc:
            failed.append(name)
        print(f"== bench.{name} done in {time.perf_counter() - t0:.1f} s", flush=True)
    if failed:
        print("failed:", ", ".join(failed))
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
