"""Scoring stored videos with a suite's metrics, through the feature cache.

Per-item metrics (CLIPSIM, consistency, flickering, warping error, physics) are computed in
small batches and each batch's per-item values are stored at once, so a killed evaluation
resumes with the items not stored yet. The aggregate is the mean over stored items with a
percentile-bootstrap CI (:func:`skyloom.eval.results.stats.bootstrap_ci`); a metric whose value is a
monotone map of the mean (Physics-IQ clips it to [0, 100], CLIPSIM x100 floors it at 0) maps the
CI's bounds the same way, so the stored value always lies in its stored interval.

No silent drops: every item of the metric's subset counts in the score's ``n``. An item with no
video, one that does not decode, or one the metric cannot score (an exception, or a NaN value,
e.g. a Physics-IQ scene with no variance) is a ``failures`` row with its reason and is listed in
the score's ``details`` (``n_scored``, ``n_failed``, ``failed_items``); boards list entries with
fewer scored items than the others as partial, unranked. A NaN that a metric's protocol *means*
(``nan_means``: VBench flickering scores static videos only) is an exclusion, not a failure:
``n_excluded``, ``excluded_items`` and the reason are in the details, and it counts as covered.

Set-level metrics (anything with ``update_features``: FVD, KVD) are recomputed from features
each time: features of generated and reference clips come from the :class:`FeatureCache`,
reached through an alias (file sha256 + how the clip is cut), so a warm cache neither decodes
nor encodes them. Their CI is :func:`skyloom.eval.results.inference.set_interval` (basic bootstrap
over half-samples of both the generated and the reference set, ``set_boot`` resamples, widened to
contain the value).
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from skyloom.config import ConfigError
from skyloom.errors import InvalidInputError
from skyloom.eval.features.cache import CachedExtractor, FeatureCache, array_key
from skyloom.eval.harness.items import PhysicsItem
from skyloom.eval.harness.suites import MetricSpec, Suite
from skyloom.eval.metrics import inputs as dispatch
from skyloom.eval.results.inference import set_interval
from skyloom.eval.results.stats import bootstrap_ci
from skyloom.eval.results.store import ResultsStore
from skyloom.fsutil import sha256_file

logger = logging.getLogger(__name__)


def physics_items(suite: Suite) -> list[PhysicsItem]:
    """Physics-probe items of a suite: rendered ground truth + the first frames to continue from."""
    ph = suite.physics
    if ph.num_scenes <= 0:
        return []
    from skyloom.eval.harness import probes

    return probes.build_items(ph)


def _has_field(cls: Any, name: str) -> bool:
    """Whether a plug-in's ``config_class`` declares the option ``name``."""
    import dataclasses

    config = getattr(cls, "config_class", None)
    if config is None or not dataclasses.is_dataclass(config):
        return False
    return name in {f.name for f in dataclasses.fields(config)}


def resolve_extractor(spec: str) -> Any:
    """An extractor from a spec: ``name``, ``name?key=value&...`` or ``indomain:PATH``."""
    from skyloom.eval.features.base import get_extractor

    name, _, query = spec.partition("?")
    kwargs: dict[str, Any] = {}
    if query:
        import yaml

        for part in query.split("&"):
            k, _, v = part.partition("=")
            kwargs[k] = yaml.safe_load(v)
    return get_extractor(name, **kwargs)


