"""Evaluation suites: versioned YAML files that say exactly what a leaderboard number means.

A suite (``configs/eval/suites/<name>.yaml``, format ``skyloom-suite``) holds:

- ``name``, ``version`` (bump it when prompts, seeds, metrics or settings change: numbers from
  different versions are never ranked together), ``description``, ``primary_metric``;
- ``generation``: sampler settings shared by every checkpoint (frames, steps, guidance);
- ``prompts``: prompt sets with stable ``id``, ``text``, ``category`` and optional per-prompt
  ``seeds``; ``seeds`` at the top level apply to every other prompt. One item per (prompt, seed),
  item id ``<prompt id>-s<seed>``;
- ``physics``: physics-probe scenes (drawn from a ``datagen`` preset with a seed; the model
  continues the first ``cond_frames`` ground-truth frames; ``perturb_takes`` re-simulations with
  tiny perturbations measure the physical variance; a drawn scene is admitted only if it moves,
  ``min_moving_cells``, and passes the degenerate gate, up to ``max_draws`` draws:
  :mod:`skyloom.eval.harness.probes`);
- ``reference``: the reference corpus of real clips for FVD/KVD (a path, settable at run time
  with ``--set suite.reference.corpus=PATH``). The corpus *path* is left out of the content hash
  (where the corpus lives on this machine is not what the suite measures), so naming it, as
  ``--calibrate`` needs, does not fork the suite version; each FVD/KVD score records the corpus it
  used (``details.reference_corpus``) and paired tests compare only scores with identical reference
  features;
- ``extractors``: aliases -> extractor specs (``clip``, ``pixels``, ``indomain:PATH``), so one
  ``--set suite.extractors.text_video=indomain:EVAL_DIR`` switches every metric using it;
- ``metrics``: the metrics (names in ``skyloom.eval.metrics.METRICS``) with their extractor and
  settings; each is stored under its ``id`` (default: the name);
- ``calibration``: the reference rows ``skyloom eval --calibrate`` computes from the data itself
  (``ground_truth``, ``perturbed``, ``frozen``, ``shuffled``, ``noise``) and the order they must
  come out in on every metric (a metric that breaks it is flagged on the board);
- ``breakdown``: VBench-style total: per-metric weights and the normalisation between two
  calibration rows (``low`` -> 0, ``high`` -> 1), reported per category and overall.

Loading checks every key and type (unknown key -> error naming it and the valid keys); then
:meth:`Suite.validate` checks the meaning: unknown metric (lists the valid ones), duplicate ids,
a primary metric that is not in the suite, physics metrics without physics scenes, ...

Example:
    >>> s = load_suite("smoke")
    >>> s.name, s.version >= 1, len(s.items()) > 0
    ('smoke', True, True)
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from skyloom.config import (
    ConfigError,
    apply_overrides,
    from_dict,
    list_presets,
    load_preset,
    preset_path,
    to_dict,
)
from skyloom.eval.harness.items import PromptItem

SUITE_FORMAT = "skyloom-suite"
SUITE_GROUP = "eval/suites"
_ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")


class SuiteError(ConfigError):
    """A suite file that is malformed or refers to unknown metrics/extractors."""


@dataclass(frozen=True)
class PromptSpec:
    """One prompt of a suite: a stable id, the text, a category, optional own seeds."""

    id: str
    text: str
    category: str = "general"
    seeds: tuple[int, ...] | None = None


@dataclass(frozen=True)
class GenerationSpec:
    """Sampler settings shared by every checkpoint (``None`` = the pipeline's default)."""

    num_frames: int | None = None
    steps: int | None = None
    guidance: float | None = None
    batch_size: int = 4
    fps: float | None = None
    width: int | None = None  # the size submissions must have (None: any; physics items use the render's)
    height: int | None = None


@dataclass(frozen=True)
class PhysicsSpec:
    """Physics-probe scenes: drawn from a datagen preset, continued by the model from ``cond_frames``."""

    preset: str = "probe"
    num_scenes: int = 0
    seed: int = 0
    cond_frames: int = 4
    num_frames: int = 16
    perturb_scale: float = 0.01
    perturb_takes: int = 1
    category: str = "physics"
    overrides: tuple[str, ...] = ()
    min_moving_cells: int = 8  # admission: moving cells of the encoded truth under Physics-IQ's masks (W/4 x H/4)
    max_draws: int = 0  # scenes drawn at most to admit num_scenes probes (0: 5 x num_scenes)


@dataclass(frozen=True)
class ReferenceSpec:
    """Reference corpus of real clips for distribution metrics (FVD, KVD)."""

    corpus: str | None = None
    split: str | None = None
    source_kind: str | None = None
    max_clips: int = 256
    num_frames: int = 16
    size: tuple[int, int] | None = None
    sampling: str = "consecutive"


@dataclass(frozen=True)
class MetricSpec:
    """One metric of a suite: registry name, stored id, extractor (spec or alias) and settings."""

    name: str
    id: str | None = None
    extractor: str | None = None
    settings: dict[str, Any] = field(default_factory=dict)
    subset: str = "prompts"  # which items it scores: prompts | physics | all (YAML reads a bare `on` as true)

    @property
    def key(self) -> str:
        return self.id or self.name


CALIBRATION_ROWS = ("ground_truth", "perturbed", "frozen", "shuffled", "noise")


@dataclass(frozen=True)
class CalibrationSpec:
    """Reference rows computed from the suite's own data (``skyloom eval --calibrate``).

    ``order`` lists rows best first: every metric should rank them so (ties allowed);
    ``metric_order`` replaces it for metrics that are meant to disagree (e.g. flickering, where a
    frozen video is perfect). Rows a suite cannot make (``perturbed`` without physics scenes)
    are skipped.
    """

    rows: tuple[str, ...] = ()
    order: tuple[str, ...] = ("ground_truth", "noise")
    metric_order: dict[str, tuple[str, ...]] = field(default_factory=dict)
    seed: int = 0  # seed of the shuffled/noise rows, of the prompt-to-clip match and the perturbation


@dataclass(frozen=True)
class BreakdownSpec:
    """VBench-style total: ``sum_m w_m * norm_m / sum_m w_m`` per category and overall.

    ``norm_m = (value - low) / (high - low)`` with ``low``/``high`` the calibration rows' values
    of metric ``m`` (``normalise: calibration``), so 0 = as good as ``low`` (noise) and 1 = as good
    as ``high`` (the ground truth), whatever the metric's direction; ``normalise: none`` uses raw
    values (only meaningful when every weighted metric shares a scale and direction).
    """

    weights: dict[str, float] = field(default_factory=dict)  # metric key -> weight; empty: no breakdown
    normalise: str = "calibration"  # calibration | none
    low: str = "noise"
    high: str = "ground_truth"


# Fields added after suites were first hashed: left out of the content hash while they hold their
# defaults, so the version tags (and eval ids) of suites that do not use them stay what they were.
_LATER_FIELDS = {"calibration": CalibrationSpec(), "breakdown": BreakdownSpec()}
_LATER_GENERATION_FIELDS = ("width", "height")
_LATER_PHYSICS_FIELDS = {"min_moving_cells": 8, "max_draws": 0}


@dataclass(frozen=True)
class Suite:
    """A versioned evaluation suite (see the module docstring)."""

    name: str
    version: int = 1
    format: str = SUITE_FORMAT
    description: str = ""
    primary_metric: str | None = None
    seeds: tuple[int, ...] = (0,)
    generation: GenerationSpec = field(default_factory=GenerationSpec)
    prompts: tuple[PromptSpec, ...] = ()
    physics: PhysicsSpec = field(default_factory=PhysicsSpec)
    reference: ReferenceSpec = field(default_factory=ReferenceSpec)
    extractors: dict[str, str] = field(default_factory=dict)
    metrics: tuple[MetricSpec, ...] = ()
    calibration: CalibrationSpec = field(default_factory=CalibrationSpec)
    breakdown: BreakdownSpec = field(default_factory=BreakdownSpec)

    # -- derived ------------------------------------------------------------------------
    @property
    def version_tag(self) -> str:
        """``<version>+<hash>``: the declared version and a hash of the full content."""
        return f"{self.version}+{self.content_hash()[:8]}"

    def content_hash(self) -> str:
        d = to_dict(self)
        for k, default in _LATER_FIELDS.items():
            if getattr(self, k) == default:
                d.pop(k, None)
        for k in _LATER_GENERATION_FIELDS:
            if d["generation"].get(k) is None:
                d["generation"].pop(k, None)
        if self.physics.num_scenes <= 0:  # admission settings mean nothing without physics scenes
            for k, default in _LATER_PHYSICS_FIELDS.items():
                if d["physics"].get(k) == default:
                    d["physics"].pop(k, None)
        d["reference"]["corpus"] = None  # a machine's path, not part of what the suite is (module docstring)
        return hashlib.sha256(json.dumps(d, sort_keys=True).encode()).hexdigest()

    def items(self) -> list[PromptItem]:
        """Prompt items: one per (prompt, seed), with ``item_id``, ``prompt_id``, ``prompt``, ``seed``, ``category``."""
        out: list[PromptItem] = []
        for p in self.prompts:
            for s in (p.seeds if p.seeds is not None else self.seeds):
                out.append({"item_id": f"{p.id}-s{int(s)}", "prompt_id": p.id, "prompt": p.text, "seed": int(s),
                            "category": p.category, "kind": "prompt"})
        return out

    def metric(self, key: str) -> MetricSpec:
        for m in self.metrics:
            if m.key == key:
                return m
        raise SuiteError(f"suite {self.name!r} has no metric {key!r}; "
                         f"metrics: {', '.join(m.key for m in self.metrics)}")

    def extractor_for(self, m: MetricSpec) -> str | None:
        """The extractor spec of a metric, with aliases from ``extractors`` resolved."""
        if m.extractor is None:
            return None
        return self.extractors.get(m.extractor, m.extractor)

    @property
    def primary(self) -> str:
        return self.primary_metric or (self.metrics[0].key if self.metrics else "")

    # -- validation ---------------------------------------------------------------------
    def validate(self, metric_names: Iterable[str] | None = None, extractor_names: Iterable[str] | None = None,
                 where: str = "") -> Suite:
        """Check the meaning of the suite; return it.

        Args:
            metric_names: valid metric names (default: ``skyloom.eval.metrics.METRICS``).
            extractor_names: valid extractor names (default: ``skyloom.eval.features.base.EXTRACTORS``);
                ``indomain:PATH`` specs are always accepted (checked when loaded).
            where: file name for error messages.

        Raises:
            SuiteError: naming the suite file, the offending entry and what is valid.
        """
        at = f"{where or 'suite ' + repr(self.name)}: "
        if self.format != SUITE_FORMAT:
            raise SuiteError(f"{at}format is {self.format!r}, expected {SUITE_FORMAT!r}")
        if not _ID_RE.match(self.name):
            raise SuiteError(f"{at}name {self.name!r} must match {_ID_RE.pattern}")
        if self.version < 1:
            raise SuiteError(f"{at}version must be >= 1, got {self.version}")
        if not self.metrics:
            raise SuiteError(f"{at}no metrics; add a 'metrics:' list")
        if not self.prompts and self.physics.num_scenes <= 0:
            raise SuiteError(f"{at}no prompts and no physics scenes: nothing to evaluate")
        ids = [p.id for p in self.prompts]
        for pid in ids:
            if not _ID_RE.match(pid):
                raise SuiteError(f"{at}prompt id {pid!r} must match {_ID_RE.pattern}")
        dup = sorted({i for i in ids if ids.count(i) > 1})
        if dup:
            raise SuiteError(f"{at}duplicate prompt id(s) {dup}")
        for p in self.prompts:
            if not p.text.strip():
                raise SuiteError(f"{at}prompt {p.id!r} has empty text")
            if p.seeds is not None and len(set(p.seeds)) != len(p.seeds):
                raise SuiteError(f"{at}prompt {p.id!r} repeats a seed: {list(p.seeds)}")
        g = self.generation
        for k in ("num_frames", "steps", "batch_size", "fps", "width", "height"):
            v = getattr(g, k)
            if v is not None and v <= 0:
                raise SuiteError(f"{at}generation.{k} is {v}: it must be positive (or left out for the default)")
        if g.guidance is not None and g.guidance < 0:
            raise SuiteError(f"{at}generation.guidance is {g.guidance}: it must be 0 or more")
        if len(set(self.seeds)) != len(self.seeds) or not self.seeds:
            raise SuiteError(f"{at}seeds must be a non-empty list without repeats, got {list(self.seeds)}")
        registry = None
        if metric_names is None:
            from skyloom.eval.metrics import METRICS

            registry, metric_names = METRICS, METRICS.names()
        valid = sorted(metric_names)
        keys = [m.key for m in self.metrics]
        dupk = sorted({k for k in keys if keys.count(k) > 1})
        if dupk:
            raise SuiteError(f"{at}duplicate metric id(s) {dupk}; give each an 'id'")
        for m in self.metrics:
            if m.name not in valid:
                import difflib

                close = difflib.get_close_matches(m.name, valid, n=2)
                hint = f" Did you mean {', '.join(map(repr, close))}?" if close else ""
                raise SuiteError(f"{at}unknown metric {m.name!r}.{hint} Valid metrics: {', '.join(valid)}")
            if registry is not None:  # settings against the metric's config_class: a typo fails here, not mid-run
                from skyloom.config import ConfigError

                try:
                    registry.options(m.name, m.settings, where=f"metric {m.key!r} settings")
                except ConfigError as e:
                    raise SuiteError(f"{at}{e}") from None
            if m.subset not in ("prompts", "physics", "all"):
                raise SuiteError(f"{at}metric {m.key!r}: 'subset' is {m.subset!r}; valid: prompts, physics, all")
            if m.subset == "physics" and self.physics.num_scenes <= 0:
                raise SuiteError(f"{at}metric {m.key!r} scores physics scenes but physics.num_scenes is 0")
            if m.subset == "prompts" and not self.prompts:
                raise SuiteError(f"{at}metric {m.key!r} scores prompts but the suite has none")
            spec = self.extractor_for(m)
            if spec is not None and extractor_names is not None and not spec.startswith("indomain:"):
                base = spec.split("?")[0]
                if base not in set(extractor_names):
                    raise SuiteError(f"{at}metric {m.key!r}: unknown extractor {spec!r}; valid: "
                                     f"{', '.join(sorted(extractor_names))}, indomain:PATH, or an alias "
                                     f"from 'extractors' ({', '.join(sorted(self.extractors)) or 'none'})")
        if self.primary_metric and self.primary_metric not in keys:
            raise SuiteError(f"{at}primary_metric {self.primary_metric!r} is not one of the suite's metrics: "
                             f"{', '.join(keys)}")
        ph = self.physics
        if ph.num_scenes > 0 and not (1 <= ph.cond_frames < ph.num_frames):
            raise SuiteError(f"{at}physics.cond_frames must be in [1, num_frames), got {ph.cond_frames} "
                             f"with num_frames {ph.num_frames}")
        if ph.num_scenes > 0 and (ph.min_moving_cells < 0 or ph.max_draws < 0):
            raise SuiteError(f"{at}physics.min_moving_cells and physics.max_draws must be >= 0, got "
                             f"{ph.min_moving_cells} and {ph.max_draws}")
        if self.generation.batch_size < 1:
            raise SuiteError(f"{at}generation.batch_size must be >= 1")
        for k in ("width", "height"):
            v = getattr(self.generation, k)
            if v is not None and v < 1:
                raise SuiteError(f"{at}generation.{k} must be >= 1, got {v}")
        self._validate_calibration(at, keys)
        return self

    def _validate_calibration(self, at: str, keys: list[str]) -> None:
        cal, bd = self.calibration, self.breakdown
        valid = ", ".join(CALIBRATION_ROWS)
        for r in cal.rows:
            if r not in CALIBRATION_ROWS:
                raise SuiteError(f"{at}calibration.rows: unknown row {r!r}; valid: {valid}")
        for where, order in [("order", cal.order)] + [(f"metric_order.{m}", o) for m, o in cal.metric_order.items()]:
            bad = [r for r in order if r not in CALIBRATION_ROWS]
            if bad:
                raise SuiteError(f"{at}calibration.{where}: unknown row(s) {bad}; valid: {valid}")
        for m in cal.metric_order:
            if m not in keys:
                raise SuiteError(f"{at}calibration.metric_order: {m!r} is not one of the suite's metrics: "
                                 f"{', '.join(keys)}")
        for m, w in bd.weights.items():
            if m not in keys:
                raise SuiteError(f"{at}breakdown.weights: {m!r} is not one of the suite's metrics: {', '.join(keys)}")
            if not w >= 0:
                raise SuiteError(f"{at}breakdown.weights.{m} must be >= 0, got {w}")
        if bd.normalise not in ("calibration", "none"):
            raise SuiteError(f"{at}breakdown.normalise is {bd.normalise!r}; valid: calibration, none")
        if bd.weights and bd.normalise == "calibration":
            for k in ("low", "high"):
                if getattr(bd, k) not in cal.rows:
                    raise SuiteError(f"{at}breakdown.{k} is {getattr(bd, k)!r}, which is not in calibration.rows "
                                     f"({', '.join(cal.rows) or 'none'}); the normalisation needs that row")


def suite_path(name: str | os.PathLike) -> Path:
    """A suite name (``eval/suites/<name>.yaml`` in the preset folders) or a YAML path."""
    p = Path(name)
    if p.suffix in (".yaml", ".yml"):
        if not p.exists():
            raise SuiteError(f"suite file {p} does not exist")
        return p
    try:
        return preset_path(SUITE_GROUP, str(name))
    except ConfigError as e:
        raise SuiteError(str(e).replace(f"unknown {SUITE_GROUP} preset", "unknown suite")) from None


def list_suites() -> list[str]:
    return list_presets(SUITE_GROUP)


def load_suite(name: str | os.PathLike, overrides: Iterable[str] = (), validate: bool = True,
               metric_names: Iterable[str] | None = None, extractor_names: Iterable[str] | None = None) -> Suite:
    """Load, override (``prompts.0.text=...`` is not supported; use keys like ``reference.corpus=PATH``)
    and validate a suite.

    Raises:
        SuiteError: unknown file, unknown key / wrong type (naming the key), or a failed validation.
    """
    path = suite_path(name)
    try:
        data = load_preset(path, SUITE_GROUP)
        suite = from_dict(Suite, data)
        suite = apply_overrides(suite, [o for o in overrides])
    except SuiteError:
        raise
    except ConfigError as e:
        raise SuiteError(f"{path}: {e}") from None
    if validate:
        suite.validate(metric_names=metric_names, extractor_names=extractor_names, where=str(path))
    return suite


def suite_to_dict(suite: Suite) -> dict[str, Any]:
    return to_dict(suite)
