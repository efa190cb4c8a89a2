"""Evaluation results for the dashboard, read through :mod:`skyloom.eval.results.store` and
:mod:`skyloom.eval.results.stats`.

A *result source* is one results store: ``--db URL`` when given, else the ``results.sqlite`` of
the run directories (and of the ``--runs`` folder itself), merged into one in-memory store
(``ResultsStore.merged``) when there are several, so that checkpoints of different runs share
one leaderboard, as in ``skyloom leaderboard --runs``. SQLite files that do not exist are never
created: the dashboard only reads.
"""

from __future__ import annotations

import logging
import tempfile
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy.exc import SQLAlchemyError

from skyloom.dashboards.data import MAX_LISTED
from skyloom.dashboards.paths import SafeRoots
from skyloom.rundir import RESULTS_DB, EvalDir, RunDir, locate_store, run_of_checkpoint

log = logging.getLogger(__name__)

# What opening or reading a store can raise: bad URL / newer schema (StoreError is a ValueError),
# unreadable file, missing database driver, corrupt or unreachable database.
STORE_ERRORS = (ValueError, OSError, ImportError, SQLAlchemyError)


@dataclass
class ResultSource:
    """One results store and where it came from."""

    id: int
    label: str
    url: str
    store: Any  # eval.store.ResultsStore (imported lazily)
    run_root: Path | None  # the run directory holding this store, if any
    owned: bool = True  # False: a cached store that close_sources must leave open
    # Where this source's evaluations may live, as found now (a merged source: every merged run's
    # folder; an `--out` store: its own folder). Videos are looked up there first, so a runs folder
    # that was moved or copied still shows its own videos, not those at the old absolute paths.
    roots: tuple[Path, ...] = ()