class Scorer:
    """Scores one evaluation's videos with every metric of ``suite``."""

    def __init__(self, suite: Suite, metrics: Any, cache: FeatureCache, *, n_boot: int = 1000, set_boot: int = 200,
                 level: float = 0.95, seed: int = 0, batch: int = 8) -> None:
        self.suite, self.metrics, self.cache = suite, metrics, cache
        self.n_boot, self.set_boot, self.level, self.seed, self.batch = n_boot, set_boot, level, seed, batch
        self._extractors: dict[str, CachedExtractor] = {}
        self._reference: dict[str, np.ndarray] = {}
        self.stats = {"reference_seconds": 0.0, "reference_encoded": 0}

    # -- building blocks ------------------------------------------------------------------
    def extractor(self, spec: str) -> CachedExtractor:
        if spec not in self._extractors:
            self._extractors[spec] = CachedExtractor(resolve_extractor(spec), self.cache)
        return self._extractors[spec]

    def make_metric(self, m: MetricSpec) -> Any:
        """The suite's metric ``m`` through ``METRICS.build`` (settings checked against its ``config_class``);
        a metric whose config has an ``fps`` field (dynamic_degree) gets the suite's ``generation.fps``
        unless its settings give one."""
        where = f"metric {m.key} settings"
        options = dict(m.settings or {})
        if "fps" not in options and self.suite.generation.fps and _has_field(self.metrics.get(m.name), "fps"):
            options["fps"] = self.suite.generation.fps  # e.g. dynamic_degree's VBench frame step
        spec = self.suite.extractor_for(m)
        default = getattr(self.metrics.get(m.name), "default_extractor", None)
        if spec is not None and default is None:
            raise ConfigError(f"metric {m.key}: {m.name!r} works on pixels and takes no extractor (got {spec!r})")
        spec = spec or default
        if spec is None:
            return self.metrics.build(m.name, options=options, where=where)
        return self.metrics.build(m.name, options=options, where=where, extractor=self.extractor(spec))

    # -- entry ---------------------------------------------------------------------------
    def score_eval(self, store: ResultsStore, eval_id: str, items: Sequence[Mapping[str, Any]],
                   video_path: Callable[[str], Path],
                   on_metric: Callable[[int, int], None] | None = None) -> dict[str, float | None]:
        """Score every metric of the suite for one evaluation; returns metric key -> value.

        ``on_metric(done, total)`` is called after each metric (progress bars).
        """
        decoded: dict[str, np.ndarray | None] = {}
        undecodable = {f["item_id"] for f in store.failures(eval_id) if f["stage"] == "decode"}

        def load(it: dict[str, Any]) -> np.ndarray | None:
            iid = it["item_id"]
            if iid not in decoded:
                from skyloom.video import VideoError, read_video

                try:
                    decoded[iid] = read_video(video_path(iid))
                except VideoError as e:
                    store.add_failure(eval_id, iid, "decode", str(e))
                    decoded[iid] = None
            return decoded[iid]

        out: dict[str, float | None] = {}
        for m in self.suite.metrics:  # a rerun scores again: the metric's old failures go first
            store.clear_failures(eval_id, stages=[f"{s}:{m.key}" for s in ("metric", "reference", "score")])
            kinds = {"prompts": ("prompt",), "physics": ("physics",), "all": ("prompt", "physics")}[m.subset]
            wanted = [it for it in items if it["kind"] in kinds]
            todo = [it for it in wanted if video_path(it["item_id"]).exists() and it["item_id"] not in undecodable]
            try:
                probe = self.make_metric(m)
            except Exception as e:  # noqa: BLE001 - an extractor that does not load, bad settings: recorded, other metrics go on
                store.add_failure(eval_id, "*", f"metric:{m.key}", f"{type(e).__name__}: {e}")
                out[m.key] = None
                continue
            if dispatch.is_set_metric(probe):
                out[m.key] = self._score_set(store, eval_id, m, probe, todo, load, video_path, wanted)
            else:
                out[m.key] = self._score_items(store, eval_id, m, probe, todo, load, video_path, wanted)
            if on_metric is not None:
                on_metric(len(out), len(self.suite.metrics))
        return out

    # -- per-item metrics -----------------------------------------------------------------
    @staticmethod
    def _coverage(store: ResultsStore, eval_id: str, wanted: Sequence[Mapping[str, Any]],
                  scored: set[str]) -> dict[str, Any]:
        """``n_scored``, ``n_failed`` and the failed items' reasons (every stage) for a score's details."""
        reasons: dict[str, str] = {}
        for f in store.failures(eval_id):
            reasons.setdefault(f["item_id"], f"{f['stage']}: {f['reason']}")
        failed = [it["item_id"] for it in wanted if it["item_id"] not in scored]
        return {"n_scored": len(scored), "n_failed": len(failed),
                "failed_items": {i: reasons.get(i, "no video") for i in failed[:50]}}

    def _score_items(self, store: ResultsStore, eval_id: str, m: MetricSpec, probe: Any,
                     todo: Sequence[Mapping[str, Any]], load: Callable, video_path: Callable[[str], Path],
                     wanted: Sequence[Mapping[str, Any]] | None = None) -> float | None:
        done = store.item_ids(eval_id, m.key)
        pending = [it for it in todo if it["item_id"] not in done]
        for i in range(0, len(pending), self.batch):
            chunk = [it for it in pending[i:i + self.batch] if load(it) is not None]
            if chunk:
                self._score_chunk(store, eval_id, m, chunk, load, video_path)
        wanted = todo if wanted is None else wanted
        ids = {it["item_id"] for it in wanted}
        stored = [r for r in store.items(eval_id, m.key) if r["item_id"] in ids]
        rows = [r for r in stored if r["value"] is not None]
        excluded = sorted(r["item_id"] for r in stored if r["value"] is None)  # by the metric's protocol
        values = [r["value"] for r in rows]
        ident = probe.identity() if hasattr(probe, "identity") else {}
        if not values:
            return None
        ci = bootstrap_ci(values, n_boot=self.n_boot, level=self.level, seed=self.seed)
        agg = getattr(probe, "aggregate", None)  # e.g. clipsim_x100 floors the mean, physics_iq clips it
        value = float(agg(values)) if agg is not None else float(np.mean(values))
        lo, hi = (float(agg([ci.low])), float(agg([ci.high]))) if agg is not None else (ci.low, ci.high)
        lo, hi = min(lo, value), max(hi, value)  # the same monotone map: the value lies in its interval
        coverage = self._coverage(store, eval_id, [it for it in wanted if it["item_id"] not in set(excluded)],
                                  {r["item_id"] for r in rows})
        if excluded:
            coverage.update(n_excluded=len(excluded), excluded_items=excluded[:50],
                            excluded_because=getattr(probe, "nan_means", None))
        store.put_scores(eval_id, [{
            "metric": m.key, "value": value, "stderr": ci.stderr, "ci_low": lo, "ci_high": hi,
            "n": len(wanted), "higher_is_better": bool(getattr(probe, "higher_is_better", True)),
            "metric_version": str(getattr(probe, "version", "")), "extractor": ident.get("extractor"),
            "weights": ident.get("weights"),
            "details": {"metric": m.name, "settings": m.settings, "preprocessing": ident.get("preprocessing"),
                        "aggregate": "mean over items", "level": self.level, **coverage,
                        "ci": f"percentile bootstrap, {self.n_boot} resamples"
                              + (", bounds mapped like the value" if agg is not None else "")}}])
        return value

    def _score_chunk(self, store: ResultsStore, eval_id: str, m: MetricSpec, chunk: Sequence[Mapping[str, Any]],
                     load: Callable, video_path: Callable[[str], Path]) -> None:
        inst = self.make_metric(m)
        try:
            videos = [load(it) for it in chunk]
            inst.update(videos, **dispatch.update_kwargs(inst, chunk, videos))
            r = inst.compute()
            per = r.per_item or {}
        except Exception as e:  # noqa: BLE001 - a metric failing on one chunk: bisected to the item, recorded
            if len(chunk) > 1:  # find the item that fails
                for it in chunk:
                    self._score_chunk(store, eval_id, m, [it], load, video_path)
                return
            store.add_failure(eval_id, chunk[0]["item_id"], f"score:{m.key}", f"{type(e).__name__}: {e}")
            return
        rows = []
        for it in chunk:
            v = per.get(it["item_id"])
            excluded = getattr(inst, "nan_means", None)  # a NaN the metric's protocol means (e.g. a moving video
            if (v is None or not np.isfinite(v)) and not excluded:  # for VBench flickering) is kept as an exclusion
                why = (r.details or {}).get("reasons", {}).get(it["item_id"]) if isinstance(r.details, dict) else None
                store.add_failure(eval_id, it["item_id"], f"score:{m.key}",
                                  why or f"{m.key} gave no finite value for this item ({v})")
                continue  # not a value: a failure with its reason, never a silent drop
            rows.append({"item_id": it["item_id"], "metric": m.key, "value": v,  # the store keeps it relative
                         "video_path": str(Path(video_path(it["item_id"])).absolute()), "prompt": it["prompt"],
                         "seed": it["seed"], "category": it["category"]})
        store.put_items(eval_id, rows)

    # -- set-level metrics ----------------------------------------------------------------
    def _features(self, ex: CachedExtractor, inst: Any, alias: str, get_video: Callable[[], np.ndarray | None],
                  real: bool) -> np.ndarray | None:
        """Features of one clip as the metric would cut it, via alias -> input key -> cache."""
        full_alias = f"{alias}|{ex.ekey}|{getattr(inst, 'name', '')}|{getattr(inst, 'num_frames', '')}|" \
                     f"{getattr(inst, 'seed', '')}|{'real' if real else 'fake'}"
        key = self.cache.get_alias(full_alias)
        if key is not None:
            hit = self.cache.get("v-" + ex.ekey, key)
            if hit is not None:
                return hit
        v = get_video()
        if v is None:
            return None
        clip = inst.clip(v, real) if hasattr(inst, "clip") else v
        key = array_key(clip)
        feats = ex.encode_videos(clip[None], keys=[key])[0]
        self.cache.put_alias(full_alias, key)
        return feats

    def reference_features(self, inst: Any, ex: CachedExtractor) -> np.ndarray:
        """(N, D) features of the suite's reference corpus, read through the cache."""
        ref = self.suite.reference
        memo = f"{ex.ekey}|{getattr(inst, 'name', '')}|{getattr(inst, 'num_frames', '')}"
        if memo in self._reference:
            return self._reference[memo]
        import time

        from skyloom.corpus import Corpus

        t0, enc0 = time.perf_counter(), self.cache.stats["encoded"]
        corpus = Corpus(str(ref.corpus))
        recs = sorted(corpus.records(split=ref.split, source_kind=ref.source_kind), key=lambda r: r.id)[: ref.max_clips]
        if len(recs) < 2:
            raise InvalidInputError(f"reference corpus {ref.corpus}: {len(recs)} clip(s) match "
                                    f"(split={ref.split}, source_kind={ref.source_kind}); need at least 2")
        size = tuple(ref.size) if ref.size else None
        feats = []
        for r in recs:
            alias = f"ref:{r.sha256}:{ref.num_frames}:{size}"

            def get(r=r) -> np.ndarray | None:
                try:
                    return corpus.read_clip(r.id, num_frames=ref.num_frames, size=size)
                except Exception as e:  # noqa: BLE001 - a reference clip that does not decode is skipped, not fatal
                    logger.warning("reference clip %s skipped: %s", r.id, e)
                    return None

            try:
                f = self._features(ex, inst, alias, get, real=True)
            except ValueError as e:  # e.g. a clip shorter than the metric's num_frames: skip it, keep the rest
                logger.warning("reference clip %s skipped for %s: %s", r.id, getattr(inst, "name", ""), e)
                self.stats["reference_skipped"] = self.stats.get("reference_skipped", 0) + 1
                f = None
            if f is not None:
                feats.append(f)
        if len(feats) < 2:
            raise InvalidInputError(f"reference corpus {ref.corpus}: only {len(feats)} usable clip(s) for "
                                    f"{getattr(inst, 'name', '')}; need at least 2")
        self._reference[memo] = np.stack(feats)  # (N_ref, D)
        self.stats["reference_seconds"] += time.perf_counter() - t0
        self.stats["reference_encoded"] += self.cache.stats["encoded"] - enc0
        return self._reference[memo]

    def _score_set(self, store: ResultsStore, eval_id: str, m: MetricSpec, probe: Any,
                   todo: Sequence[Mapping[str, Any]], load: Callable, video_path: Callable[[str], Path],
                   wanted: Sequence[Mapping[str, Any]] | None = None) -> float | None:
        if not self.suite.reference.corpus:
            logger.warning("metric %s skipped: no reference corpus (--set suite.reference.corpus=PATH)", m.key)
            return None
        ex = probe.extractor
        try:
            real = self.reference_features(probe, ex)
        except Exception as e:  # noqa: BLE001 - no reference features: the metric fails with the reason recorded
            store.add_failure(eval_id, "*", f"reference:{m.key}", f"{type(e).__name__}: {e}")
            return None
        fake, fake_ids = [], []
        for it in todo:
            path = video_path(it["item_id"])
            try:
                f = self._features(ex, probe, f"file:{sha256_file(path)}", functools.partial(load, it), real=False)
            except Exception as e:  # noqa: BLE001 - one video's features fail: that item is recorded, others go on
                store.add_failure(eval_id, it["item_id"], f"score:{m.key}", f"{type(e).__name__}: {e}")
                continue
            if f is not None:
                fake.append(f)
                fake_ids.append(it["item_id"])
        if len(fake) < 2:
            store.add_failure(eval_id, "*", f"score:{m.key}", f"{len(fake)} generated video(s) scored; need >= 2")
            return None
        fake_a = np.stack(fake)  # (N, D)
        value_of = self._set_value_fn(m, ex, real)
        try:
            r = value_of(fake_a, full=True)
        except Exception as e:  # noqa: BLE001 - a set metric that cannot be computed: recorded as the eval's failure
            store.add_failure(eval_id, "*", f"score:{m.key}", f"{type(e).__name__}: {e}")
            return None
        ci = set_interval(real, fake_a, lambda r_, f: value_of(f, real=r_), n_boot=self.set_boot, level=self.level,
                          seed=self.seed, floor=0.0)
        lo, hi, se = ci["ci_low"], ci["ci_high"], ci["stderr"]
        wanted = todo if wanted is None else wanted
        coverage = self._coverage(store, eval_id, wanted, set(fake_ids))
        ident = probe.identity()
        feats_path = self._save_set_features(eval_id, m.key, real, fake_a, fake_ids)  # for paired comparisons
        store.put_scores(eval_id, [{
            "metric": m.key, "value": r.value, "stderr": se, "ci_low": lo, "ci_high": hi, "n": len(wanted),
            "higher_is_better": r.higher_is_better, "metric_version": r.metric_version, "extractor": ident["extractor"],
            "weights": ident["weights"],
            "details": {**r.details, "metric": m.name, "settings": m.settings, "preprocessing": ident["preprocessing"],
                        "ci": f"basic bootstrap over half-samples of the generated and reference sets, "
                              f"{ci['resamples']} resamples, widened to contain the value",
                        "bootstrap_bias": ci["bias"], "level": self.level, **coverage,
                        "reference_corpus": self.suite.reference.corpus,
                        "features": feats_path}}])
        return r.value

    def _save_set_features(self, eval_id: str, key: str, real: np.ndarray, fake: np.ndarray,
                           item_ids: list[str]) -> str | None:
        """Per-item features of a set-level score (``stats.paired_set_test`` recomputes from them)."""
        if not getattr(self.cache, "enabled", True):
            return None
        path = Path(self.cache.root) / "sets" / f"{eval_id}-{key}.npz"
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            np.savez_compressed(path, real=real, fake=fake, item_ids=np.asarray(item_ids, dtype=str))
        except OSError as e:
            logger.warning("could not save set features for %s/%s: %s", eval_id, key, e)
            return None
        return str(path)

    def _set_value_fn(self, m: MetricSpec, ex: CachedExtractor, real: np.ndarray) -> Callable[..., Any]:
        ref = real

        def value_of(fake: np.ndarray, full: bool = False, real: np.ndarray | None = None) -> Any:
            inst = self.metrics.build(m.name, options=m.settings, where=f"metric {m.key} settings", extractor=ex)
            inst.update_features(ref if real is None else real, real=True)
            inst.update_features(fake, real=False)
            r = inst.compute()
            return r if full else r.value

        return value_of
