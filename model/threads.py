"""How many torch threads training uses: the CPUs actually free, re-checked while it trains.

``TrainConfig.num_threads = -1`` (the vdit-tiny preset) hands the choice to :class:`ThreadGovernor`.
It measures the free CPUs from the kernel's idle counters, not from the load average: the
1-minute load average lags by about a minute (right after the previous demo stage it still reads
~2 on an idle 2-core machine), and while training runs it counts the trainer's own threads.

Free CPUs over a window (:func:`free_cpus`) = (idle CPU-seconds of the CPUs this process may run
on + this process's own CPU-seconds) / wall seconds: what this process could use if it asked. The
governor picks a thread count at start from a short window (0.25 s) and re-checks every
``TrainConfig.threads_recheck_s`` seconds with hysteresis:

* down at once when the free CPUs fall under ``n - 0.4`` (two OpenMP threads on a core another
  process holds thrash: vdit-tiny at load 9 took 6.1 s a step on 2 threads, 1.29 s on one);
* up only when two windows in a row show ``n + 1 - 0.3`` free CPUs (a spike does not flip it).

The CLI also disables OpenMP's spin-wait (``OMP_WAIT_POLICY=PASSIVE``, set in
:func:`skyloom.cli.main` before torch loads OpenMP, which reads it once): a thread waiting at a
barrier sleeps instead of burning the core the other process needs. Library callers who import
torch themselves set it in their environment. The counters come from ``/proc/stat`` (Linux); where
it cannot be read the governor falls back to the load average minus its own threads
(:class:`LoadAvgSource`). A cgroup CPU quota (``cpu.max``) is not read: the affinity is the cap.
"""

from __future__ import annotations

import logging
import math
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

logger = logging.getLogger(__name__)

#: Hysteresis of :meth:`ThreadGovernor.decide`, in CPUs: drop a thread when fewer than ``n - DOWN_MARGIN``
#: CPUs are free, add one when ``n + 1 - UP_MARGIN`` are free in two windows in a row.
DOWN_MARGIN = 0.4
UP_MARGIN = 0.3
#: Length of the window the first choice is measured over (the trainer is not running yet).
START_WINDOW_S = 0.25
#: Environment a CLI process sets before torch loads OpenMP (see the module docstring).
OMP_PASSIVE_ENV = {"OMP_WAIT_POLICY": "PASSIVE"}


