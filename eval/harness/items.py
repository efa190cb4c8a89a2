"""The typed shape of a suite item (what one generated video is scored against) and of the ground
truth the eval stage reads from a physics scene.

A prompt item comes from :meth:`skyloom.eval.harness.suites.Suite.items`, a physics item from
:func:`skyloom.eval.harness.probes.build_items`; the runner, the scorer and the metrics read both.
The ground-truth format itself (writer, checker) belongs to the corpus contract in core; this is
the part of it the eval stage reads, typed for the checker (mypy).
"""

from __future__ import annotations

from typing import Any, Literal, NotRequired, TypedDict

import numpy as np


class ObjectState(TypedDict, total=False):
    """An object's initial state in a scene's ground truth (the parts eval reads)."""

    motion: str  # the motion label ("dropped", "rolling", ...)
    position: list[float]
    velocity: list[float]


class GroundTruthObject(TypedDict, total=False):
    """One object of a scene's ground truth, as eval reads it (colour to track, shape, motion)."""

    id: str
    shape: str
    colour: str
    rgb: list[int]
    initial: ObjectState


class GroundTruth(TypedDict, total=False):
    """A physics scene's ground truth (``gt/<clip id>.json``) without its arrays, as eval reads it."""

    format: str
    version: int
    fps: float
    num_frames: int
    width: int
    height: int
    objects: list[GroundTruthObject]
    spec: dict[str, Any]


class PromptItem(TypedDict):
    """One (prompt, seed) of a suite: item id ``<prompt id>-s<seed>``."""

    item_id: str
    prompt_id: str
    prompt: str
    seed: int
    category: str
    kind: Literal["prompt"]
    reference: NotRequired[np.ndarray]  # (T, H, W, 3) uint8: a reference clip when the suite has one


class PhysicsItem(TypedDict):
    """One physics probe scene: the model continues ``cond_frames`` of the simulated clip ``reference``."""

    item_id: str
    prompt: str
    seed: int
    category: str
    kind: Literal["physics"]
    cond_frames: np.ndarray  # (k, H, W, 3) uint8: the first frames of the simulated clip
    num_frames: int
    height: int
    width: int
    fps: float | None
    reference: np.ndarray  # (T, H, W, 3) uint8: the simulated clip
    ground_truth: GroundTruth
    specs: dict[str, Any]  # the scene spec it was simulated from (skyloom.datagen.scenes)
    variance: dict[str, Any]  # the physical variance of re-simulations (skyloom.eval.functional.physics_iq)
    moving_cells: NotRequired[int]  # how much of the frame moves (the probe admission's measure)
    gate: NotRequired[dict[str, Any]]  # the degenerate gate's terms and whether the probe passed it
    draw: NotRequired[dict[str, Any]]  # how the suite's probes were drawn (admitted, rejected, why)


SuiteItem = PromptItem | PhysicsItem
