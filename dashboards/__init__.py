"""Web dashboard and static HTML report over runs, results stores and corpora (read-only)."""

from dashboards.app import create_app, serve_in_thread
from dashboards.report import ReportInfo, build_report
from dashboards.sources import Dashboard

__all__ = ["Dashboard", "ReportInfo", "build_report", "create_app", "serve_in_thread"]
