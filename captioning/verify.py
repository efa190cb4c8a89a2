"""Caption verification: which facts a caption states, and how many of them the ground truth holds.

A small parser with the controlled vocabulary of :mod:`skyloom.captioning.vocab` reads a caption into
facts: objects ``(colour, shape)`` with their size and material, motion verbs attached to their
subject (the nearest object or "it" before the verb), collisions (objects named after a collision
verb or "into"), the camera motion and stated counts. :func:`verify_caption` compares them with the
facts of the ground truth (:func:`skyloom.captioning.facts.scene_facts`) as multisets:

    precision = |caption facts ∩ gt facts| / |caption facts|,   recall = |caption ∩ gt| / |gt facts|

Stated counts ("three objects") count towards precision only. A mentioned object that matches no
ground-truth object (wrong colour, wrong shape, one too many) is flagged as hallucinated.

Example:
    >>> from skyloom.captioning.fake_gt import make_gt
    >>> from skyloom.captioning.scene_graph import caption_gt
    >>> gt = make_gt(3)
    >>> r = verify_caption(caption_gt(gt, "x")["dense"], gt)
    >>> (r.precision, r.recall, r.hallucinated)
    (1.0, 1.0, [])
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import asdict, dataclass, field
from typing import Any

from skyloom.captioning.facts import SceneFacts, scene_facts
from skyloom.captioning.vocab import (
    CAMERA_WORDS,
    GENERIC_NOUNS,
    MATERIAL_WORDS,
    NUMBERS,
    SHAPE_WORDS,
    SIZE_WORDS,
    motion_pattern,
    normalise_colour,
)

_MOTIONS = motion_pattern()
_TOKEN = re.compile(r"§[a-z]+§|[a-z0-9]+(?:-[a-z]+)*")
_DETERMINERS = {"a", "an", "the", "another", "one", "its", "this", "that"}
Fact = tuple


@dataclass
class Mention:
    colour: str | None
    shape: str
    size: str | None = None
    material: str | None = None
    definite: bool = False
    number: int = 1
    other: bool = False  # "the other red ball": not the current subject


@dataclass
class ParsedCaption:
    """Facts stated by a caption (entity keys are ``(colour or None, shape)``)."""

    objects: list[tuple[str | None, str]] = field(default_factory=list)
    attributes: list[Fact] = field(default_factory=list)
    motions: list[Fact] = field(default_factory=list)
    collisions: list[Fact] = field(default_factory=list)
    camera: str | None = None
    counts: list[int] = field(default_factory=list)


def _mark_motions(sentence: str) -> str:
    taken: list[tuple[int, int, str]] = []
    for pat, m in _MOTIONS:
        for mt in pat.finditer(sentence):
            if all(mt.end() <= a or mt.start() >= b for a, b, _ in taken):
                taken.append((mt.start(), mt.end(), m))
    for a, b, m in sorted(taken, reverse=True):
        sentence = f"{sentence[:a]} §{m}§ {sentence[b:]}"
    return sentence


def _camera(sentence: str) -> str | None:
    for kind, words in CAMERA_WORDS.items():
        for w in words:
            if re.search(rf"\b{re.escape(w)}\b", sentence):
                return kind
    return None


def parse_caption(text: str) -> ParsedCaption:
    """Read the facts a caption states (see the module docstring for the grammar it covers)."""
    out = ParsedCaption()
    entities: list[Mention] = []
    subject: int | None = None
    for sentence in re.split(r"[.!?;,]+", text.lower()):  # clauses; the subject carries over
        if not sentence.strip():
            continue
        if re.search(r"\b(camera|shot)\b", sentence):
            out.camera = out.camera or _camera(sentence)
            continue
        toks = _TOKEN.findall(_mark_motions(sentence))
        partner_mode = False
        i = 0
        while i < len(toks):
            t = toks[i]
            if t.startswith("§"):
                m = t.strip("§")
                if m == "collide":
                    partner_mode = True
                else:
                    partner_mode = False
                    if subject is not None:
                        out.motions.append((subject, m))
            elif t == "into" and i > 0 and toks[i - 1].startswith("§"):
                partner_mode = True
            elif t == "it":
                partner_mode = False if not partner_mode else partner_mode
            elif t in SHAPE_WORDS or t in GENERIC_NOUNS:
                j = i - 1
                colour = size = material = None
                number, definite, other = 1, False, False
                while j >= 0:
                    w = toks[j]
                    if normalise_colour(w):
                        colour = colour or normalise_colour(w)
                    elif w in SIZE_WORDS:
                        size = size or SIZE_WORDS[w]
                    elif w in MATERIAL_WORDS:
                        material = material or MATERIAL_WORDS[w]
                    elif w in NUMBERS:
                        number = NUMBERS[w]
                    elif w in _DETERMINERS:
                        definite = w in ("the", "its", "this", "that")
                        j -= 1
                        break
                    elif w.isdigit():
                        number = int(w)
                    elif w == "other":
                        other = True
                    else:
                        break
                    j -= 1
                if t in GENERIC_NOUNS:
                    if number > 1 or toks[j + 1:i] and toks[j + 1] in NUMBERS:
                        out.counts.append(number)
                    i += 1
                    continue
                shape, plural = SHAPE_WORDS[t]
                if toks[i + 1:i + 3] and toks[i + 1:i + 3][0] == "made" and len(toks) > i + 3 and toks[i + 2] == "of":
                    material = material or MATERIAL_WORDS.get(toks[i + 3])
                mention = Mention(colour, shape, size, material, definite, number if plural else 1, other)
                idx = _resolve(entities, mention, exclude=subject if other else None)
                if partner_mode and subject is not None and idx != subject:
                    out.collisions.append((subject, idx))
                elif not partner_mode:
                    subject = idx
            i += 1
    for e in entities:
        out.objects.extend([(e.colour, e.shape)] * e.number)
    keys = [(e.colour, e.shape) for e in entities]
    for idx, e in enumerate(entities):
        if e.size:
            out.attributes.append(("size", keys[idx], e.size))
        if e.material:
            out.attributes.append(("material", keys[idx], e.material))
    out.motions = [("motion", keys[s], m) for s, m in dict.fromkeys(out.motions)]
    out.collisions = [("collision", frozenset((keys[a], keys[b]))) for a, b in dict.fromkeys(out.collisions)]
    out.collisions = list(dict.fromkeys(out.collisions))
    return out


def _resolve(entities: list[Mention], m: Mention, exclude: int | None = None) -> int:
    if not m.definite:  # an introduction of an object referred to earlier ("hits the red ball. A red ball ...")
        for idx, e in enumerate(entities):
            if e.definite and e.shape == m.shape and e.colour == m.colour and m.number == 1:
                e.definite = False
                e.size, e.material = e.size or m.size, e.material or m.material
                return idx
    if m.definite:
        for idx in range(len(entities) - 1, -1, -1):
            e = entities[idx]
            if idx == exclude:
                continue
            if e.shape == m.shape and (m.colour is None or e.colour in (None, m.colour)):
                if e.colour is None:
                    e.colour = m.colour
                e.size, e.material = e.size or m.size, e.material or m.material
                return idx
    entities.append(m)
    return len(entities) - 1


@dataclass
class VerifyReport:
    """Precision/recall of one caption's facts against ground truth."""

    precision: float
    recall: float
    n_caption_facts: int
    n_gt_facts: int
    n_matched: int
    hallucinated: list[str]
    missing: list[str]
    wrong: list[str]
    by_type: dict[str, dict[str, float]]

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def gt_facts(facts: SceneFacts) -> Counter:
    """The ground truth's facts as a multiset (what a complete caption states)."""
    c: Counter = Counter()
    for o in facts.objects:
        c[("object", o.colour, o.shape)] += 1
        if o.size:
            c[("size", o.key, o.size)] += 1
        if o.material:
            c[("material", o.key, o.material)] += 1
        for m in o.motions:
            if m != "collide":
                c[("motion", o.key, m)] += 1
        for p in o.collides_with:
            other = facts.by_name(p)
            if other is not None:
                c[("collision", frozenset((o.key, other.key)))] = 1
    c[("camera", facts.camera)] = 1
    return c


