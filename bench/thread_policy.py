"""Training steps/s of vdit-tiny with 1 thread, 2 threads and the thread governor, idle and beside a CPU hog.

    .venv/bin/python -m bench.thread_policy CORPUS [--seconds 45] [--conditions as-is,hog,hog-mid] [--preset P]

Each (policy, condition) trains ``skyloom train``'s loop (``Trainer.run``, the vdit-tiny preset, data
loading, EMA and logging included) for ``--seconds`` in a fresh subprocess, because OpenMP reads its
wait policy once, when torch loads it. Policies:

* ``fixed-1``, ``fixed-2``: ``num_threads`` 1 / 2 with OpenMP's default (spinning) wait policy,
  i.e. what a fixed count did before the governor;
* ``fixed-2-passive``: 2 threads with ``OMP_WAIT_POLICY=PASSIVE`` (the CLI's setting), to separate
  the two changes;
* ``auto``: ``num_threads=-1`` (:class:`skyloom.model.threads.ThreadGovernor`, re-check every
  ``--recheck-s`` s) with ``OMP_WAIT_POLICY=PASSIVE``, exactly as ``skyloom train --preset vdit-tiny``.

Conditions: ``as-is`` (whatever else runs on the machine), ``hog`` (one busy-loop process started by
this bench for the whole run), ``hog-mid`` (the hog runs only through the middle third). For each run
the bench reports steps/s (first two steps excluded), the thread counts the run used, the 1-minute
load before it, and the *background* busy CPUs: the machine's busy CPU-seconds from ``/proc/stat``
minus the trainer's and the hog's own, over the wall time: the other users of a shared machine.
JSON in ``bench/out/thread_policy.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

OUT = Path(__file__).resolve().parent / "out"
POLICIES = {"fixed-1": (1, "ACTIVE"), "fixed-2": (2, "ACTIVE"), "fixed-2-passive": (2, "PASSIVE"),
            "auto": (-1, "PASSIVE")}
HOG = "import time\nwhile True:\n    pass\n"


def machine_busy() -> tuple[float, float]:
    """(wall, busy CPU-seconds of all CPUs) from /proc/stat (busy = everything but idle and iowait)."""
    tick = os.sysconf("SC_CLK_TCK")
    with open("/proc/stat") as f:
        fields = [int(x) for x in f.readline().split()[1:]]
    return time.monotonic(), (sum(fields[:8]) - fields[3] - fields[4]) / tick


def proc_cpu_s(pid: int) -> float:
    """utime + stime of a live process, seconds."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def worker(corpus: str, threads: int, seconds: float, recheck_s: float, out: str, preset: str = "vdit-tiny") -> None:
    """One training run in this (fresh) process; writes its result JSON to ``out``."""
    import torch

    from skyloom.config import apply_overrides, load
    from skyloom.model.config import TrainConfig
    from skyloom.model.train import Trainer

    cfg = apply_overrides(load(TrainConfig, preset, [], group="model"),
                          [f"num_threads={threads}", f"threads_recheck_s={recheck_s}", "steps=100000",
                           f"max_minutes={seconds / 60}", "ckpt_every=100000", "log_every=1000"])
    with tempfile.TemporaryDirectory() as d:
        tr = Trainer(cfg, corpus, Path(d) / "run")
        stamps: list[tuple[float, int]] = []
        cpu: list[float] = []

        def on_step(step: int, loss: float) -> None:
            stamps.append((time.perf_counter(), torch.get_num_threads()))
            cpu.append(time.process_time())

        tr.run(on_step=on_step, progress_bar=False)
    t = [s for s, _ in stamps]
    used = sorted({n for _, n in stamps})
    per_thread = {str(n): sum(1 for _, m in stamps if m == n) for n in used}
    Path(out).write_text(json.dumps({
        "steps": len(stamps), "steps_per_s": (len(t) - 3) / (t[-1] - t[2]) if len(t) > 3 else None,
        # CPU-seconds of this process per step (all threads): on an idle machine one thread's step takes
        # about this long; the basis of the idle estimates in docs/benchmarks.md
        "cpu_s_per_step": (cpu[-1] - cpu[2]) / (len(cpu) - 3) if len(cpu) > 3 else None,
        "threads_used": used, "steps_at_threads": per_thread,
        "governor": [[round(w - tr.governor.history[0][0], 1), f, n] for w, f, n in tr.governor.history]
        if tr.governor is not None else None}))


