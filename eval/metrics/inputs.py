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


class MissingInputError(ValueError):
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
        MissingInputError: a required input some items lack (naming the input and the items).
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
                raise MissingInputError(f"metric {getattr(metric, 'name', '?')!r} needs {name} ({INPUTS[name]}); "
                                   f"missing for {', '.join(lacking[:5])}")
            continue
        kw[name] = values
    if "reference" in kw and getattr(metric, "fit_reference", True):
        kw["reference"] = [fit_frames(r, v.shape) for r, v in zip(kw["reference"], videos)]
    return kw


def check_declared_inputs(name: str, metric: Any) -> None:
    """Check a metric class's declared inputs against what its ``update`` (and ``score_video``) reads.

    Run by the metric registry when a metric registers. Every declared input (other than
    ``videos``) must be a parameter of ``update`` -- or, for a per-item metric whose ``update``
    forwards ``**kwargs`` to ``score_video``, of ``score_video`` -- and every parameter those read
    must be declared (``real`` stands for ``real_videos``). A metric that reads a prompt it does not
    declare is refused here, not found out when every item of a suite fails.

    Raises:
        skyloom.registry.RegistryError: an unknown input name, a declared input that ``update``
            cannot take, or a parameter it reads that is not declared (naming each).
    """
    import inspect

    from skyloom.registry import RegistryError

    if not isinstance(metric, type) or not callable(getattr(metric, "update", None)):
        raise RegistryError("a metric is a class with update(videos, ...) and compute()")
    try:
        declared = set(required_inputs(metric)) | set(optional_inputs(metric))
    except ValueError as e:
        raise RegistryError(str(e)) from None
    declared.discard("videos")

    def params(fn: Any) -> tuple[set[str], bool]:
        ps = list(inspect.signature(fn).parameters.values())[2:]  # self, the videos / the video
        named = {p.name for p in ps if p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)}
        return named, any(p.kind is p.VAR_KEYWORD for p in ps)

    taken, forwards = params(metric.update)
    score_video = getattr(metric, "score_video", None)
    if forwards and score_video is not None:  # PerItemMetric.update(videos, item_ids, **kw) -> score_video(video, **kw)
        more, open_ended = params(score_video)
        taken |= more
        forwards = open_ended
    reads = {"real_videos" if p == "real" else p for p in taken}
    not_taken = sorted(declared - reads) if not forwards else []
    undeclared = sorted(reads - declared)
    problems = []
    if not_taken:
        problems.append(f"declares {', '.join(not_taken)} but update() takes no such parameter")
    if undeclared:
        problems.append(f"update() reads {', '.join(undeclared)} but its inputs/optional_inputs do not declare "
                        f"{'it' if len(undeclared) == 1 else 'them'} (suites would never pass "
                        f"{'it' if len(undeclared) == 1 else 'them'})")
    if problems:
        raise RegistryError("; ".join(problems) + f"; declared: inputs={tuple(required_inputs(metric))}, "
                        f"optional_inputs={tuple(optional_inputs(metric))}")


def fit_frames(reference: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """Resize a reference clip (T, H, W, 3) to a generated clip's frame size (frame count kept):
    :func:`skyloom.video.conform_clip`.

    For metrics that compare appearance at the candidate's size. Not for the physics metrics
    (``fit_reference = False``): shrinking the simulator's clip erases the motion they measure.
    """
    from skyloom.video import conform_clip

    return conform_clip(reference, height=int(shape[1]), width=int(shape[2]))