def allowed_cpus() -> int:
    """CPUs this process may run on: its affinity (``os.cpu_count()`` where unsupported)."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def disable_omp_spin(environ: dict[str, str] | None = None) -> None:
    """Set ``OMP_WAIT_POLICY=PASSIVE`` unless the user chose a policy (call before torch is imported)."""
    env = os.environ if environ is None else environ
    for k, v in OMP_PASSIVE_ENV.items():
        env.setdefault(k, v)


@dataclass(frozen=True)
class CpuSample:
    """Cumulative counters at one instant (seconds); differences of two samples make a window."""

    wall: float  # monotonic clock
    idle: float  # idle CPU-seconds summed over the allowed CPUs (idle + iowait)
    own: float  # this process's CPU-seconds, all threads (user + system)


class CpuSource(Protocol):
    """Where the free CPUs are read from; tests pass a fake one."""

    def cpus(self) -> int: ...

    def sample(self) -> CpuSample: ...


def free_cpus(a: CpuSample, b: CpuSample, cpus: int) -> float:
    """Free CPUs over the window from ``a`` to ``b``: (idle + own CPU-seconds) / wall seconds, in [0, cpus].

    Example:
        >>> free_cpus(CpuSample(0.0, 0.0, 0.0), CpuSample(10.0, 3.0, 10.0), cpus=2)  # 1 core ours, 0.3 idle
        1.3
    """
    wall = b.wall - a.wall
    if wall <= 0:
        return float(cpus)
    return round(min(float(cpus), max(0.0, (b.idle - a.idle + b.own - a.own) / wall)), 6)


class ProcStatSource:
    """Idle time of the allowed CPUs from ``/proc/stat`` (Linux); own time from ``time.process_time``."""

    def __init__(self, path: str = "/proc/stat") -> None:
        self.path = path
        self.ids = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None
        self.tick = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
        self.sample()  # raises OSError/ValueError here, where the governor can fall back

    def cpus(self) -> int:
        return len(self.ids) if self.ids is not None else allowed_cpus()

    def sample(self) -> CpuSample:
        idle = 0
        with open(self.path) as f:
            for line in f:
                if not line.startswith("cpu") or line.startswith("cpu "):
                    continue
                name, *fields = line.split()
                if self.ids is not None and int(name[3:]) not in self.ids:
                    continue
                idle += int(fields[3]) + int(fields[4])  # idle, iowait (jiffies)
        return CpuSample(time.monotonic(), idle / self.tick, time.process_time())


class LoadAvgSource:
    """Fallback: free CPUs = allowed CPUs - 1-minute load + this process's share of it (lags by a minute).

    The load average is an exponential average over a minute, so after ``t`` seconds of ``n`` threads
    it holds about ``n * (1 - exp(-t / 60))`` of ours. Each sample's estimate is integrated into an
    idle counter, so :func:`free_cpus` works on it as on the kernel's.
    """

    def __init__(self, threads: Callable[[], int]) -> None:
        self.threads = threads  # the governor's current count
        self._t0 = self._t = time.monotonic()
        self._idle = 0.0

    def cpus(self) -> int:
        return allowed_cpus()

    def sample(self) -> CpuSample:
        try:
            load = os.getloadavg()[0]
        except (AttributeError, OSError):
            load = 0.0
        now = time.monotonic()
        ours = self.threads() * (1.0 - math.exp(-(now - self._t0) / 60.0))
        self._idle += max(0.0, self.cpus() - load + ours) * (now - self._t)
        self._t = now
        return CpuSample(now, self._idle, 0.0)


def default_source(threads: Callable[[], int]) -> CpuSource:
    try:
        return ProcStatSource()
    except (OSError, ValueError, IndexError):
        return LoadAvgSource(threads)


class ThreadGovernor:
    """Chooses and re-checks the torch thread count of a training process (``num_threads = -1``).

    Args:
        source: the CPU counters (default :class:`ProcStatSource`, else :class:`LoadAvgSource`).
        recheck_s: seconds between re-checks (:meth:`maybe_adjust` is cheap in between).
        apply: sets the thread count (default ``torch.set_num_threads``).
        sleep: waits for the first window (tests pass a fake clock's).
    """

    def __init__(self, source: CpuSource | None = None, *, recheck_s: float = 10.0,
                 apply: Callable[[int], None] | None = None, sleep: Callable[[float], None] = time.sleep) -> None:
        self.threads = 0
        self.source = source if source is not None else default_source(lambda: self.threads)
        self.cpus = max(1, self.source.cpus())
        self.recheck_s = recheck_s
        self._apply = apply if apply is not None else _torch_set_threads
        self._pending_up = 0  # how many windows in a row asked for more threads
        self.history: list[tuple[float, float, int]] = []  # (wall, free CPUs, threads after the check)
        a = self.source.sample()
        sleep(START_WINDOW_S)
        self._last = self.source.sample()
        free = free_cpus(a, self._last, self.cpus)
        self.threads = self.fit(free)
        self._apply(self.threads)
        self.history.append((self._last.wall, free, self.threads))
        logger.info("torch threads: %d (%.2f of %d CPUs free)", self.threads, free, self.cpus)

    def fit(self, free: float) -> int:
        """The count for ``free`` CPUs with no history: keep ``DOWN_MARGIN`` of slack, at least 1."""
        return max(1, min(self.cpus, int(free + DOWN_MARGIN)))

    def decide(self, free: float) -> int:
        """The count after a window with ``free`` CPUs, given the current count (hysteresis, see module)."""
        n = self.threads
        if free < n - DOWN_MARGIN:
            self._pending_up = 0
            return self.fit(free)
        if n < self.cpus and free >= n + 1 - UP_MARGIN:
            self._pending_up += 1
            if self._pending_up >= 2:
                self._pending_up = 0
                return max(n + 1, min(self.cpus, int(free + UP_MARGIN)))
            return n
        self._pending_up = 0
        return n

    def maybe_adjust(self) -> int:
        """Re-check if ``recheck_s`` has passed since the last check; returns the (possibly new) count."""
        b = self.source.sample()
        if b.wall - self._last.wall < self.recheck_s:
            return self.threads
        free = free_cpus(self._last, b, self.cpus)
        self._last = b
        n = self.decide(free)
        if n != self.threads:
            logger.info("torch threads: %d -> %d (%.2f of %d CPUs free over %.0f s)", self.threads, n, free,
                        self.cpus, self.recheck_s)
            self.threads = n
            self._apply(n)
        self.history.append((b.wall, free, self.threads))
        return self.threads


def _torch_set_threads(n: int) -> None:
    import torch

    torch.set_num_threads(n)


def start_threads(num_threads: int, recheck_s: float = 10.0) -> ThreadGovernor | None:
    """Apply ``TrainConfig.num_threads``: 0 leaves torch's count, N > 0 sets N, -1 starts a :class:`ThreadGovernor`.

    Returns the governor for ``-1`` (the training loop calls its :meth:`~ThreadGovernor.maybe_adjust`), else None.
    """
    from skyloom.config import ConfigError

    if num_threads < -1:
        raise ConfigError(f"num_threads must be -1 (auto), 0 (torch default) or a positive count, got {num_threads}")
    if num_threads == -1 and not recheck_s > 0:
        raise ConfigError(f"threads_recheck_s must be > 0 seconds, got {recheck_s}")
    governor = ThreadGovernor(recheck_s=recheck_s) if num_threads == -1 else None
    if num_threads > 0:
        _torch_set_threads(num_threads)
    if governor is None:
        import torch

        logger.info("torch threads: %d (num_threads=%d)", torch.get_num_threads(), num_threads)
    return governor
