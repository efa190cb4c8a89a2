"""The ``auto`` executor's rule (skyloom.raytools.use_ray), shared by render, ingest and captioning."""

from __future__ import annotations

import pytest

from skyloom.raytools import use_ray


def test_auto_runs_small_jobs_in_process_and_large_or_addressed_ones_on_ray(monkeypatch):
    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    monkeypatch.setitem(__import__("sys").modules, "ray", None)  # Ray not started in this process
    assert not use_ray("auto", 10, 16)
    assert use_ray("auto", 16, 16) and use_ray("auto", 1000, 16)
    assert use_ray("auto", 1, 16, address="10.0.0.1:6379")  # a cluster is given: always join it
    assert not use_ray("auto", 1, 16, address="local")
    monkeypatch.setenv("RAY_ADDRESS", "10.0.0.1:6379")
    assert use_ray("auto", 1, 16)
    assert use_ray("ray", 1, 16) and not use_ray("local", 10**6, 16, address="10.0.0.1:6379")
    with pytest.raises(ValueError, match="executor 'rya' is not one of: auto, local, ray"):
        use_ray("rya", 1, 16)


def test_auto_uses_a_ray_instance_already_running(monkeypatch):
    class FakeRay:
        @staticmethod
        def is_initialized() -> bool:
            return True

    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    monkeypatch.setitem(__import__("sys").modules, "ray", FakeRay)
    assert use_ray("auto", 1, 16)
