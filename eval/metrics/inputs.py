"""What a metric takes, and how scored items feed it: the one dispatch of suites and ``eval score``.

A metric declares its inputs as class attributes instead of having them guessed from
``update()``'s parameter names::

    class MyMetric(PerItemMetric):
        inputs = ("videos", "item_ids", "prompts")   # required: update(videos, item_ids=..., prompts=...)
        optional_inputs = ()                         # passed when every item has them

:data:`INPUTS` lists the names a metric may declare. ``"real_videos"`` marks a set-level metric
(FVD, KVD): it compares the generated set with a set of real clips, fed as
``update(real_clips, real=True)`` (or, through the feature cache, ``update_features(features,
real=True)``). The suite runner (:mod:`skyloom.eval.harness.scoring`) and ``skyloom eval score``
(:mod:`skyloom.eval.cli.score`) both describe each video as an item dict (``item_id``,
``prompt``, ``reference``, ``ground_truth``, ``specs``, ``variance``) and call
:func:`update_kwargs`, so a metric registered by a plug-in works in both without either knowing
its name.

Example:
    >>> from skyloom.eval.metrics import METRICS
    >>> required_inputs(METRICS.get("clipsim"))
    ('videos', 'item_ids', 'prompts')
    >>> is_set_metric(METRICS.get("fvd")), is_set_metric(METRICS.get("warping_error"))
    (True, False)
"""

from __future__ import annotations

from typing import Any

import numpy as np

INPUTS: dict[str, str] = {
    "videos": "the generated videos, uint8 (T, H, W, 3) each (always given)",
    "item_ids": "the id of each video",
    "prompts": "the prompt of each video",
    "reference": "the simulator's clip that each video continues (same file name)",
    "ground_truth": "the skyloom-gt dict of each reference clip",
    "specs": "the scene spec of each reference clip",
    "variance": "the physical variance of each item (from perturbed re-simulations)",
    "real_videos": "a set of real clips to compare the generated set with",
}
# Input name -> key of the item dict that holds one video's value (default: the same name).
ITEM_KEYS: dict[str, str] = {"item_ids": "item_id", "prompts": "prompt"}
SET_INPUT = "real_videos"


class MissingInput(ValueError):
    """A metric's required input that the items do not provide."""


def required_inputs(metric: Any) -> tuple[str, ...]:
    """The inputs ``metric`` (class or instance) requires, checked against :data:`INPUTS`."""
    return _checked(metric, "inputs", ("videos",))


def optional_inputs(metric: Any) -> tuple[str, ...]:
    """The inputs ``metric`` uses when every item has them."""
    return _checked(metric, "optional_inputs", ())


def _checked(metric: Any, attr: str, default: tuple[str, ...]) -> tuple[str, ...]:
    names = tuple(getattr(metric, attr, default))
    bad = [n for n in names if n not in INPUTS]
    if bad:
        who = getattr(metric, "name", None) or getattr(metric, "__name__", repr(metric))
        raise ValueError(f"metric {who!r} declares unknown {attr} {bad}; valid: {', '.join(INPUTS)}")
    return names


def is_set_metric(metric: Any) -> bool:
    """Whether ``metric`` compares the generated set with real clips (declares ``real_videos``)."""
    return SET_INPUT in required_inputs(metric)


def missing_inputs(metric: Any, item: dict[str, Any]) -> list[str]:
    """Required per-video inputs of ``metric`` that ``item`` lacks."""
    return [n for n in required_inputs(metric) if n not in ("videos", SET_INPUT)
            and item.get(ITEM_KEYS.get(n, n)) is None]


def update_kwargs(metric: Any, items: list[dict[str, Any]], videos: list[np.ndarray]) -> dict[str, Any]:
    """Keyword arguments of ``metric.update(videos, ...)`` for these items, from its declared inputs.

    Required inputs must be present on every item; optional ones are passed only when every item
    has them. A ``reference`` clip is resized to its video's frame size (:func:`fit_frames`) unless
    the metric sets ``fit_reference = False``: the physics metrics score at the probe's resolution
    and resize the candidate instead, never shrinking the simulator's clip.

    Raises:
        MissingInput: a required input some items lack (naming the input and the items).
    """
    kw: dict[str, Any] = {}
    required = required_inputs(metric)
    for name in (*required, *optional_inputs(metric)):
        if name in ("videos", SET_INPUT):
            continue
        key = ITEM_KEYS.get(name, name)
        values = [it.get(key) for it in items]
        if any(v is None for v in values):
            if name in required:
                lacking = [str(it.get("item_id", i)) for i, it in enumerate(items) if it.get(key) is None]
                raise MissingInput(f"metric {getattr(metric, 'name', '?')!r} needs {name} ({INPUTS[name]}); "
                                   f"missing for {', '.join(lacking[:5])}")
            continue
        kw[name] = values
    if "reference" in kw and getattr(metric, "fit_reference", True):
        kw["reference"] = [fit_frames(r, v.shape) for r, v in zip(kw["reference"], videos)]
    return kw


def metric_kwargs(cls: Any, settings: dict[str, Any] | None, where: str = "settings") -> dict[str, Any]:
    """Constructor keyword arguments from a metric's settings, checked against its ``config_class``
    when it has one (see :func:`skyloom.registry.config_kwargs`)."""
    from skyloom.registry import config_kwargs

    return config_kwargs(cls, settings, where)


def fit_frames(reference: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """Resize a reference clip (T, H, W, 3) to a generated clip's frame size (frame count kept):
    :func:`skyloom.video.conform_clip`.

    For metrics that compare appearance at the candidate's size. Not for the physics metrics
    (``fit_reference = False``): shrinking the simulator's clip erases the motion they measure.
    """
    from skyloom.video import conform_clip

    return conform_clip(reference, height=int(shape[1]), width=int(shape[2]))
