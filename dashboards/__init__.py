"""Web dashboard and static HTML report over runs, results stores and corpora (read-only).

Public names (imported lazily, so ``import skyloom.dashboards`` loads neither FastAPI nor eval):
    Dashboard                          one JSON payload per view (``sources``)
    create_app, serve_in_thread        the FastAPI app (``app``)
    build_report, ReportInfo           the static HTML report (``report``)
"""

from __future__ import annotations

import importlib
from typing import Any

_LAZY = {"Dashboard": "sources", "create_app": "app", "serve_in_thread": "app", "build_report": "report",
         "ReportInfo": "report"}
__all__ = sorted(_LAZY)


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(f"skyloom.dashboards.{_LAZY[name]}"), name)
    raise AttributeError(f"module 'skyloom.dashboards' has no attribute {name!r}")
