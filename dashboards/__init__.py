"""Web dashboard and static HTML report over runs, results stores and corpora (read-only).

The names import lazily: the web app needs the ``[dashboard]`` extra (FastAPI, uvicorn), the report
and the data sources do not.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from skyloom.dashboards.app import create_app, serve_in_thread
    from skyloom.dashboards.report import ReportInfo, build_report
    from skyloom.dashboards.sources import Dashboard

_WHERE = {"create_app": "app", "serve_in_thread": "app", "ReportInfo": "report", "build_report": "report",
          "Dashboard": "sources"}

__all__ = ["Dashboard", "ReportInfo", "build_report", "create_app", "serve_in_thread"]


def __getattr__(name: str) -> Any:
    if name not in _WHERE:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    if _WHERE[name] == "app":
        from skyloom.errors import require_extra

        for module in ("fastapi", "uvicorn"):
            require_extra(module, "dashboard", what="the web dashboard")
    return getattr(importlib.import_module(f"{__name__}.{_WHERE[name]}"), name)
