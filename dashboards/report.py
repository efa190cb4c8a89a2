"""``skyloom report``: the dashboard's four views as one self-contained HTML file.

The page, CSS and JavaScript are the live dashboard's (:mod:`skyloom.dashboards.page`); every payload is
embedded as JSON, videos as ``data:video/mp4;base64,...`` URLs. The leaderboard view carries every
entry of every suite version (its version picker works offline); the compare view, its videos and
the paired comparisons cover the **top K** entries of each board only (``top_k``, default
:data:`DEFAULT_TOP_K`: the K best-ranked, then unranked rows in board order when fewer are ranked),
and the report says so (a warning per board with more entries, and ``report.top_k`` in the data): a
board of a thousand entries would otherwise embed a thousand entries' videos and a million paired
tests. Videos are embedded in order (compare videos first, then corpus clips) until ``max_video_mb`` is
reached; each one left out shows a note saying why and how to raise the limit. Paired comparisons are
precomputed for every ordered pair of the top K entries of each suite's newest version (at most
``max_paired_evals`` of them when given) and every metric. Nothing in the file refers to the network.
"""

from __future__ import annotations

import base64
import itertools
import logging
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from skyloom.dashboards.page import render_page
from skyloom.dashboards.paths import MEDIA_TYPES, PathRefused
from skyloom.dashboards.sources import Dashboard
from skyloom.fsutil import atomic_write_text

log = logging.getLogger(__name__)

DEFAULT_MAX_VIDEO_MB = 50.0
DEFAULT_TOP_K = 8


@dataclass
class ReportInfo:
    """What :func:`build_report` wrote."""

    path: Path
    bytes: int
    videos_embedded: int = 0
    videos_omitted: int = 0  # every video not embedded: over the budget, plus videos_missing
    videos_missing: int = 0  # not found, or outside the configured folders
    video_bytes: int = 0
    paired: int = 0
    top_k: int = DEFAULT_TOP_K
    warnings: list[str] = field(default_factory=list)


class _Embedder:
    """``(path, run_root) -> (data URL | None, note)`` under a byte budget, confined to the roots."""

    def __init__(self, dash: Dashboard, max_bytes: int) -> None:
        self.dash, self.max_bytes = dash, max_bytes
        self.used = self.embedded = self.omitted = self.missing = 0
        self.cache: dict[Path, str] = {}

    def __call__(self, path: str | os.PathLike, prefer: Path | None = None) -> tuple[str | None, str | None]:
        loc = self.dash.roots.locate(path, prefer)
        if loc is None:
            self.missing += 1
            return None, "video outside the configured directories or missing"
        try:
            full = self.dash.roots.resolve(*loc)  # same checks as the live file endpoint
        except (PathRefused, FileNotFoundError) as e:
            self.missing += 1
            return None, f"video not servable ({e})"
        if full in self.cache:
            return self.cache[full], None
        size = full.stat().st_size
        if self.used + size > self.max_bytes:
            self.omitted += 1
            return None, (f"video not embedded: the report's video budget ({self.max_bytes / 2**20:.0f} MB) "
                          "is used up; rerun skyloom report with a larger --max-video-mb")
        url = f"data:{MEDIA_TYPES.get(full.suffix.lower(), 'application/octet-stream')};base64," + \
            base64.b64encode(full.read_bytes()).decode("ascii")
        self.used += size
        self.embedded += 1
        self.cache[full] = url
        return url, None


def top_entries(rows: list[dict[str, Any]], k: int) -> list[str]:
    """Eval ids of a board's top ``k`` entries: the best-ranked first, then unranked rows (calibration
    references, partial entries) in board order when fewer than ``k`` are ranked."""
    ranked = sorted((r for r in rows if r.get("rank") is not None), key=lambda r: r["rank"])
    rest = [r for r in rows if r.get("rank") is None]
    return [r["eval_id"] for r in (ranked + rest)[:max(0, k)]]