def _fmt(f: Fact) -> str:
    def k(x: Any) -> str:
        if isinstance(x, tuple):
            return " ".join(str(v) for v in x if v)
        if isinstance(x, frozenset):
            return " <-> ".join(sorted(k(v) for v in x))
        return str(x)

    return f"{f[0]}: " + ", ".join(k(x) for x in f[1:])


def verify_caption(text: str, gt: dict[str, Any] | SceneFacts) -> VerifyReport:
    """Compare a caption with ground truth (a ``skyloom-gt`` dict or its :class:`SceneFacts`)."""
    facts = gt if isinstance(gt, SceneFacts) else scene_facts(gt)
    parsed = parse_caption(text)
    truth = gt_facts(facts)
    # Match mentioned objects to gt objects: exact (colour, shape) first, then colourless mentions by shape.
    gt_objs = Counter(o.key for o in facts.objects)
    remap: dict[tuple, tuple] = {}
    hallucinated = []
    pending = []
    for key in parsed.objects:
        if key[0] is not None and gt_objs[key] > 0:
            gt_objs[key] -= 1
            remap[key] = key
        else:
            pending.append(key)
    for key in pending:
        cand = next((k for k in gt_objs if gt_objs[k] > 0 and k[1] == key[1] and key[0] is None), None)
        if cand is not None:
            gt_objs[cand] -= 1
            remap[key] = cand
        else:
            hallucinated.append(" ".join(v for v in key if v))
    stated: Counter = Counter()
    for key in parsed.objects:
        stated[("object",) + remap.get(key, key)] += 1

    def fix(k: tuple) -> tuple:
        return remap.get(k, k)

    for f in parsed.attributes + parsed.motions:
        stated[(f[0], fix(f[1]), f[2])] += 1
    for f in parsed.collisions:
        stated[("collision", frozenset(fix(k) for k in f[1]))] = 1
    if parsed.camera:
        stated[("camera", parsed.camera)] = 1
    matched = stated & truth
    n_counts = len(parsed.counts)
    good_counts = sum(1 for n in parsed.counts if n == len(facts.objects))
    n_stated = sum(stated.values()) + n_counts
    n_match = sum(matched.values())
    by_type: dict[str, dict[str, float]] = {}
    for typ in ("object", "size", "material", "motion", "collision", "camera"):
        s = sum(v for k, v in stated.items() if k[0] == typ)
        t = sum(v for k, v in truth.items() if k[0] == typ)
        m = sum(v for k, v in matched.items() if k[0] == typ)
        by_type[typ] = {"stated": s, "truth": t, "matched": m}
    return VerifyReport(
        precision=(n_match + good_counts) / n_stated if n_stated else 1.0,
        recall=n_match / sum(truth.values()) if truth else 1.0,
        n_caption_facts=n_stated, n_gt_facts=sum(truth.values()), n_matched=n_match,
        hallucinated=hallucinated, missing=sorted(_fmt(f) for f in (truth - stated).elements()),
        wrong=sorted(_fmt(f) for f in (stated - truth).elements())
        + [f"count: {n}" for n in parsed.counts if n != len(facts.objects)],
        by_type=by_type,
    )
