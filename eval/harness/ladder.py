"""The physics suite's discrimination ladder: does the score order trivial "generators" as physics would?

For each admitted probe of a suite's ``physics`` section (:mod:`skyloom.eval.harness.probes`: encoded
clips, probes that move, the degenerate gate), continuations of the given frames are scored, each
through the same H.264 round trip a stored candidate takes: the simulator's own continuation
(``truth``), the probe's gate take (``perturbed``: a re-simulation with a different tiny perturbation
than the variance take), the true continuation played backwards (``reversed``), the last given frame
held (``frozen``) and uniform noise (``noise``) — :data:`LADDER`, for ``physics_iq`` and
``physics_iq_scene``; and for ``physics_trajectory`` :data:`TRAJECTORY_LADDER` (slowed, stopped,
teleported, grey as well). A discriminating suite scores them in order on (almost) every probe.
``skyloom eval ladder`` prints the table, each probe's degenerate gate and the rejected draws;
docs/metrics.md records it.
"""

from __future__ import annotations

import logging
from dataclasses import replace
from itertools import pairwise
from typing import Any

import numpy as np

from skyloom.eval.harness.suites import PhysicsSpec

logger = logging.getLogger(__name__)

LADDER = ("truth", "perturbed", "reversed", "frozen", "noise")
TRAJECTORY_LADDER = ("truth", "perturbed", "slowed", "stopped", "reversed", "teleported", "frozen", "grey", "noise")
# physics_trajectory's order, best first; a group holds rungs that may tie (truth = perturbed, reversed/teleport)
TRAJECTORY_ORDER = (("truth", "perturbed"), ("slowed",), ("stopped",), ("reversed", "teleported"), ("frozen",),
                    ("grey", "noise"))
_BUILDER = {"frozen": "last_frozen"}


def candidates(item: dict[str, Any], names: tuple[str, ...] = LADDER, seed: int = 0) -> dict[str, np.ndarray]:
    """Continuations of one probe item (full clips: given frames + continuation), encoded as stored."""
    from skyloom.eval.harness import continuations
    from skyloom.video import encode_round_trip

    ref = np.asarray(item["reference"])  # (T, H, W, 3), already encoded
    c = len(item["cond_frames"])
    fps = float(item.get("fps") or 8)
    objects = [o for o in (item.get("ground_truth") or {}).get("objects", []) if "rgb" in o]
    out: dict[str, np.ndarray] = {}
    for k in names:
        if k == "truth":
            out[k] = ref
        elif k == "perturbed":
            out[k] = np.concatenate([ref[:c], np.asarray(item["gate_take"])[c:]])
        else:
            out[k] = encode_round_trip(continuations.make(_BUILDER.get(k, k), ref, c, seed=seed, objects=objects), fps)
    return out


def _in_order(vals: dict[str, float], order: tuple[str, ...]) -> bool:
    return all(vals[a] > vals[b] for a, b in pairwise(order))


def _in_groups(vals: dict[str, float], groups: tuple[tuple[str, ...], ...]) -> bool:
    """Every rung of a group above every rung of the next (ties allowed inside a group)."""
    return all(min(vals[a] for a in ga) > max(vals[b] for b in gb) for ga, gb in pairwise(groups))


def ladder(ph: PhysicsSpec, metrics: tuple[str, ...] = ("physics_iq", "physics_iq_scene", "physics_trajectory"),
           ) -> dict[str, Any]:
    """Score the ladder's continuations of every admitted probe of ``ph`` with each metric.

    Returns:
        ``{"scenes": [{"item_id", "probe", "moving_cells", "gate": {"passed", "terms"}, <metric>: {rung: value}}],
        "aggregate": {<metric>: {rung: value}}, "ordered": {<metric>: fraction of probes in ladder order},
        "draw": {"min_moving_cells", "draws", "admitted", "rejected": [{"item_id", "probe", "reason"}]}}``.
    """
    from skyloom.eval.harness import probes
    from skyloom.eval.metrics import METRICS

    items = probes.build_items(ph)
    out: dict[str, Any] = {"scenes": [], "aggregate": {}, "ordered": {}, "draw": probes.draw_record(items)}
    rungs = {m: (TRAJECTORY_LADDER if m == "physics_trajectory" else LADDER) for m in metrics}
    per_metric: dict[str, dict[str, list[float]]] = {m: {k: [] for k in rungs[m]} for m in metrics}
    for i, it in enumerate(items):
        names = tuple(dict.fromkeys(k for m in metrics for k in rungs[m]))
        cands = candidates(it, names, seed=ph.seed + i)
        ref = np.asarray(it["reference"])
        row: dict[str, Any] = {"item_id": it["item_id"], "probe": it["specs"].get("probe"),
                               "moving_cells": it["moving_cells"], "gate": it["gate"]}
        for name in metrics:
            m = METRICS.build(name, options={"cond_frames": ph.cond_frames})
            ks = rungs[name]
            kw: dict[str, Any] = {"reference": [ref] * len(ks), "variance": [it["variance"]] * len(ks)}
            if name == "physics_trajectory":
                kw["ground_truth"] = [it["ground_truth"]] * len(ks)
            m.update([cands[k] for k in ks], item_ids=list(ks), **kw)
            vals = m.compute().per_item
            row[name] = {k: float(vals[k]) for k in ks}
            for k in ks:
                per_metric[name][k].append(float(vals[k]))
        out["scenes"].append(row)
    for name in metrics:
        agg = METRICS.build(name, options={"cond_frames": ph.cond_frames})
        out["aggregate"][name] = {k: float(agg.aggregate(v)) for k, v in per_metric[name].items()}
        if name == "physics_trajectory":
            ok = [_in_groups(r[name], TRAJECTORY_ORDER) for r in out["scenes"]]
        else:
            ok = [_in_order(r[name], LADDER) for r in out["scenes"]]
        out["ordered"][name] = float(np.mean(ok)) if ok else float("nan")
    return out


def suite_ladder(suite: Any, size: int | None = None, num_scenes: int | None = None, seed: int | None = None,
                 **kw: Any) -> dict[str, Any]:
    """:func:`ladder` of a loaded suite's physics section, optionally at another frame size, scene
    count or scene seed (a draw nobody tuned)."""
    ph = suite.physics
    if size is not None:
        ph = replace(ph, overrides=tuple(ph.overrides) + (f"scene.width={size}", f"scene.height={size}"))
    if num_scenes is not None:
        ph = replace(ph, num_scenes=int(num_scenes))
    if seed is not None:
        ph = replace(ph, seed=int(seed))
    return ladder(ph, **kw)
