"""Benchmarks: each module runs as ``python -m bench.<name>`` and records figures in docs/benchmarks.md."""
