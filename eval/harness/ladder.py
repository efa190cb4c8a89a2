"""The physics suite's discrimination ladder: does the score order trivial "generators" as physics would?

For each probe scene of a suite's ``physics`` section, five continuations of the conditioning
frames are scored: the simulator's own continuation (``truth``), a re-simulation with a different
tiny perturbation of the initial conditions (``perturbed``; not the take used for the physical
variance), the true continuation played backwards (``reversed``), the last conditioning frame held
(``frozen``) and uniform noise (``noise``). A discriminating suite scores them in that order on
(almost) every scene. ``skyloom eval ladder`` prints the table; docs/metrics.md records it.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import replace
from itertools import pairwise
from typing import Any

import numpy as np

from skyloom.eval.harness.suites import PhysicsSpec

logger = logging.getLogger(__name__)

LADDER = ("truth", "perturbed", "reversed", "frozen", "noise")


def candidates(item: Mapping[str, Any], perturb_seed: int, render: Any = None,
               perturb: Any = None) -> dict[str, np.ndarray]:
    """The five continuations of one probe item (full clips: conditioning frames + continuation)."""
    if render is None or perturb is None:
        from skyloom import datagen

        render, perturb = render or datagen.render_spec, perturb or datagen.perturb_spec
    ref = np.asarray(item["reference"])  # (T, H, W, 3)
    c = len(item["cond_frames"])
    cont = ref[c:]
    pert = render(perturb(item["specs"], float(item.get("perturb_scale", 0.01)), perturb_seed))[0]
    rng = np.random.default_rng(perturb_seed)
    return {
        "truth": ref,
        "perturbed": np.concatenate([ref[:c], pert[c:]]),
        "reversed": np.concatenate([ref[:c], cont[::-1]]),
        "frozen": np.concatenate([ref[:c], np.repeat(ref[c - 1:c], len(cont), axis=0)]),
        "noise": np.concatenate([ref[:c], rng.integers(0, 256, cont.shape, dtype=np.uint8)]),
    }


def ladder(ph: PhysicsSpec, metrics: tuple[str, ...] = ("physics_iq_scene", "physics_iq"),
           perturb_seed_offset: int = 7919) -> dict[str, Any]:
    """Score the five continuations of every scene of ``ph`` with each metric.

    Returns:
        ``{"scenes": [{"item_id", "probe", "motion_after_cond", <metric>: {candidate: value}}],
        "aggregate": {<metric>: {candidate: value}}, "ordered": {<metric>: fraction of scenes in
        ladder order (strictly decreasing)}}``.
    """
    from skyloom.eval.functional.physics_iq import motion_masks
    from skyloom.eval.harness import probes
    from skyloom.eval.metrics import METRICS

    items = probes.build_items(ph)
    out: dict[str, Any] = {"scenes": [], "aggregate": {}, "ordered": {}}
    per_metric: dict[str, dict[str, list[float]]] = {m: {k: [] for k in LADDER} for m in metrics}
    for i, it in enumerate(items):
        cands = candidates({**it, "perturb_scale": ph.perturb_scale}, ph.seed + perturb_seed_offset + i)
        ref = np.asarray(it["reference"])
        row: dict[str, Any] = {"item_id": it["item_id"], "probe": it["specs"].get("probe"),
                               "motion_after_cond": int(motion_masks(ref[ph.cond_frames - 1:])[1:].sum())}
        for name in metrics:
            m = METRICS.get(name)(cond_frames=ph.cond_frames)
            m.update([cands[k] for k in LADDER], reference=[ref] * len(LADDER), variance=[it["variance"]] * len(LADDER),
                     item_ids=list(LADDER))
            vals = m.compute().per_item
            row[name] = {k: float(vals[k]) for k in LADDER}
            for k in LADDER:
                per_metric[name][k].append(float(vals[k]))
        out["scenes"].append(row)
    for name in metrics:
        agg = METRICS.get(name)(cond_frames=ph.cond_frames)
        out["aggregate"][name] = {k: float(agg.aggregate(per_metric[name][k])) for k in LADDER}
        ok = [all(r[name][a] > r[name][b] for a, b in pairwise(LADDER)) for r in out["scenes"]]
        out["ordered"][name] = float(np.mean(ok)) if ok else float("nan")
    return out


def suite_ladder(suite: Any, size: int | None = None, num_scenes: int | None = None, **kw: Any) -> dict[str, Any]:
    """:func:`ladder` of a loaded suite's physics section, optionally at another frame size / scene count."""
    ph = suite.physics
    if size is not None:
        ph = replace(ph, overrides=tuple(ph.overrides) + (f"scene.width={size}", f"scene.height={size}"))
    if num_scenes is not None:
        ph = replace(ph, num_scenes=int(num_scenes))
    return ladder(ph, **kw)