class MergeCache:
    """The merged store of several runs' stores, rebuilt only when one of them changes.

    Merging copies every row, which costs seconds for large stores; the dashboard would pay it
    on every request. The merge goes into a private temporary SQLite file (never next to the
    user's data) that is reused until a source file (database or its WAL) changes size or mtime.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._dir: tempfile.TemporaryDirectory | None = None
        self._key: tuple | None = None
        self._store: Any = None
        self._gen = 0

    @staticmethod
    def _stamp(url: str) -> tuple:
        from skyloom.eval.results.aggregate import sqlite_stamp

        p = _sqlite_path(url)
        return (url, *sqlite_stamp(p)) if p is not None else (url,)

    def get(self, targets: list[str]) -> Any:
        """The merged store of ``targets`` (SQLAlchemy URLs), from the cache when unchanged."""
        from skyloom.eval.results.store import ResultsStore

        key = tuple(self._stamp(t) for t in targets)
        with self._lock:
            if key != self._key:
                if self._dir is None:
                    self._dir = tempfile.TemporaryDirectory(prefix="skyloom-dashboard-")
                self._gen += 1
                merged = ResultsStore(Path(self._dir.name) / f"merged-{self._gen}.sqlite")
                for t in targets:
                    src = ResultsStore(t)
                    try:
                        src.copy_into(merged)
                    finally:
                        src.close()
                old, self._store, self._key = self._store, merged, key
                if old is not None:
                    old.close()
            return self._store

    def close(self) -> None:
        with self._lock:
            if self._store is not None:
                self._store.close()
            if self._dir is not None:
                self._dir.cleanup()
            self._store = self._dir = self._key = None


def _sqlite_path(url: str) -> Path | None:
    if url.startswith("sqlite:///"):
        return Path(url[len("sqlite:///"):].split("?", 1)[0])
    if "://" not in url:
        p = Path(url)
        return p / RESULTS_DB if p.is_dir() else p
    return None


def open_sources(db: str | None, run_dirs: list[Path], runs: list[RunDir], warnings: list[str],
                 merge_cache: MergeCache | None = None) -> list[ResultSource]:
    """Open the results stores to show; problems become ``warnings`` instead of errors.

    Several run stores (and no ``db``) are merged into one source, through ``merge_cache`` when
    given (reused across calls), else with ``ResultsStore.merged`` each time.
    """
    try:
        from skyloom.eval.results.store import ResultsStore, safe_url
    except ImportError as e:  # eval not installed in this checkout
        warnings.append(f"results store unavailable ({e}); leaderboard and compare views are empty")
        return []
    cands: list[tuple[str, str, Path | None]] = []
    if db:
        cands.append((safe_url(db), db, None))  # the label is shown on the page: no password
    else:  # where every command finds stores (skyloom.rundir.locate_store): each run's, and each folder's own
        run_of = {r.results_store.resolve(): r for r in runs}
        own, of_runs = [], []
        for d in run_dirs:
            for target in locate_store(runs=d, existing=True):
                r = run_of.get(Path(target).resolve())
                if r is not None:
                    of_runs.append((r.name, target, r.root))
                else:
                    own.append((d.name or str(d), target, d))
        cands = own + of_runs
    out: list[ResultSource] = []
    seen: set[str] = set()
    for label, target, run_root in cands:
        sp = _sqlite_path(target)
        key = str(sp.resolve()) if sp is not None else target
        if key in seen:
            continue
        seen.add(key)
        if sp is not None and not sp.is_file():
            warnings.append(f"results database {sp} does not exist (nothing evaluated yet?)")
            continue
        try:
            store = ResultsStore(target)
        except STORE_ERRORS as e:
            warnings.append(f"cannot open results store {target}: {e}")
            continue
        is_run = run_root is not None and (run_root / "run.json").exists()
        # An evaluation's videos may sit in another run than its store (one store, several runs).
        everywhere = tuple(dict.fromkeys([*([run_root] if run_root else []), *(r.root for r in runs), *run_dirs]))
        out.append(ResultSource(len(out), label, str(store.url), store, run_root if is_run else None,
                                roots=everywhere))
    if not db and len(out) > 1 and hasattr(ResultsStore, "merged"):
        # One leaderboard across runs, as `skyloom leaderboard --runs DIR` shows it.
        targets = [s.url for s in out]
        close_sources(out)
        cached = merge_cache is not None and hasattr(ResultsStore, "copy_into")
        try:
            merged = merge_cache.get(targets) if cached else ResultsStore.merged(targets)
        except STORE_ERRORS as e:
            warnings.append(f"cannot merge the results stores of the runs: {e}")
            return []
        roots = tuple(dict.fromkeys(r for s in out for r in s.roots))
        return [ResultSource(0, f"{len(targets)} runs", "merged:" + ",".join(targets), merged, None, owned=not cached,
                             roots=roots)]
    return out


def _score_map(store: Any, eval_ids: list[str]) -> tuple[dict[str, dict[str, dict[str, Any]]], dict[str, Any]]:
    from skyloom.eval.results.aggregate import score_rows

    by_eval: dict[str, dict[str, dict[str, Any]]] = {}
    hib: dict[str, Any] = {}
    for s in score_rows(store, eval_ids):  # one query, without the details the table does not show
        by_eval.setdefault(s["eval_id"], {})[s["metric"]] = {
            k: s.get(k) for k in ("value", "stderr", "ci_low", "ci_high", "n", "extractor", "metric_version")}
        if hib.get(s["metric"]) is None:
            hib[s["metric"]] = s.get("higher_is_better")
    return by_eval, hib


def board_cache() -> Any:
    """A :class:`skyloom.eval.results.aggregate.BoardCache` for a dashboard's life, or None without eval."""
    try:
        from skyloom.eval.results.aggregate import BoardCache
    except ImportError:
        return None
    return BoardCache()


MAX_VERSIONS = 8  # suite versions offered by the page's version picker (newest first)


def leaderboards(sources: list[ResultSource], warnings: list[str], cache: Any = None) -> list[dict[str, Any]]:
    """One table per (source, suite, suite version): leaderboard rows with every metric's CI.

    Each row carries ``kind`` (model | submission | calibration: calibration rows have no rank),
    ``meta`` (a submission's who/model/date/settings), ``coverage``/``partial`` (partial entries are
    unranked) and ``breakdown`` (total, per category, per metric; :mod:`skyloom.eval.results.boards`);
    each table carries ``suite_version``, ``versions`` (every version of the suite with its entry
    count, for the page's version picker), ``default`` (the newest version: shown first),
    ``flags``, ``flagged``, ``total_flags``, ``correction``, ``categories`` and the breakdown's definition.

    ``cache`` (a :class:`skyloom.eval.results.aggregate.BoardCache`): a source's tables are computed once per
    state of its store (:func:`skyloom.eval.results.aggregate.store_stamp`) and reused until it changes.
    """
    out = []
    for src in sources:
        local: list[str] = []
        tables = None
        if cache is not None:
            try:
                tables, local = cache.get(src.store, "leaderboards", lambda src=src: _source_tables(src))
            except STORE_ERRORS as e:  # the stamp itself unreadable: compute without the cache
                log.debug("%s: board cache unavailable (%s)", src.label, e)
        if tables is None:
            tables, local = _source_tables(src)
        warnings.extend(local)
        for table in tables:
            out.append({**table, "source_id": src.id, "source": src.label if len(sources) > 1 else ""})
    return out


