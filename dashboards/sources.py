"""The dashboard's one view of its inputs: run folders, a results store, corpora.

:class:`Dashboard` builds every payload the pages show (``overview``, ``leaderboard``,
``compare``, ``paired``, ``training``, ``corpus``). The web app serves them as JSON under
``api/<name>``; the static report embeds them in the page. Inputs are re-read on every call,
so a running dashboard shows new checkpoints and evaluations on reload.
"""

from __future__ import annotations

import logging
import os
import time
from pathlib import Path
from typing import Any

from skyloom.dashboards import data, results
from skyloom.dashboards.paths import SafeRoots

log = logging.getLogger(__name__)


class Dashboard:
    """Read-only access to runs, results and corpora for the views.

    Args:
        runs: folders holding runs (or runs themselves); searched 3 levels deep.
        db: SQLAlchemy URL or path of a results store; default: each run's ``results.sqlite``.
        corpora: corpus directories to browse.
        max_clips: clip rows sent per corpus (the summary charts always cover every clip).
    """

    def __init__(self, runs: list[str | os.PathLike] | str | os.PathLike, db: str | None = None,
                 corpora: list[str | os.PathLike] | None = None, max_clips: int = 5000) -> None:
        run_list = [runs] if isinstance(runs, (str, os.PathLike)) else list(runs)
        self.run_dirs = [Path(r).expanduser() for r in run_list]
        self.corpus_dirs = [Path(c).expanduser() for c in (corpora or [])]
        self.db = db
        self.max_clips = max_clips
        self._series_cache: dict = {}  # metrics.jsonl path + mtime + size -> parsed curves
        self._merge_cache = results.MergeCache()  # merged store of several runs' stores
        self.roots = SafeRoots([("run", d) for d in self.run_dirs] + [("corpus", c) for c in self.corpus_dirs])

    # -- inputs (re-read on each call) -------------------------------------------------------
    def _runs(self) -> list:
        return data.discover_runs([d for d in self.run_dirs if d.exists()])

    def _sources(self, warnings: list[str]) -> list[results.ResultSource]:
        return results.open_sources(self.db, self.run_dirs, self._runs(), warnings, self._merge_cache)

    def close(self) -> None:
        """Drop cached state (the merged results store and its temporary file)."""
        self._merge_cache.close()

    def _source(self, source_id: int) -> tuple[results.ResultSource, list[results.ResultSource]]:
        srcs = self._sources([])
        for s in srcs:
            if s.id == source_id:
                return s, srcs
        results.close_sources(srcs)
        raise KeyError(f"no results source {source_id} (have {len(srcs)})")

    # -- payloads ----------------------------------------------------------------------------
    def overview(self) -> dict[str, Any]:
        warnings: list[str] = []
        for d in self.run_dirs:
            if not d.exists():
                warnings.append(f"runs folder {d} does not exist")
        for c in self.corpus_dirs:
            if not (c / "corpus.json").exists():
                warnings.append(f"{c} is not a skyloom corpus (no corpus.json)")
        runs = self._runs()
        srcs = self._sources(warnings)
        try:
            suites = sorted({e["suite"] for s in srcs for e in s.store.evals()})
        except results.STORE_ERRORS as e:
            warnings.append(f"cannot list evaluations: {e}")
            suites = []
        finally:
            results.close_sources(srcs)
        return {"generated_at": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
                "runs": [{"name": r.name, "path": str(r.root)} for r in runs],
                "stores": [s.label for s in srcs], "suites": suites,
                "corpora": [{"name": c.name, "path": str(c)} for c in self.corpus_dirs], "warnings": warnings}

    def leaderboard(self) -> dict[str, Any]:
        warnings: list[str] = []
        srcs = self._sources(warnings)
        try:
            suites = results.leaderboards(srcs, warnings)
        finally:
            results.close_sources(srcs)
        note = "" if srcs else "No results store found (no results.sqlite in the runs; pass --db URL for a shared one)."
        return {"suites": suites, "warnings": warnings, "note": note}

    def compare(self, source_id: int, suite: str, eval_ids: list[str], video_data: Any = None) -> dict[str, Any]:
        src, srcs = self._source(source_id)
        try:
            return results.compare(src, suite, eval_ids, self.roots, video_data=video_data)
        finally:
            results.close_sources(srcs)

    def paired(self, source_id: int, a: str, b: str, metric: str) -> dict[str, Any]:
        src, srcs = self._source(source_id)
        try:
            return results.paired(src, a, b, metric)
        finally:
            results.close_sources(srcs)

    def training(self) -> dict[str, Any]:
        runs = self._runs()
        out = data.training_data(runs, cache=self._series_cache)
        srcs = self._sources([])
        try:
            stored = results.eval_series(srcs)
        finally:
            results.close_sources(srcs)
        by_name = {r["name"]: r for r in out["runs"]}
        for run_name, series in stored.items():
            entry = by_name.get(run_name)
            if entry is None:  # evaluated checkpoints of a run that is not under --runs
                entry = {"name": run_name, "path": "(results store only)", "checkpoints": [], "series": {},
                         "created_at": "", "preset": "", "corpus": ""}
                out["runs"].append(entry)
                by_name[run_name] = entry
            entry["series"].setdefault("eval", {}).update(series)
        return out

    def corpus(self, video_data: Any = None) -> dict[str, Any]:
        out = []
        for c in self.corpus_dirs:
            payload = data.corpus_data(c, self.roots, max_clips=self.max_clips)
            if video_data is not None:
                for clip in payload["clips"]:
                    clip["url"], clip["note"] = video_data(str(c / clip["path"]), c)
            out.append(payload)
        return {"corpora": out}