def report_data(dash: Dashboard, max_video_mb: float = DEFAULT_MAX_VIDEO_MB, max_paired_evals: int | None = None,
                top_k: int = DEFAULT_TOP_K) -> tuple[dict[str, Any], ReportInfo]:
    """Every payload of the page, with videos embedded; the :class:`ReportInfo` has no path yet."""
    emb = _Embedder(dash, int(max_video_mb * 2**20))
    info = ReportInfo(path=Path(), bytes=0, top_k=top_k)
    overview = dash.overview()
    lb = dash.leaderboard()
    compare: dict[str, Any] = {}
    paired: dict[str, Any] = {}
    suite_ids: dict[tuple[int, str], list[str]] = {}  # every version's top entries: the compare view covers them
    for table in lb["suites"]:
        top = top_entries(table["rows"], top_k)
        suite_ids.setdefault((table["source_id"], table["suite"]), []).extend(top)
        if len(table["rows"]) > len(top):
            info.warnings.append(f"suite {table['suite']} v{table['suite_version']}: videos and paired comparisons "
                                 f"embedded for the top {len(top)} of {len(table['rows'])} entries only "
                                 "(skyloom report --top-k N embeds more; the live dashboard shows them all)")
    for (sid, suite), ids in suite_ids.items():
        if ids:
            compare[f"{sid}|{suite}"] = dash.compare(sid, suite, list(dict.fromkeys(ids)), video_data=emb)
    n_paired = top_k if max_paired_evals is None else min(top_k, max_paired_evals)
    for table in lb["suites"]:
        sid = table["source_id"]
        if not table.get("default", True):  # paired tests: the newest version's entries
            continue
        wanted = [(a, b, m["name"]) for a, b in itertools.permutations(top_entries(table["rows"], n_paired), 2)
                  for m in table["metrics"]]
        for (a, b, m), res in zip(wanted, dash.paired_many(sid, wanted) if wanted else []):
            paired[f"{sid}|{a}|{b}|{m}"] = res
            info.paired += 1
    corpus = dash.corpus(video_data=emb)
    overview["warnings"] = overview["warnings"] + info.warnings
    if emb.omitted:
        overview["warnings"].append(f"{emb.omitted} video(s) not embedded: the {max_video_mb:g} MB video budget "
                                    "was reached (skyloom report --max-video-mb raises it)")
    if emb.missing:
        overview["warnings"].append(f"{emb.missing} video(s) not embedded: missing, or outside the --runs and "
                                    "--corpus folders")
    overview["note"] = f"{emb.embedded} video(s) embedded ({emb.used / 2**20:.1f} MB)"
    info.videos_embedded, info.video_bytes = emb.embedded, emb.used
    info.videos_omitted, info.videos_missing = emb.omitted + emb.missing, emb.missing
    return ({"overview": overview, "leaderboard": lb, "training": dash.training(), "corpus": corpus,
             "compare": compare, "paired": paired,
             "report": {"top_k": top_k, "paired_entries": n_paired, "paired": info.paired}}, info)


def build_report(dash: Dashboard, out: str | os.PathLike, max_video_mb: float = DEFAULT_MAX_VIDEO_MB,
                 max_paired_evals: int | None = None, title: str = "skyloom report",
                 top_k: int = DEFAULT_TOP_K) -> ReportInfo:
    """Write the static report to ``out`` (atomically) and say what went in (:func:`report_data`)."""
    data, info = report_data(dash, max_video_mb=max_video_mb, max_paired_evals=max_paired_evals, top_k=top_k)
    html = render_page(data, title=title, subtitle=" · ".join(str(d) for d in dash.run_dirs))
    path = Path(out)
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(path, html)
    info.path, info.bytes = path, len(html.encode("utf-8"))
    log.info("report %s: %.1f MB, %d video(s) embedded, %d omitted", path, info.bytes / 2**20,
             info.videos_embedded, info.videos_omitted)
    return info