def _source_tables(src: ResultSource) -> tuple[list[dict[str, Any]], list[str]]:
    """Every table of one source, and the warnings met making them."""
    from skyloom.eval.results.aggregate import eval_rows
    from skyloom.eval.results.boards import board
    from skyloom.eval.results.stats import primary_metric, suite_versions

    warnings: list[str] = []
    out: list[dict[str, Any]] = []
    try:
        suites = sorted({e["suite"] for e in eval_rows(src.store)})
    except STORE_ERRORS as e:
        warnings.append(f"{src.label}: cannot read evaluations ({e})")
        return out, warnings
    for suite in suites:
        versions = suite_versions(src.store, suite)
        for i, v in enumerate(versions[:MAX_VERSIONS] or [{"version": None}]):
            table = _board_table(src, suite, v["version"], versions, warnings, primary_metric, board)
            if table is not None:
                table["default"] = i == 0
                out.append(table)
    return out, warnings


def _board_table(src: ResultSource, suite: str, version: str | None, versions: list[dict[str, Any]],
                 warnings: list[str], primary_metric: Any, board: Any) -> dict[str, Any] | None:
    try:
        pm = primary_metric(src.store, suite)
        bd = board(src.store, suite, suite_version=version)
        rows = bd["rows"]
    except ValueError as e:
        warnings.append(f"{src.label} / {suite}{' v' + version if version else ''}: {e}")
        return None
    from skyloom.eval.results.aggregate import eval_rows, failure_rows

    all_evals = [e for e in eval_rows(src.store, suite) if version is None or e["suite_version"] == version]
    ids = [r["eval_id"] for r in rows]
    by_eval, hib = _score_map(src.store, ids) if ids else ({}, {})
    metrics = [pm] + sorted(m for m in hib if m != pm)
    table_rows = []
    for r in rows:
        table_rows.append({k: r.get(k) for k in ("rank", "tie_group", "tie_verdict", "eval_id", "checkpoint",
                                                 "checkpoint_name", "run_name", "step", "status", "created_at",
                                                 "failures", "coverage", "partial")}
                          | {"checkpoint_name": r.get("checkpoint_name") or r["eval_id"],
                             "scores": by_eval.get(r["eval_id"], {}), "kind": r.get("kind", "model"),
                             "meta": r.get("meta") or {}, "breakdown": r.get("breakdown")})
    failing = [r["eval_id"] for r in rows if r.get("failures")]
    failures = {eid: [{k: f.get(k) for k in ("item_id", "stage", "reason", "created_at")} for f in fs]
                for eid, fs in failure_rows(src.store, failing, MAX_LISTED).items()}
    skipped = len({e["checkpoint"] or e["eval_id"] for e in all_evals}) - len(rows)
    note = (f"{skipped} checkpoint(s) not shown in this version (evaluation running or failed, or no score for "
            "the primary metric)." if skipped > 0 else "")
    shown = bd.get("suite_version") or version
    others = [f"v{v['version']} ({v['entries']} entries)" for v in versions if v["version"] != shown]
    return {"suite": suite, "suite_version": shown,
            "versions": [{"version": v["version"], "entries": v["entries"]} for v in versions],
            "other_versions": others, "primary_metric": pm,
            "metrics": [{"name": m, "higher_is_better": hib.get(m)} for m in metrics],
            "rows": table_rows, "failures": failures, "note": note,
            "flags": bd.get("flags", {}), "flagged": bd.get("flagged", []), "total_flags": bd.get("total_flags", []),
            "correction": bd.get("correction", ""), "categories": bd.get("categories", []),
            "breakdown": {k: bd.get(k) for k in ("weights", "normalise", "low", "high", "note")}}


def _eval_folder(ev: dict[str, Any], src: ResultSource) -> EvalDir | None:
    """The evaluation's own folder as it is on disk now (:meth:`skyloom.rundir.EvalDir.find`), searched in
    the source's folders."""
    return EvalDir.find((*src.roots, *([src.run_root] if src.run_root else [])), ev["suite"], ev["eval_id"])


def eval_video_dir(ev: dict[str, Any], src: ResultSource) -> Path | None:
    """The evaluation's own ``videos/`` folder as it is on disk now (``RUN/eval/<suite>/<eval_id>/videos``,
    or ``OUT/<suite>/<eval_id>/videos`` for ``skyloom eval --out OUT``), searched in the source's folders."""
    own = _eval_folder(ev, src)
    return own.videos if own is not None else None


def _run_videos(run_root: Path | None, suite: str, eval_id: str) -> EvalDir | None:
    """The evaluation's folder in a run directory, ``RUN/eval/<suite>/<eval_id>`` (the run contract)."""
    return EvalDir.of_run(run_root, suite, eval_id) if run_root is not None else None


