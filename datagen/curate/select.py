"""Select clips by annotation: threshold rules, the ``corpus filter`` / ``corpus stats`` commands' engine.

A rule is ``NAME OP VALUE``: ``OP`` one of ``< <= > >= == !=`` (``=`` too), or ``NAME in A,B,...``
/ ``NAME not in A,B,...``. ``NAME`` is any annotation column (``annotations.parquet``), any
quality score of the manifest (``motion``, ``contrast``, ...), a manifest number (``duration_s``,
``width``, ``height``, ``fps``, ``num_frames``), ``duplicate`` (true for clips that near-duplicate
dedup marked), ``semantic_duplicate`` (after ``corpus semdedup``) or ``source_kind``/``split``/
``license_id``. Examples::

    camera_motion in static,pan_left,pan_right
    text_area < 0.02
    sharpness >= 50
    duplicate == false

:func:`run_filter` evaluates a named set of rules on every live clip and records the verdict in
the manifest, never deleting: ``quality["select_<name>"]`` is 1.0 (passes) or 0.0, and
``meta["select"][<name>]`` holds the rules and the ones the clip failed (a clip missing an
annotation fails its rule as ``missing``). Training or export code keeps the clips whose
``select_<name>`` is 1.
"""

from __future__ import annotations

import dataclasses
import math
import operator
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from skyloom.corpus import Corpus
from skyloom.datagen.curate.annotate import AnnotateConfig, read_annotations, run_annotate
from skyloom.datagen.curate.dedup import DedupConfig, run_dedup
from skyloom.errors import UserError

OPS = {"<": operator.lt, "<=": operator.le, ">": operator.gt, ">=": operator.ge, "==": operator.eq,
       "=": operator.eq, "!=": operator.ne}
RULE = re.compile(r"^\s*([A-Za-z_][A-Za-z0-9_]*)\s*(<=|>=|==|!=|<|>|=|\s+not\s+in\s+|\s+in\s+)\s*(.+?)\s*$")
NAME = re.compile(r"^[A-Za-z0-9_-]+$")


class RuleError(UserError, ValueError):
    """A selection rule that does not parse or names no annotation."""


@dataclass(frozen=True)
class Rule:
    name: str
    op: str
    value: Any
    text: str

    def test(self, v: Any) -> bool:
        if self.op in ("in", "not in"):
            hit = str(v).lower() in self.value
            return hit if self.op == "in" else not hit
        if isinstance(self.value, bool) or isinstance(v, bool):
            return OPS[self.op](_as_bool(v), _as_bool(self.value))
        if isinstance(self.value, float):
            return OPS[self.op](float(v), self.value)
        return OPS[self.op](str(v), self.value)


def _as_bool(v: Any) -> bool:
    return v if isinstance(v, bool) else str(v).lower() in ("1", "true", "yes", "1.0")


def parse_rule(text: str) -> Rule:
    """Parse ``NAME OP VALUE`` (see the module docstring)."""
    m = RULE.match(text)
    if not m:
        raise RuleError(f"rule {text!r}: expected NAME OP VALUE with OP one of < <= > >= == != in, "
                        "e.g. 'text_area < 0.02' or 'camera_motion in static,pan_left'")
    name, op, raw = m.group(1), " ".join(m.group(2).split()), m.group(3)
    if op in ("in", "not in"):
        return Rule(name, op, frozenset(x.strip().lower() for x in raw.split(",") if x.strip()), text)
    low = raw.lower()
    if low in ("true", "false"):
        return Rule(name, op, low == "true", text)
    try:
        return Rule(name, op, float(raw), text)
    except ValueError:
        if op not in ("==", "=", "!="):
            raise RuleError(f"rule {text!r}: {op} needs a number, got {raw!r}") from None
        return Rule(name, op, raw, text)


def _value(row: dict[str, Any], name: str) -> Any:
    v = row.get(name)
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return None
    return v


def available(df) -> list[str]:
    skip = {"id", "path", "captions", "quality", "meta", "created_at", "rev", "deleted", "sha256", "source_sha256",
            "source_page", "source_url", "author", "attribution", "parent_id", "gt_path", "text"}
    return sorted(c for c in df.columns if c not in skip and not c.endswith("_version"))


@dataclass
class FilterResult:
    name: str
    rules: list[str]
    clips: int
    passed: int
    failed_by: dict[str, int]
    updated: int


def evaluate(df, rules: list[Rule]) -> dict[str, list[str]]:
    """id -> the rules (their text) the clip fails (``"<rule> (missing)"`` when it has no value)."""
    names = set(available(df))
    for r in rules:
        if r.name not in names:
            import difflib

            close = difflib.get_close_matches(r.name, sorted(names), n=3)
            raise RuleError(f"rule {r.text!r}: no annotation or field {r.name!r} in this corpus"
                            + (f"; did you mean {', '.join(close)}?" if close else "")
                            + f" (available: {', '.join(sorted(names))}; `skyloom corpus annotate` adds annotations)")
    out: dict[str, list[str]] = {}
    for row in df.to_dict("records"):
        failed = []
        for r in rules:
            v = _value(row, r.name)
            if v is None:
                failed.append(f"{r.text} (missing)")
            elif not r.test(v):
                failed.append(r.text)
        out[row["id"]] = failed
    return out


