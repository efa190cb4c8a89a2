"""Calibration rows: reference entries computed from the suite's own data (``skyloom eval --calibrate``).

A leaderboard of two checkpoints says nothing about where real data and trivial baselines would
sit. Each calibration row is scored by exactly the code that scores a model, from videos made
from the ground truth of every item:

- ``ground_truth``: the simulator's clip (physics items) or, for prompt items, the clip of the
  suite's reference corpus whose caption shares the most words with the prompt (ties by clip id;
  the k-th seed of a prompt takes the k-th best clip), cut to the item's frames and size;
- ``perturbed``: physics items only: a re-simulation with a tiny perturbation of the initial
  conditions (``skyloom.datagen.perturb_spec``, ``physics.perturb_scale``), an independent take
  of the physical variance (a seed the variance itself does not use);
- ``frozen``: the ground truth's first frame, repeated;
- ``shuffled``: the ground truth's frames in a seeded random order;
- ``noise``: uniform random pixels of the same shape.

Rows are stored with ``kind = calibration``: boards show them in place, unranked, so every
model's number reads against them; :mod:`skyloom.eval.results.boards` checks that each metric orders
them as the suite declares and normalises the total score between two of them.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
import time
import zlib
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from skyloom.errors import InvalidInputError
from skyloom.eval.harness.suites import CALIBRATION_ROWS, Suite
from skyloom.rundir import EvalDir
from skyloom.video import conform_clip

logger = logging.getLogger(__name__)

ROW_DESCRIPTIONS = {
    "ground_truth": "the real clip / simulator continuation itself",
    "perturbed": "a re-simulation with a tiny perturbation (physics items only)",
    "frozen": "the ground truth's first frame, repeated",
    "shuffled": "the ground truth's frames in random order",
    "noise": "uniform random pixels",
}
_STOP = {"a", "an", "the", "on", "of", "and", "to", "is", "are", "in", "at", "across", "with", "into", "it", "they",
         "its", "by", "from", "onto", "then"}
PERTURB_SEED_OFFSET = 10_000  # the physical variance uses seeds seed .. seed + takes - 1


def _words(text: str) -> set[str]:
    return {w for w in re.findall(r"[a-z]+", text.lower()) if w not in _STOP}


def ground_truth_clips(suite: Suite, items: Sequence[Mapping[str, Any]]) -> dict[str, np.ndarray]:
    """Item id -> uint8 (T, H, W, 3) ground truth, for the items that have one (module docstring)."""
    from skyloom.eval.harness.submissions import item_spec

    out: dict[str, np.ndarray] = {}
    for it in items:
        if it.get("kind") == "physics" and it.get("reference") is not None:
            out[it["item_id"]] = np.asarray(it["reference"])
    prompts = [it for it in items if it.get("kind") == "prompt"]
    ref = suite.reference
    if not prompts or not ref.corpus:
        return out
    from skyloom.corpus import Corpus

    corpus = Corpus(ref.corpus)
    recs = [r for r in sorted(corpus.records(split=ref.split, source_kind=ref.source_kind), key=lambda r: r.id)
            if r.caption()][: ref.max_clips]
    if not recs:
        logger.warning("reference corpus %s has no captioned clips: no ground truth for prompt items", ref.corpus)
        return out
    cap_words = [_words(r.caption() or "") for r in recs]
    seen: dict[str, int] = {}
    for it in prompts:
        pw = _words(it["prompt"])
        ranked = sorted(range(len(recs)), key=lambda i: (-len(pw & cap_words[i]) / max(1, len(pw | cap_words[i])),
                                                         recs[i].id))
        k = seen.get(it["prompt_id"], 0)
        seen[it["prompt_id"]] = k + 1
        sp = item_spec(suite, it)
        frames = sp["frames"] or ref.num_frames
        for j in ranked[k % len(ranked):] + ranked[: k % len(ranked)]:  # the k-th best usable clip
            try:
                clip = corpus.read_clip(recs[j].id, num_frames=frames)
            except (ValueError, OSError) as e:  # an undecodable reference clip (VideoError): try the next best
                logger.warning("reference clip %s skipped: %s", recs[j].id, e)
                continue
            if clip.shape[0] >= frames:
                out[it["item_id"]] = conform_clip(clip, height=sp["height"], width=sp["width"], num_frames=frames)
                break
    return out


def _rng(seed: int, row: str, item_id: str) -> np.random.Generator:
    return np.random.default_rng([int(seed), zlib.crc32(row.encode()), zlib.crc32(item_id.encode())])


def make_row(row: str, item: Mapping[str, Any], gt: np.ndarray, suite: Suite) -> np.ndarray | None:
    """The video of calibration ``row`` for one item with ground truth ``gt`` (None: not applicable)."""
    seed = suite.calibration.seed
    if row == "ground_truth":
        return gt
    if row == "frozen":
        return np.repeat(gt[:1], gt.shape[0], axis=0)  # (T, H, W, 3)
    if row == "shuffled":
        return gt[_rng(seed, row, item["item_id"]).permutation(gt.shape[0])]
    if row == "noise":
        return _rng(seed, row, item["item_id"]).integers(0, 256, gt.shape, dtype=np.uint8)
    if row == "perturbed":
        if item.get("kind") != "physics" or item.get("specs") is None:
            return None
        from skyloom import datagen  # lazy: MuJoCo

        ph = suite.physics
        frames = datagen.render_spec(datagen.perturb_spec(item["specs"], ph.perturb_scale,
                                                          ph.seed + seed + PERTURB_SEED_OFFSET))[0]
        return conform_clip(frames, height=gt.shape[1], width=gt.shape[2], num_frames=gt.shape[0])
    raise InvalidInputError(f"unknown calibration row {row!r}; valid: {', '.join(CALIBRATION_ROWS)}")


def run_calibration(cfg: Any, rows: list[str] | tuple[str, ...] | None = None, *, metrics: Any = None,
                    suite: Suite | None = None, store: Any = None,
                    items: Sequence[Mapping[str, Any]] | None = None) -> Any:
    """Make and score the suite's calibration rows (``suite.calibration.rows``, or ``rows``).

    Stored like a submission (``cfg.db``, else ``OUT/results.sqlite``) with ``kind = calibration``.

    Raises:
        ValueError: an unknown row, no rows, or a suite without any ground truth.
    """
    from skyloom.config import to_dict
    from skyloom.eval.features.cache import FeatureCache
    from skyloom.eval.harness import probes
    from skyloom.eval.harness.runner import EvalResult, _Ctx, finish_eval, git_hash, make_scorer
    from skyloom.eval.harness.submissions import entry_base_and_db, item_spec, suite_items
    from skyloom.eval.harness.suites import load_suite, suite_to_dict
    from skyloom.eval.results.store import ResultsStore, public_config
    from skyloom.video import write_video

    t0 = time.perf_counter()
    if metrics is None:
        from skyloom.eval.metrics import METRICS as metrics
    suite = suite or load_suite(cfg.suite, cfg.suite_overrides, metric_names=metrics.names())
    rows = tuple(rows or suite.calibration.rows or CALIBRATION_ROWS)
    bad = [r for r in rows if r not in CALIBRATION_ROWS]
    if bad:
        raise InvalidInputError(f"unknown calibration row(s) {bad}; valid: {', '.join(CALIBRATION_ROWS)}")
    items = items if items is not None else suite_items(suite)
    gts = ground_truth_clips(suite, items)
    if not gts:
        raise InvalidInputError(f"suite {suite.name!r}: no item has ground truth, so there is nothing to calibrate "
                                "with (physics scenes, or prompt items with a reference corpus: "
                                "--set suite.reference.corpus=PATH)")
    base, db = entry_base_and_db(cfg)
    store = store or ResultsStore(db)
    record = {"suite": {**suite_to_dict(suite), "primary_metric": suite.primary}, "eval": public_config(to_dict(cfg))}
    draw = probes.draw_record(items)
    if draw is not None:
        record["physics_probes"] = draw
    scorer = make_scorer(suite, cfg, metrics, FeatureCache(cfg.cache_dir, enabled=cfg.use_cache))
    result = EvalResult(suite=suite.name, db=store.url)
    for row in rows:
        if row == "perturbed" and not any(it.get("kind") == "physics" and it["item_id"] in gts for it in items):
            logger.info("calibration row perturbed skipped: suite %s has no physics scenes", suite.name)
            continue
        ident = {"suite": suite.content_hash(), "row": row, "seed": suite.calibration.seed, "items": sorted(gts)}
        h = hashlib.sha256(json.dumps(ident, sort_keys=True).encode()).hexdigest()[:10]
        eval_id = f"{suite.name}-v{suite.version}-calib-{row.replace('_', '-')}-{h}"
        ctx = _Ctx(eval_id, f"calibration:{row}", row, None, None, EvalDir(base, suite.name, eval_id))
        meta = {"row": row, "description": ROW_DESCRIPTIONS[row], "seed": suite.calibration.seed,
                "items_with_ground_truth": len(gts)}
        store.begin_eval(eval_id, suite=suite.name, suite_version=suite.version_tag, checkpoint=ctx.checkpoint,
                         checkpoint_name=row, git_hash=git_hash(), config=record, status="running",
                         kind="calibration", meta=meta)
        made = 0
        for it in items:
            gt = gts.get(it["item_id"])
            path = ctx.video_path(it["item_id"])
            if gt is None or path.exists():
                continue
            video = make_row(row, it, gt, suite)
            if video is None:
                continue
            write_video(path, video, fps=item_spec(suite, it)["fps"],
                        metadata={"item_id": it["item_id"], "calibration": row})
            made += 1
        scored = [it for it in items if ctx.video_path(it["item_id"]).exists()]
        result.evals.append(finish_eval(store, scorer, suite, cfg, ctx, scored, t0, made))
    result.seconds = time.perf_counter() - t0
    result.cache_stats = dict(scorer.stats)
    return result


__all__ = ["ROW_DESCRIPTIONS", "ground_truth_clips", "make_row", "run_calibration"]