def _run_root_of(ev: dict[str, Any], src: ResultSource) -> Path | None:
    own = _eval_folder(ev, src)
    if own is not None:  # RUN/eval/<suite>/<id> -> RUN (or OUT/<suite>/<id> -> OUT)
        return own.owner
    ck = ev.get("checkpoint")
    if ck:
        try:
            r = run_of_checkpoint(ck)
        except (OSError, ValueError):
            r = None
        if r is not None:
            return r.root
    return src.run_root


def item_videos(src: ResultSource, ev: dict[str, Any]) -> dict[str, Path]:
    """``{item_id: video file}`` of one stored evaluation, found as :func:`compare` finds them."""
    run_root = _run_root_of(ev, src)
    conv = _run_videos(run_root, ev["suite"], ev["eval_id"])
    out: dict[str, Path] = {}
    if conv is not None and conv.videos.is_dir():
        out.update({f.stem: f for f in sorted(conv.videos.glob("*.mp4"))})
    for row in src.store.items(ev["eval_id"]):
        vp = row.get("video_path")
        if vp and row["item_id"] not in out:
            p = stored_video(vp, src, run_root)
            if p is not None and p.is_file():
                out[row["item_id"]] = p
    return out


def stored_video(stored: str, src: ResultSource, run_root: Path | None = None) -> Path | None:
    """The file a stored ``video_path`` names now: an absolute one (written by old versions) as is; a relative
    one (relative to its store's folder: the run, or the folder an ``--out`` store sits in) from the first of
    the evaluation's run, the store's folder and the source's folders that holds it."""
    p = Path(stored)
    if p.is_absolute():
        return p
    folder = getattr(src.store, "folder", None)
    bases = [b for b in (run_root, folder, *src.roots, src.run_root) if b is not None]
    for base in dict.fromkeys(bases):
        if (base / p).is_file():
            return base / p
    return None


def compare(src: ResultSource, suite: str, eval_ids: list[str], roots: SafeRoots,
            video_data: Any = None) -> dict[str, Any]:
    """Items of ``eval_ids`` side by side: per item id the prompt and, per eval, video URL + scores.

    ``video_data(path) -> (url | None, note)`` replaces the URL scheme (the static report embeds
    files as data URLs); by default files are linked through ``files/<root>/<relpath>``.
    """
    from skyloom.eval.results.store import StoreError

    evals, items = [], {}
    for eid in eval_ids:
        try:
            ev = src.store.get_eval(eid)
        except StoreError as e:
            raise KeyError(str(e)) from None
        if ev["suite"] != suite:
            raise KeyError(f"evaluation {eid!r} belongs to suite {ev['suite']!r}, not {suite!r}")
        label = ev.get("checkpoint_name") or eid
        if ev.get("run_name") and ev["run_name"] not in label:
            label = f"{ev['run_name']}/{label}"
        evals.append({"eval_id": eid, "label": label, "run_name": ev.get("run_name"), "step": ev.get("step")})
        run_root = _run_root_of(ev, src)
        video_dir = eval_video_dir(ev, src)
        if video_dir is None and run_root is not None:
            video_dir = _run_videos(run_root, suite, eid).videos
        for row in src.store.items(eid):
            it = items.setdefault(row["item_id"], {"item_id": row["item_id"], "prompt": row.get("prompt"),
                                                    "category": row.get("category"), "seed": row.get("seed"),
                                                    "videos": {}})
            for k in ("prompt", "category", "seed"):
                if it[k] is None and row.get(k) is not None:
                    it[k] = row[k]
            cell = it["videos"].setdefault(eid, {"scores": {}, "path": None})
            cell["scores"][row["metric"]] = row.get("value")
            if row.get("video_path") and cell["path"] is None:
                cell["path"] = _video_of(row, video_dir, run_root, src)
        # Videos with no per-item row (suites scored only by set-level metrics such as FVD).
        if video_dir is not None and video_dir.is_dir():
            for f in sorted(video_dir.glob("*.mp4")):
                it = items.setdefault(f.stem, {"item_id": f.stem, "prompt": None, "category": None, "seed": None,
                                               "videos": {}})
                it["videos"].setdefault(eid, {"scores": {}, "path": str(f)})
        for it in items.values():
            cell = it["videos"].get(eid)
            if cell is None:
                continue
            path = cell.pop("path", None)
            if path is None and run_root is not None:
                conv = _run_videos(run_root, suite, eid).video(it["item_id"])
                path = str(conv) if conv.is_file() else None
            if path is None:
                cell["url"], cell["note"] = None, "no video recorded"
            elif video_data is not None:
                cell["url"], cell["note"] = video_data(path, run_root)
            else:
                cell["url"] = roots.url(path, prefer=run_root)
                cell["note"] = None if cell["url"] else "video outside the configured directories or missing"
    ordered = sorted(items.values(), key=lambda it: (it.get("category") or "", it["item_id"]))
    metrics = sorted({m for it in ordered for v in it["videos"].values() for m in v["scores"]})
    return {"source_id": src.id, "suite": suite, "evals": evals, "metrics": metrics, "items": ordered}