def run_filter(corpus: Corpus | str | Path, rules: list[str], name: str = "default") -> FilterResult:
    """Evaluate ``rules`` on every live clip and record the verdict (module docstring); returns counts."""
    if not NAME.match(name):
        raise RuleError(f"--name {name!r}: use letters, digits, - and _")
    if not rules:
        raise RuleError("give at least one rule (--where 'text_area < 0.02')")
    c = corpus if isinstance(corpus, Corpus) else Corpus(corpus)
    parsed = [parse_rule(r) for r in rules]
    verdict = evaluate(read_annotations(c), parsed)
    key = f"select_{name}"
    changed = []
    failed_by: dict[str, int] = {}
    for rec in c.records():
        failed = verdict.get(rec.id, [])
        for f in failed:
            failed_by[f] = failed_by.get(f, 0) + 1
        q = 0.0 if failed else 1.0
        entry = {"rules": [r.text for r in parsed], "failed": failed}
        sel = dict(rec.meta.get("select") or {})
        if rec.quality.get(key) != q or sel.get(name) != entry:
            sel[name] = entry
            changed.append(dataclasses.replace(rec, quality={**rec.quality, key: q}, meta={**rec.meta, "select": sel}))
    updated = c.update(changed) if changed else 0
    return FilterResult(name, [r.text for r in parsed], len(verdict), sum(1 for f in verdict.values() if not f),
                        failed_by, updated)


def annotation_stats(corpus: Corpus | str | Path, ends: int = 3, bins: int = 10) -> dict[str, Any]:
    """Per annotation (and quality score): its distribution and the clips at both ends.

    Numbers: ``n``, ``missing``, ``min``/``p5``/``p25``/``p50``/``p75``/``p95``/``max``, a histogram
    (``bins`` equal bins: ``edges``, ``counts``), ``lowest``/``highest`` (``ends`` clip ids each);
    labels and flags: ``counts`` per value and ``examples`` (``ends`` ids per value).
    """
    import numpy as np

    c = corpus if isinstance(corpus, Corpus) else Corpus(corpus)
    df = read_annotations(c)
    out: dict[str, Any] = {"corpus": str(c.root), "clips": int(len(df)), "annotations": {}}
    for col in available(df):
        if col in ("source_kind", "split", "license_id"):
            continue
        s = df[[col, "id"]].dropna(subset=[col])
        if s.empty:
            out["annotations"][col] = {"n": 0, "missing": int(len(df))}
            continue
        vals = s[col]
        from pandas.api.types import is_bool_dtype, is_numeric_dtype

        if is_bool_dtype(vals) or not is_numeric_dtype(vals):
            counts = vals.astype(str).value_counts()
            out["annotations"][col] = {
                "kind": "label", "n": int(len(s)), "missing": int(len(df) - len(s)),
                "counts": {str(k): int(v) for k, v in counts.items()},
                "examples": {str(k): s.loc[vals.astype(str) == k, "id"].head(ends).tolist() for k in counts.index}}
            continue
        x = vals.astype(float).to_numpy()
        order = s.assign(_v=x).sort_values(["_v", "id"])
        hist, edges = np.histogram(x, bins=bins)
        q = np.percentile(x, [0, 5, 25, 50, 75, 95, 100])
        out["annotations"][col] = {
            "kind": "number", "n": int(len(x)), "missing": int(len(df) - len(x)),
            **{k: float(v) for k, v in zip(("min", "p5", "p25", "p50", "p75", "p95", "max"), q, strict=True)},
            "hist": {"edges": [float(e) for e in edges], "counts": [int(h) for h in hist]},
            "lowest": order["id"].head(ends).tolist(), "highest": order["id"].tail(ends).tolist()[::-1]}
    return out


@dataclass(frozen=True)
class CurateConfig:
    """Curation of an ingest (the ``curate:`` section of an ingest preset), run on the corpus after
    the sources are in: near-duplicate dedup, annotations, then a named selection.

    Attributes:
        dedup: mark near-duplicates (``skyloom corpus dedup``; cached fingerprints make reruns incremental).
        annotate: run the annotators of ``annotate_settings`` (``skyloom corpus annotate``).
        select: rules (``text_area < 0.02``, ...) recorded as ``quality["select_<select_name>"]``.
        select_name: the name the selection is recorded under.
    """

    dedup: bool = False
    annotate: bool = False
    select: tuple[str, ...] = ()
    select_name: str = "ingest"
    dedup_settings: DedupConfig = field(default_factory=DedupConfig)
    annotate_settings: AnnotateConfig = field(default_factory=AnnotateConfig)

    @property
    def active(self) -> bool:
        return self.dedup or self.annotate or bool(self.select)


def run_curate(corpus: Corpus, cfg: CurateConfig, ray_address: str | None = None) -> dict[str, Any]:
    """Run the curation steps ``cfg`` turns on; returns a summary for the ingest report."""
    for r in cfg.select:  # bad rules fail before any work
        parse_rule(r)
    out: dict[str, Any] = {}
    if cfg.dedup:
        d = run_dedup(corpus, cfg.dedup_settings, ray_address=ray_address)
        out["dedup"] = {"groups": d.groups, "duplicates": d.duplicates, "fingerprinted": d.fingerprinted}
    if cfg.annotate:
        a = run_annotate(corpus, cfg.annotate_settings, ray_address=ray_address)
        out["annotate"] = {"annotated": a.annotated, "failed": a.failed}
    if cfg.select:
        f = run_filter(corpus, list(cfg.select), cfg.select_name)
        out["select"] = {"name": f.name, "passed": f.passed, "clips": f.clips, "failed_by": f.failed_by}
    return out