def one(corpus: str, policy: str, condition: str, seconds: float, recheck_s: float, preset: str) -> dict:
    threads, wait = POLICIES[policy]
    env = {**os.environ, "OMP_WAIT_POLICY": wait}
    env.pop("OMP_NUM_THREADS", None)
    res_path = Path(tempfile.mkstemp(suffix=".json")[1])
    load0 = os.getloadavg()[0]
    w0, busy0 = machine_busy()
    cpu_children0 = os.times().children_user + os.times().children_system
    p = subprocess.Popen([sys.executable, "-m", "bench.thread_policy", "--worker", corpus, str(threads),
                          str(seconds), str(recheck_s), str(res_path), preset], env=env)
    hog, hog_cpu = None, 0.0
    start_hog = {"as-is": None, "hog": 0.0, "hog-mid": seconds / 3}[condition]
    t0 = time.monotonic()
    while p.poll() is None:
        el = time.monotonic() - t0
        if hog is None and start_hog is not None and el >= start_hog + 8:  # + ~8 s of start-up before training
            hog = subprocess.Popen([sys.executable, "-c", HOG])
        if hog is not None and condition == "hog-mid" and el >= 2 * seconds / 3 + 8 and hog.poll() is None:
            hog_cpu = proc_cpu_s(hog.pid)
            hog.kill()
        time.sleep(0.2)
    if hog is not None and hog.poll() is None:
        hog_cpu = proc_cpu_s(hog.pid)
        hog.kill()
    if hog is not None:
        hog.wait()
    w1, busy1 = machine_busy()
    cpu_children = os.times().children_user + os.times().children_system - cpu_children0
    r = json.loads(res_path.read_text())
    res_path.unlink()
    # children includes the hog only once reaped; subtract the hog's measured CPU and count the trainer once
    trainer_cpu = max(0.0, cpu_children - hog_cpu)
    r.update(policy=policy, condition=condition, load_1min_before=round(load0, 2),
             background_busy_cpus=round(max(0.0, (busy1 - busy0) - trainer_cpu - hog_cpu) / (w1 - w0), 2),
             trainer_cpus=round(trainer_cpu / (w1 - w0), 2), wall_s=round(w1 - w0, 1))
    return r


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["--worker"]:
        corpus, threads, seconds, recheck_s, out, preset = argv[1:7]
        worker(corpus, int(threads), float(seconds), float(recheck_s), out, preset)
        return
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("corpus")
    ap.add_argument("--seconds", type=float, default=45.0)
    ap.add_argument("--recheck-s", type=float, default=10.0)
    ap.add_argument("--policies", default="fixed-1,fixed-2,fixed-2-passive,auto")
    ap.add_argument("--conditions", default="as-is,hog")
    ap.add_argument("--preset", default="vdit-tiny", help="model preset (configs/model)")
    a = ap.parse_args(argv)
    rows = []
    for condition in a.conditions.split(","):
        for policy in a.policies.split(","):
            r = one(a.corpus, policy, condition, a.seconds, a.recheck_s, a.preset)
            rows.append(r)
            print(json.dumps(r), flush=True)
    OUT.mkdir(exist_ok=True)
    (OUT / "thread_policy.json").write_text(json.dumps({"seconds": a.seconds, "preset": a.preset, "rows": rows},
                                                       indent=1))


if __name__ == "__main__":
    main()