def _video_of(row: dict[str, Any], video_dir: Path | None, run_root: Path | None, src: ResultSource) -> str:
    """Where an item's video is now: in the evaluation's own folder first (a moved or copied run),
    else the stored path (:func:`stored_video`)."""
    if video_dir is not None:
        own = video_dir / f"{row['item_id']}.mp4"
        if own.is_file():
            return str(own)
    found = stored_video(row["video_path"], src, run_root)
    if found is not None:
        return str(found)
    stored = Path(row["video_path"])  # recorded but not on disk: where it should be, so the note says "missing"
    return str(stored if stored.is_absolute() or run_root is None else run_root / stored)


def paired(src: ResultSource, a: str, b: str, metric: str, cache: Any = None) -> dict[str, Any]:
    """:func:`skyloom.eval.results.stats.paired_compare` of B against A, or ``{"error": ...}``.

    The verdict is eval's, as ``skyloom compare`` prints it: ``verdict`` (``"a"``, ``"b"``, ``"tie"``,
    ``"too few items"`` or None, :func:`skyloom.eval.results.inference.verdict`) and ``verdict_label``, its
    words with the entries' names (:func:`skyloom.eval.results.stats.verdict_label`); ``suite_version_a``/``_b``
    name the suite versions of A and B. The page shows them; it decides nothing. With ``cache`` (a
    :class:`skyloom.eval.results.aggregate.BoardCache`) a comparison is computed once per state of the store.
    """
    if cache is not None:
        try:
            return cache.get(src.store, ("paired", a, b, metric), lambda: _paired(src, a, b, metric))
        except STORE_ERRORS as e:
            log.debug("%s: paired cache unavailable (%s)", src.label, e)
    return _paired(src, a, b, metric)


def _paired(src: ResultSource, a: str, b: str, metric: str) -> dict[str, Any]:
    from skyloom.eval.results.stats import paired_compare, verdict_label

    try:
        cmp = paired_compare(src.store, a, b, metric)
        out = cmp.to_dict()
        ea, eb = src.store.get_eval(a), src.store.get_eval(b)
        out["suite_version_a"], out["suite_version_b"] = ea["suite_version"], eb["suite_version"]
    except (ValueError, KeyError) as e:
        return {"error": str(e), "eval_a": a, "eval_b": b, "metric": metric}
    out["verdict_label"] = verdict_label(out.get("verdict"), ea.get("checkpoint_name") or a,
                                         eb.get("checkpoint_name") or b)
    return out


def eval_series(sources: list[ResultSource]) -> dict[str, dict[str, list[list[float]]]]:
    """``{run_name: {"<suite>/<metric>": [[step, value], ...]}}`` from stored evaluations with a step."""
    out: dict[str, dict[str, dict[int, float]]] = {}
    for src in sources:
        try:
            evs = [e for e in src.store.evals()
                   if e.get("step") is not None and e.get("status") in ("complete", "partial")]
            scores = src.store.scores(eval_ids=[e["eval_id"] for e in evs]) if evs else []
        except STORE_ERRORS as e:
            log.warning("%s: %s", src.label, e)
            continue
        by_id = {e["eval_id"]: e for e in evs}
        for s in scores:
            e = by_id[s["eval_id"]]
            if s.get("value") is None:
                continue
            run = e.get("run_name") or (Path(e["checkpoint"]).parent.parent.name if e.get("checkpoint") else src.label)
            out.setdefault(run, {}).setdefault(f"{e['suite']}/{s['metric']}", {})[int(e["step"])] = float(s["value"])
    return {r: {k: [[st, v] for st, v in sorted(pts.items())] for k, pts in ms.items()} for r, ms in out.items()}


def close_sources(sources: list[ResultSource]) -> None:
    for s in sources:
        if not s.owned:
            continue
        try:
            s.store.close()
        except STORE_ERRORS as e:  # best effort
            log.debug("closing %s: %s", s.label, e)


__all__ = ["MergeCache", "ResultSource", "board_cache", "close_sources", "compare", "eval_series", "item_videos",
           "leaderboards", "open_sources", "paired"]
