"""Web dashboard and static HTML report over runs, results stores and corpora (read-only)."""

from skyloom.dashboards.app import create_app, serve_in_thread
from skyloom.dashboards.report import ReportInfo, build_report
from skyloom.dashboards.sources import Dashboard

__all__ = ["Dashboard", "ReportInfo", "build_report", "create_app", "serve_in_thread"]
