"""The dashboard's one view of its inputs: run folders, a results store, corpora.

:class:`Dashboard` builds every payload the pages show (``overview``, ``leaderboard``,
``compare``, ``paired``, ``training``, ``corpus``, ``clip``, ``physics``, ``checkpoints``). The
web app serves them as JSON under ``api/<name>``; the static report embeds them in the page.
Inputs are re-read on every call, and :meth:`Dashboard.stamp` fingerprints them so that an open
page refreshes itself when a run trains or an evaluation writes.

The only things the dashboard writes are its own cache (``cache_dir``): the simulator's
reference videos of physics suites and the prompt box's samples, made one at a time by a
:class:`~skyloom.dashboards.jobs.JobQueue`.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from skyloom.corpus import Corpus, CorpusError
from skyloom.dashboards import data, results
from skyloom.dashboards.jobs import JobQueue
from skyloom.dashboards.paths import SafeRoots
from skyloom.dashboards.physics import PhysicsRefs, physics_spec, shown_probes
from skyloom.dashboards.sampling import SampleError, Sampler, list_checkpoints, parse_request, sample_key
from skyloom.rundir import RESULTS_DB

log = logging.getLogger(__name__)


IDS_CACHED = 8  # id columns of (corpus, filters) kept for api/corpus/clips pages (~20 MB each at 1M clips)


class Dashboard:
    """Read-only access to runs, results and corpora for the views.

    Args:
        runs: folders holding runs (or runs themselves); searched 3 levels deep.
        db: SQLAlchemy URL or path of a results store; default: each run's ``results.sqlite``.
        corpora: corpus directories to browse.
        max_clips: clip rows sent per corpus (the summary charts always cover every clip).
        cache_dir: where reference videos and prompt-box samples are kept (default
            ``$SKYLOOM_DASHBOARD_CACHE`` or ``~/.cache/skyloom/dashboard``).
        pipeline_loader: ``(checkpoint, device=) -> pipeline`` for the prompt box (default
            :func:`skyloom.model.load_pipeline`).
        device: where the prompt box samples (``cpu``, ``cuda``).
    """

    def __init__(self, runs: list[str | os.PathLike] | str | os.PathLike, db: str | None = None,
                 corpora: list[str | os.PathLike] | None = None, max_clips: int = 5000,
                 cache_dir: str | os.PathLike | None = None, pipeline_loader: Callable[..., Any] | None = None,
                 device: str = "cpu") -> None:
        run_list = [runs] if isinstance(runs, (str, os.PathLike)) else list(runs)
        # Absolute from here on: a relative --runs is the user's working directory's, and every path found under
        # it (videos, checkpoints) is located against the configured roots.
        self.run_dirs = [Path(r).expanduser().absolute() for r in run_list]
        self.corpus_dirs = [Path(c).expanduser().absolute() for c in (corpora or [])]
        self.db = db
        self._stamp_store: Any = None  # the --db store kept open for stamp() when it is a database server
        self._stamp_lock = threading.Lock()
        self.max_clips = max_clips
        self.cache_dir = Path(cache_dir).expanduser() if cache_dir is not None else default_cache_dir()
        self._series_cache: dict = {}  # metrics.jsonl path + mtime + size -> parsed curves
        self._merge_cache = results.MergeCache()  # merged store of several runs' stores
        self._boards = results.board_cache()  # boards and paired tests per store state (aggregate.BoardCache)
        self._corpus_cache: dict[Path, tuple[str, dict[str, Any]]] = {}  # corpus -> (its stamp, payload)
        self._ids_cache: dict[tuple, tuple[str, Any]] = {}  # (corpus, split, source kind) -> (stamp, id column)
        self.roots = SafeRoots([("run", d) for d in self.run_dirs] + [("corpus", c) for c in self.corpus_dirs]
                               + [("cache", self.cache_dir)])
        self.jobs = JobQueue()
        self._physics = PhysicsRefs(self.cache_dir, self.jobs)
        self._sampler = Sampler(self.cache_dir, loader=pipeline_loader, device=device)

    # -- inputs (re-read on each call) -------------------------------------------------------
    def _runs(self) -> list:
        return data.discover_runs([d for d in self.run_dirs if d.exists()])

    def _sources(self, warnings: list[str]) -> list[results.ResultSource]:
        return results.open_sources(self.db, self.run_dirs, self._runs(), warnings, self._merge_cache)

    def _db_stamp(self) -> tuple:
        """:meth:`ResultsStore.stamp` of a ``--db`` server store, through one store kept open for it."""
        with self._stamp_lock:
            try:
                if self._stamp_store is None:
                    from skyloom.eval.results.store import ResultsStore

                    self._stamp_store = ResultsStore(self.db)
                return self._stamp_store.stamp()
            except results.STORE_ERRORS as e:  # unreachable now: the views say why
                return ("unavailable", type(e).__name__)

    def close(self) -> None:
        """Drop cached state (the merged results store and its temporary file) and stop the job thread."""
        with self._stamp_lock:
            if self._stamp_store is not None:
                self._stamp_store.close()
                self._stamp_store = None
        self.jobs.close()
        self._sampler.close()
        self._merge_cache.close()
        if self._boards is not None:
            self._boards.clear()

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
            suites = results.leaderboards(srcs, warnings, self._boards)
        finally:
            results.close_sources(srcs)
        note = "" if srcs else "No results store found (no results.sqlite in the runs; pass --db URL for a shared one)."
        return {"suites": suites, "warnings": warnings, "note": note}

    def compare(self, source_id: int, suite: str, eval_ids: list[str], video_data: Any = None) -> dict[str, Any]:
        """Items side by side (:func:`results.compare`) and ``fps``, the frame rate the player steps by."""
        src, srcs = self._source(source_id)
        try:
            out = results.compare(src, suite, eval_ids, self.roots, video_data=video_data)
            out["fps"] = self._video_fps(src, eval_ids)
            return out
        finally:
            results.close_sources(srcs)

    @staticmethod
    def _video_fps(src: results.ResultSource, eval_ids: list[str]) -> float | None:
        """Frame rate of the first readable video of the evaluations (their videos share it), or None."""
        from skyloom.video import VideoError, probe_video

        for eid in eval_ids:
            try:
                videos = results.item_videos(src, src.store.get_eval(eid))
            except (ValueError, KeyError, OSError):
                continue
            for v in list(videos.values())[:1]:
                try:
                    return float(probe_video(v).fps)
                except (VideoError, OSError, ValueError) as e:
                    log.debug("fps of %s: %s", v, e)
        return None

    def paired(self, source_id: int, a: str, b: str, metric: str) -> dict[str, Any]:
        src, srcs = self._source(source_id)
        try:
            return results.paired(src, a, b, metric, self._boards)
        finally:
            results.close_sources(srcs)

    def paired_many(self, source_id: int, requests: list[tuple[str, str, str]]) -> list[dict[str, Any]]:
        """:meth:`paired` of each ``(a, b, metric)``, the store opened once (the static report's many pairs)."""
        src, srcs = self._source(source_id)
        try:
            return [results.paired(src, a, b, metric, self._boards) for a, b, metric in requests]
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

    def _corpus_stamp(self, c: Path) -> str:
        """What a corpus payload depends on: the manifest's :meth:`Corpus.stamp`, the quarantine and
        the curation files (``stat`` calls only)."""
        from skyloom.datagen.curate.store import TABLES  # the curation files

        h = hashlib.sha1()
        try:
            h.update(Corpus(c).stamp().encode())
        except (CorpusError, OSError, ValueError) as e:  # not (yet) a corpus: the payload says why
            h.update(f"error:{e}".encode())
        for name in ("corpus.json", "quarantine.jsonl", *TABLES):
            try:
                st = (c / name).stat()
                h.update(f"{name}|{st.st_mtime_ns}|{st.st_size}\n".encode())
            except OSError:
                h.update(f"{name}|-\n".encode())
        return h.hexdigest()

    def corpus(self, video_data: Any = None) -> dict[str, Any]:
        """Every corpus's payload (:func:`data.corpus_data`), rebuilt only when its stamp changed."""
        out = []
        for c in self.corpus_dirs:
            stamp = self._corpus_stamp(c)
            hit = self._corpus_cache.get(c)
            if hit is None or hit[0] != stamp:
                hit = self._corpus_cache[c] = (stamp, data.corpus_data(c, self.roots, max_clips=self.max_clips))
            payload = {**hit[1], "clips": [dict(x) for x in hit[1]["clips"]]}  # callers may rewrite urls
            if video_data is not None:
                for clip in payload["clips"]:
                    clip["url"], clip["note"] = video_data(str(c / clip["path"]), c)
            out.append(payload)
        return {"corpora": out}

    def corpus_clips(self, corpus_id: int, offset: int = 0, limit: int = 100, split: str | None = None,
                     source_kind: str | None = None) -> dict[str, Any]:
        """A page of one corpus's clip rows (by id), optionally of one split / source kind."""
        root = self._corpus_root(corpus_id)
        try:
            c = Corpus(root)
            key, stamp = (root, split, source_kind), c.stamp()
            hit = self._ids_cache.get(key)
            if hit is None or hit[0] != stamp:  # the id column of these filters, read once per manifest change
                filters = {k: v for k, v in (("split", split), ("source_kind", source_kind)) if v}
                hit = (stamp, c.scan([], **filters).column("id"))
                self._ids_cache.pop(key, None)
                self._ids_cache[key] = hit
                while len(self._ids_cache) > IDS_CACHED:
                    self._ids_cache.pop(next(iter(self._ids_cache)))
            clips, total = data.clip_rows(c, self.roots, offset, limit, ids=hit[1])
        except (CorpusError, OSError) as e:
            raise KeyError(f"corpus {corpus_id}: {e}") from None
        return {"corpus": corpus_id, "offset": offset, "limit": limit, "total": total, "clips": clips}

    # -- live refresh ------------------------------------------------------------------------
    def stamp(self) -> dict[str, Any]:
        """A fingerprint of everything the views read; it changes when a run, store or corpus does.

        Size and mtime of each run's ``metrics.jsonl``, ``results.sqlite`` (+ WAL) and checkpoint
        folder, of the ``--db`` file, and of each corpus's manifest files: cheap ``stat`` calls.
        """
        h = hashlib.sha1()

        def add(p: Path) -> None:
            try:
                st = p.stat()
                h.update(f"{p}|{st.st_mtime_ns}|{st.st_size}\n".encode())
            except OSError:
                h.update(f"{p}|-\n".encode())

        runs = self._runs()
        for r in runs:
            for p in (r.metrics_path, r.results_store, Path(f"{r.results_store}-wal"), r.root / "checkpoints"):
                add(p)
        for d in self.run_dirs:
            add(d)
            own = d / RESULTS_DB  # the folder's own store (skyloom.rundir.locate_store)
            add(own)
            add(Path(f"{own}-wal"))
        if self.db:
            sp = results._sqlite_path(self.db)
            if sp is not None:
                add(sp)
                add(Path(f"{sp}-wal"))
            else:  # a database server: its own change counters (ResultsStore.stamp)
                h.update(f"{self._db_stamp()}\n".encode())
        for c in self.corpus_dirs:
            h.update(f"{c}|{self._corpus_stamp(c)}\n".encode())
        return {"stamp": h.hexdigest(), "runs": len(runs)}

    # -- corpus clip inspector ---------------------------------------------------------------
    def _corpus_root(self, corpus_id: int) -> Path:
        if not 0 <= corpus_id < len(self.corpus_dirs):
            raise KeyError(f"no corpus {corpus_id} (have {len(self.corpus_dirs)})")
        return self.corpus_dirs[corpus_id]

    def clip(self, corpus_id: int, clip_id: str) -> dict[str, Any]:
        """:func:`skyloom.dashboards.groundtruth.clip_detail` of one clip (KeyError: no such corpus or clip)."""
        from skyloom.dashboards.groundtruth import clip_detail

        return clip_detail(self._corpus_root(corpus_id), clip_id, self.roots)

    def segmentation(self, corpus_id: int, clip_id: str) -> bytes:
        """PNG atlas of a clip's segmentation masks (KeyError: none)."""
        from skyloom.dashboards.groundtruth import segmentation_atlas

        return segmentation_atlas(self._corpus_root(corpus_id), clip_id)

    # -- physics suites: the simulator beside the model ------------------------------------------
    def physics(self, source_id: int, suite: str, eval_ids: list[str]) -> dict[str, Any]:
        """Reference videos (given frames, simulator, perturbed re-simulation) and per-scene numbers.

        Rendering is queued on first request; items say ``status`` (queued, running, done,
        error) until their videos exist. Suites without probe scenes answer ``{"items": {}}``.
        """
        from skyloom.eval.results.store import StoreError

        src, srcs = self._source(source_id)
        try:
            evs = []
            for eid in eval_ids:
                try:
                    evs.append(src.store.get_eval(eid))
                except StoreError as e:
                    raise KeyError(str(e)) from None
            ph = next((p for p in (physics_spec(e) for e in evs if e["suite"] == suite) if p is not None), None)
            if ph is None:
                return {"suite": suite, "items": {}}
            videos = {e["eval_id"]: results.item_videos(src, e) for e in evs}
        finally:
            results.close_sources(srcs)
        specs = shown_probes(self._physics.specs(ph), [e for e in evs if e["suite"] == suite], ph.num_scenes)
        items: dict[str, Any] = {}
        for iid, spec in specs.items():
            key, dest, st = self._physics.ensure(iid, spec, ph)
            entry: dict[str, Any] = {"status": st["status"], "error": st.get("error"), "position": st.get("position")}
            if st["status"] == "done":
                nums = json.loads((dest / "numbers.json").read_text())
                entry.update({name: self.roots.url(dest / f"{name}.mp4")
                              for name in ("given", "simulator", "perturbed")})
                entry["variance"] = nums["variance"]
                entry["numbers"] = {eid: self._physics.numbers(v[iid], dest, key, ph.cond_frames)
                                    for eid, v in videos.items() if iid in v}
            items[iid] = entry
        return {"suite": suite, "cond_frames": ph.cond_frames, "perturb_scale": ph.perturb_scale,
                "preset": ph.preset, "items": items}

    # -- the prompt box ------------------------------------------------------------------------
    def checkpoints(self) -> dict[str, Any]:
        """Checkpoints the prompt box can sample (complete ones of the runs under ``--runs``)."""
        return {"checkpoints": [{k: v for k, v in c.items() if k != "path"} for c in list_checkpoints(self._runs())],
                "device": self._sampler.device}

    def sample(self, body: Any) -> dict[str, Any]:
        """Queue one sampling job per requested checkpoint (cache hits are done at once).

        Raises:
            SampleError: a bad request (unknown checkpoint, empty prompt, bad number or image).
            skyloom.dashboards.jobs.QueueFull: too many jobs waiting.
        """
        ids, req, image = parse_request(body)
        known = {c["id"]: c for c in list_checkpoints(self._runs())}
        missing = [i for i in ids if i not in known]
        if missing:
            raise SampleError(f"checkpoints: unknown {missing}; pick from the list (complete checkpoints under --runs)")
        out = []
        for cid in ids:
            ck: Path = known[cid]["path"]
            key = sample_key(ck, req)
            video = self._sampler.video_path(key)
            self.jobs.submit(f"sample-{key}", "sample", f"{cid}: {req.prompt[:60]}",
                             lambda ck=ck, key=key: self._sampler.run(key, ck, req, image), is_done=video.is_file)
            out.append({"checkpoint": cid, **self.job(f"sample-{key}")})
        return {"jobs": out, "request": {"prompt": req.prompt, "seed": req.seed, "steps": req.steps,
                                         "guidance": req.guidance, "num_frames": req.num_frames,
                                         "image": req.image_sha256 is not None}}

    def job(self, key: str) -> dict[str, Any]:
        """Where job ``key`` stands, with its video URL once done (KeyError: unknown job)."""
        st = self.jobs.status(key)
        if st is None:
            raise KeyError(f"no job {key!r} (the dashboard was restarted? submit again)")
        if st["status"] == "done" and key.startswith("sample-"):
            video = self._sampler.video_path(key[len("sample-"):])
            st["url"] = self.roots.url(video)
            if st["url"] is None:
                st.update(status="error", error="the sample was removed from the cache; submit again")
            else:
                try:
                    st["fps"] = json.loads(video.with_suffix(".json").read_text()).get("fps")
                except (OSError, ValueError):
                    st["fps"] = None
        return st


def default_cache_dir() -> Path:
    """``$SKYLOOM_DASHBOARD_CACHE`` or ``~/.cache/skyloom/dashboard``."""
    return Path(os.environ.get("SKYLOOM_DASHBOARD_CACHE") or Path.home() / ".cache" / "skyloom" / "dashboard")
