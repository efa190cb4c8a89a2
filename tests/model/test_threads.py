"""The training thread policy (skyloom.model.threads): free CPUs from idle counters, re-checked with hysteresis."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
import torch

from skyloom.config import ConfigError
from skyloom.model.threads import (
    CpuSample,
    LoadAvgSource,
    ProcStatSource,
    ThreadGovernor,
    free_cpus,
    start_threads,
)


class FakeCpus:
    """A machine of ``cpus`` cores on a fake clock: each sample advances ``dt`` seconds during which
    ``idle`` CPUs sat idle and this process used ``own`` (both set by the test between samples)."""

    def __init__(self, cpus: int = 2, idle: float = 2.0, own: float = 0.0, dt: float = 5.0) -> None:
        self.n, self.idle, self.own, self.dt = cpus, idle, own, dt
        self.now = self.idle_s = self.own_s = 0.0

    def cpus(self) -> int:
        return self.n

    def sample(self) -> CpuSample:
        self.now += self.dt
        self.idle_s += self.idle * self.dt
        self.own_s += self.own * self.dt
        return CpuSample(self.now, self.idle_s, self.own_s)


def governor(src: FakeCpus, recheck_s: float = 1.0) -> tuple[ThreadGovernor, list[int]]:
    applied: list[int] = []
    return ThreadGovernor(src, recheck_s=recheck_s, apply=applied.append, sleep=lambda s: None), applied


def test_free_cpus_is_idle_plus_own_time_over_wall_time():
    a = CpuSample(100.0, 50.0, 3.0)
    assert free_cpus(a, CpuSample(110.0, 53.0, 13.0), cpus=2) == pytest.approx(1.3)  # 0.3 idle + our 1 core
    assert free_cpus(a, CpuSample(110.0, 80.0, 23.0), cpus=2) == 2.0  # clamped to the CPUs we may use
    assert free_cpus(a, CpuSample(110.0, 50.0, 3.0), cpus=2) == 0.0
    assert free_cpus(a, a, cpus=2) == 2.0  # an empty window says nothing: assume free


@pytest.mark.parametrize("idle,expected", [(2.0, 2), (1.7, 2), (1.55, 1), (1.0, 1), (0.1, 1)])
def test_first_choice_is_the_idle_cpus_at_start(idle, expected):
    g, applied = governor(FakeCpus(cpus=2, idle=idle))
    assert g.threads == expected and applied == [expected]


def test_sixteen_cores_with_three_busy_get_thirteen_threads():
    g, _ = governor(FakeCpus(cpus=16, idle=13.0))
    assert g.threads == 13


def test_idle_machine_keeps_both_cores_while_training_uses_them():
    src = FakeCpus(cpus=2, idle=2.0)
    g, applied = governor(src)
    src.idle, src.own = 0.05, 1.9  # our two threads busy, nobody else
    for _ in range(10):
        assert g.maybe_adjust() == 2
    assert applied == [2]


def test_a_competing_process_takes_a_thread_away_at_once_and_it_comes_back_when_it_ends():
    src = FakeCpus(cpus=2, idle=2.0)
    g, applied = governor(src)
    src.idle, src.own = 0.0, 1.33  # a hog: the scheduler gives us 2/3 of the machine
    assert g.maybe_adjust() == 1  # the first window under load drops a thread
    src.idle, src.own = 0.0, 1.0  # one thread, one hog: nothing idle
    assert [g.maybe_adjust() for _ in range(5)] == [1] * 5  # 1.0 free: stays
    src.idle, src.own = 1.0, 1.0  # the hog ended
    assert g.maybe_adjust() == 1  # one free window is not enough (a spike does not flip it) ...
    assert g.maybe_adjust() == 2  # ... two in a row are
    assert applied == [2, 1, 2]
    assert [n for _, _, n in g.history] == [2, 1, 1, 1, 1, 1, 1, 1, 2]


def test_a_single_idle_spike_between_busy_windows_does_not_add_a_thread():
    src = FakeCpus(cpus=2, idle=0.5)
    g, applied = governor(src)
    assert g.threads == 1
    for idle in [1.0, 0.0, 1.0, 0.0, 1.0, 0.0]:  # free alternates 2.0 / 1.0
        src.idle, src.own = idle, 1.0
        assert g.maybe_adjust() == 1
    assert applied == [1]


def test_rechecks_only_after_recheck_s():
    src = FakeCpus(cpus=2, idle=2.0, dt=1.0)
    g, applied = governor(src, recheck_s=3.0)
    src.idle, src.own = 0.0, 1.0
    assert [g.maybe_adjust() for _ in range(3)] == [2, 2, 1]  # the window closes 3 s after the first choice
    assert len(g.history) == 2


def test_proc_stat_source_sums_idle_and_iowait_of_the_allowed_cpus(tmp_path):
    ids = sorted(os.sched_getaffinity(0))
    tick = os.sysconf("SC_CLK_TCK")
    lines = ["cpu  9 9 9 999999 9 0 0 0 0 0"]  # the aggregate line is not read
    lines += [f"cpu{i} 100 0 50 {1000 * (k + 1)} {10 * (k + 1)} 0 0 0 0 0" for k, i in enumerate(ids)]
    lines.append(f"cpu{max(ids) + 1} 0 0 0 777777 0 0 0 0 0 0")  # a CPU outside the affinity
    lines.append("intr 1 2 3")
    p = tmp_path / "stat"
    p.write_text("\n".join(lines) + "\n")
    src = ProcStatSource(str(p))
    assert src.cpus() == len(ids)
    s = src.sample()
    expected = sum(1010 * (k + 1) for k in range(len(ids))) / tick
    assert s.idle == pytest.approx(expected)
    assert s.own == pytest.approx(__import__("time").process_time(), abs=0.5)


def test_proc_stat_source_reads_this_machine():
    src = ProcStatSource()
    a = src.sample()
    sum(i * i for i in range(300_000))  # some CPU time of our own
    b = src.sample()
    assert b.own > a.own and b.idle >= a.idle
    assert 0.0 <= free_cpus(a, b, src.cpus()) <= src.cpus()


def test_load_average_fallback_subtracts_its_own_threads(monkeypatch):
    monkeypatch.setattr(os, "getloadavg", lambda: (2.0, 2.0, 2.0))
    src = LoadAvgSource(threads=lambda: 2)
    src._t0 -= 600  # trained for ten minutes: the whole load of 2 is our two threads
    a = src.sample()
    src._t -= 10  # ten seconds later
    b = src.sample()
    assert free_cpus(a, b, src.cpus()) == pytest.approx(min(src.cpus(), src.cpus() - 2.0 + 2.0), abs=0.01)


def test_start_threads_fixed_default_and_auto():
    old = torch.get_num_threads()
    try:
        assert start_threads(1) is None and torch.get_num_threads() == 1
        assert start_threads(0) is None and torch.get_num_threads() == 1  # 0 leaves it
        g = start_threads(-1, recheck_s=5.0)
        assert isinstance(g, ThreadGovernor) and torch.get_num_threads() == g.threads
        assert 1 <= g.threads <= len(os.sched_getaffinity(0))
        with pytest.raises(ConfigError, match="num_threads"):
            start_threads(-2)
        with pytest.raises(ConfigError, match="threads_recheck_s"):
            start_threads(-1, recheck_s=0)
    finally:
        torch.set_num_threads(old)


def test_training_follows_the_governor_and_logs_the_count(tmp_path, monkeypatch):
    """The loop re-checks every step: a hog that appears mid-run drops the count; metrics.jsonl records it."""
    from skyloom.model import train as train_mod
    from tests.model.helpers import make_square_corpus, tiny_cfg

    corpus = make_square_corpus(tmp_path / "c")
    src = FakeCpus(cpus=2, idle=2.0, dt=1.0)
    made: list[ThreadGovernor] = []

    def fake_start(num_threads: int, recheck_s: float) -> ThreadGovernor:
        assert num_threads == -1 and recheck_s == 2.0
        made.append(ThreadGovernor(src, recheck_s=recheck_s, sleep=lambda s: None))
        return made[0]

    monkeypatch.setattr(train_mod, "start_threads", fake_start)
    old = torch.get_num_threads()
    try:
        seen: list[int] = []

        def on_step(step: int, loss: float) -> None:
            seen.append(torch.get_num_threads())
            if step == 3:
                src.idle, src.own = 0.0, 1.2  # a competing process starts

        train_mod.train(tiny_cfg(steps=8, num_threads=-1, threads_recheck_s=2.0), corpus.root, tmp_path / "run",
                        progress_bar=False, on_step=on_step)
    finally:
        torch.set_num_threads(old)
    assert seen[:3] == [2, 2, 2] and seen[-1] == 1
    rows = [json.loads(ln) for ln in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    threads = [r["threads"] for r in rows if r.get("kind") == "train"]
    assert threads[0] == 2 and threads[-1] == 1


def test_cli_disables_openmp_spin_before_torch_loads():
    """`skyloom` sets OMP_WAIT_POLICY=PASSIVE before any command imports torch, and keeps a user's choice."""
    code = ("import os, sys\nfrom skyloom.cli import main\nassert 'torch' not in sys.modules\n"
            "try:\n    main(['--help'])\nexcept SystemExit:\n    pass\nprint(os.environ.get('OMP_WAIT_POLICY'))")
    env = {k: v for k, v in os.environ.items() if k != "OMP_WAIT_POLICY"}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip().splitlines()[-1] == "PASSIVE"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                         env={**env, "OMP_WAIT_POLICY": "ACTIVE"})
    assert out.stdout.strip().splitlines()[-1] == "ACTIVE"


def test_the_demo_trains_with_the_governor():
    """The demo's train stage uses a preset with num_threads = -1 (and no --set pinning it), so on an idle
    2-core machine it starts on both cores (test_first_choice_is_the_idle_cpus_at_start)."""
    import yaml

    from skyloom.cli_common import load_config
    from skyloom.config import packaged_configs
    from skyloom.model.config import TrainConfig

    demo = yaml.safe_load((packaged_configs() / "demo.yaml").read_text())
    (train,) = [[str(a) for a in s["args"]] for s in demo["stages"] if s["args"][0] == "train"]
    sets = [train[i + 1] for i, a in enumerate(train) if a == "--set"]
    cfg = load_config(TrainConfig, "model", train[train.index("--preset") + 1], sets)
    assert cfg.num_threads == -1 and cfg.threads_recheck_s > 0
